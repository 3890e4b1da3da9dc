import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { x402Client } from "@x402/core/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, describe, expect, test } from "vitest";
import { siwxHeader } from "~test/sandbox.js";

interface Ready {
  apiBase: string;
  x402: { rpcUrl: string; chainId: number; asset: string };
  mpp: { rpcUrl: string; chainId: number; currency: string };
  wallets: { address: string; privateKey: Hex }[];
  treasury: string;
}

const stateDir = mkdtempSync(join(tmpdir(), "run402-sandbox-bin-"));
let child: ChildProcess | undefined;

afterAll(() => {
  child?.kill("SIGKILL");
  rmSync(stateDir, { recursive: true, force: true });
});

/**
 * Starts the bin (from source, through tsx) and resolves with its ready line and timing. `viaShell`:
 * under a shell that stays its parent (as `npx` is), so that the test can kill the parent.
 */
function startBin(
  options: { dir?: string; viaShell?: boolean } = {},
): Promise<{ ready: Ready; ms: number; stdout: () => string; proc: ChildProcess }> {
  const started = Date.now();
  const argv = ["--import", "tsx", "main.ts", "--state-dir", options.dir ?? stateDir, "--wallets", "2"];
  const proc = options.viaShell
    ? // The trailing `; :` keeps the shell from exec'ing node: it stays node's parent.
      spawn("/bin/sh", ["-c", '"$0" "$@"; :', process.execPath, ...argv], {
        cwd: import.meta.dirname,
        stdio: ["ignore", "pipe", "pipe"],
      })
    : spawn(process.execPath, argv, { cwd: import.meta.dirname, stdio: ["ignore", "pipe", "pipe"] });
  child = proc;
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr!.on("data", (d: Buffer) => {
    err += d.toString();
  });
  return new Promise((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`bin exited ${code}: ${err}`)));
    const poll = setInterval(() => {
      if (!out.includes("\n")) return;
      clearInterval(poll);
      resolve({
        ready: JSON.parse(out.split("\n")[0]!) as Ready,
        ms: Date.now() - started,
        stdout: () => out,
        proc,
      });
    }, 20);
  });
}

function stopBin(): Promise<number | null> {
  const proc = child!;
  return new Promise((resolve) => {
    proc.removeAllListeners("exit");
    proc.once("exit", (code) => resolve(code));
    proc.kill("SIGTERM");
  });
}

async function call(ready: Ready, method: string, path: string, body?: unknown, pay = false) {
  const key = ready.wallets[0]!.privateKey;
  const url = `${ready.apiBase}${path}`;
  const f = pay
    ? wrapFetchWithPayment(
        fetch,
        new x402Client().register("eip155:*", new ExactEvmScheme(privateKeyToAccount(key))),
      )
    : fetch;
  const res = await f(url, {
    method,
    headers: { "sign-in-with-x": await siwxHeader(key, url), "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Every process below `pid` (Linux /proc), with its command name. */
function descendants(pid: number): { pid: number; comm: string }[] {
  const found: { pid: number; comm: string }[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift() as number;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${next}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      let children: string[] = [];
      try {
        children = readFileSync(`/proc/${next}/task/${task}/children`, "utf8").trim().split(/\s+/);
      } catch {}
      for (const child of children.filter(Boolean).map(Number)) {
        let comm = "";
        try {
          comm = readFileSync(`/proc/${child}/comm`, "utf8").trim();
        } catch {}
        found.push({ pid: child, comm });
        queue.push(child);
      }
    }
  }
  return found;
}

/** Whether a process runs (a zombie, waiting for its parent to reap it, has stopped running). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Resolves once none of `pids` runs; polls /proc (they are not this process's children, so no exit event reaches it). */
async function gone(pids: number[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(running)) {
    if (Date.now() > deadline)
      throw new Error(`still running after ${timeoutMs} ms: ${pids.filter(running).join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("run402-sandbox", () => {
  let before: {
    ledger: unknown;
    status: Record<string, unknown>;
    projectId: string;
    offset: unknown;
    urls: string[];
  };

  test("prints one JSON line, serves, and exits cleanly on SIGTERM", async () => {
    const { ready, ms, stdout } = await startBin();
    expect(Object.keys(ready).sort()).toEqual(["apiBase", "mpp", "treasury", "wallets", "x402"]);
    expect(ready).toMatchObject({
      apiBase: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      x402: { chainId: 84532, asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e" },
      mpp: { chainId: 42431, currency: "0x20c0000000000000000000000000000000000000" },
    });
    expect(ready.wallets).toHaveLength(2);
    console.error(`bin cold start: ${ms} ms`);

    expect((await call(ready, "POST", "/tiers/v1/prototype", {}, true)).status).toBe(200);
    const project = await call(ready, "POST", "/projects/v1", { name: "kept" });
    expect(project.status).toBe(201);
    const clock = await fetch(`${ready.apiBase}/_sandbox/clock`, {
      method: "POST",
      body: JSON.stringify({ advanceSeconds: 3600 }),
    });
    before = {
      ledger: ((await (await fetch(`${ready.apiBase}/_sandbox/ledger`)).json()) as { payments: unknown })
        .payments,
      status: (await call(ready, "GET", "/tiers/v1/status")).body,
      projectId: project.body["project_id"] as string,
      offset: ((await clock.json()) as { offset_seconds: number }).offset_seconds,
      urls: [ready.apiBase, ready.x402.rpcUrl, ready.mpp.rpcUrl],
    };
    expect(before.ledger).toHaveLength(1);

    expect(await stopBin()).toBe(0);
    expect(stdout().trim().split("\n")).toHaveLength(1);
  });

  test("a restart with the same --state-dir keeps chains, ledger, projects, leases and the clock", async () => {
    const { ready } = await startBin();
    // The same API and chain ports: a stack's run402:apiBase, baseRpcUrl and tempoRpcUrl stay valid.
    expect([ready.apiBase, ready.x402.rpcUrl, ready.mpp.rpcUrl]).toEqual(before.urls);
    const ledger = ((await (await fetch(`${ready.apiBase}/_sandbox/ledger`)).json()) as { payments: unknown })
      .payments;
    expect(ledger).toEqual(before.ledger);
    const status = (await call(ready, "GET", "/tiers/v1/status")).body;
    expect(status).toMatchObject({
      tier: "prototype",
      active: true,
      lease_expires_at: before.status["lease_expires_at"],
    });
    const project = await call(ready, "GET", `/projects/v1/${before.projectId}`);
    expect(project.body).toMatchObject({ project_id: before.projectId, name: "kept" });
    const clock = (await (await fetch(`${ready.apiBase}/_sandbox/clock`)).json()) as {
      offset_seconds: number;
    };
    expect(clock.offset_seconds).toBe(before.offset);
    // The chains kept the payment: a renewal still pays from the same funded wallet.
    expect((await call(ready, "POST", "/tiers/v1/prototype", {}, true)).body["action"]).toBe("renew");
    expect(await stopBin()).toBe(0);
  });

  test("behavior: SIGKILL of run402-sandbox takes its chains down (they run only while their owner does)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "run402-sandbox-kill-"));
    try {
      const { ready, proc } = await startBin({ dir });
      const anvils = descendants(proc.pid!).filter((p) => p.comm === "anvil");
      expect(anvils).toHaveLength(2);
      const exited = new Promise((resolve) => proc.once("exit", resolve));
      proc.kill("SIGKILL");
      await exited;
      await gone(anvils.map((a) => a.pid));
      await expect(fetch(ready.x402.rpcUrl, { method: "POST" })).rejects.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("behavior: when the process that started run402-sandbox dies (SIGKILL), the sandbox and its chains stop", async () => {
    const dir = mkdtempSync(join(tmpdir(), "run402-sandbox-parent-"));
    try {
      const { ready, proc } = await startBin({ dir, viaShell: true });
      const below = descendants(proc.pid!);
      const sandbox = below.find((p) => p.comm === "node" || p.comm.startsWith("node"));
      const anvils = below.filter((p) => p.comm === "anvil");
      expect(sandbox).toBeDefined();
      expect(anvils).toHaveLength(2);
      proc.kill("SIGKILL");
      await gone([sandbox!.pid, ...anvils.map((a) => a.pid)]);
      await expect(fetch(`${ready.apiBase}/tiers/v1`)).rejects.toThrow();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
