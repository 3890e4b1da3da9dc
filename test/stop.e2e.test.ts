/**
 * A stop that stops, with the built CLI (dist/cli/main.js) through the real engine
 * against a sandbox on its real local chains. A holding proxy sits in front of the sandbox: it
 * passes every request on, and the first paid one it lets the sandbox settle (the ledger and the
 * chain show the payment) and then never answers. At that moment the CLI gets SIGINT or SIGTERM:
 * it must exit 130 within the bound, naming the unresolved intent, and the next run must pay
 * nothing more and converge. A SIGKILL of the CLI's process group at that moment must leave no
 * process of the run alive.
 */
import { type ChildProcess, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Address, createPublicClient, erc20Abi, http } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  appCopy,
  assertBuilt,
  type Run,
  report,
  runCli,
  sandboxSettings,
  settingFlags,
  startCli,
  why,
} from "~test/cli-harness.js";
import { type HoldingProxy, holdingProxy } from "~test/holding-proxy.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";

/** The bound from signal to exit: the engine's grace (5 s) and the hard stop (2 s), plus slack. */
const boundMs = 9000;
let sandbox: TestSandbox;
let tmp: string;
let proxy: HoldingProxy;
/** Signal-to-exit times, printed at the end (the issue's closing note). */
const measured: string[] = [];

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-stop-"));
  sandbox = await startTestSandbox({ walletCount: 8 });
  proxy = await holdingProxy(sandbox.apiBase);
});
afterAll(async () => {
  if (measured.length > 0) process.stderr.write(`signal → exit:\n  ${measured.join("\n  ")}\n`);
  await proxy?.close();
  await sandbox?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The CLI to its end, with the test's PULUMI_HOME and config folder. */
const cli = (args: string[], env: Record<string, string>): Promise<Run> => runCli(tmp, args, env);

/** A running CLI in a process group of its own (as a shell would start it). */
const start = (args: string[], env: Record<string, string>) => startCli(tmp, args, env, { detached: true });

function target(wallet: number, rail: "x402" | "mpp", name: string) {
  return {
    flags: [
      ...settingFlags({
        ...sandboxSettings(sandbox),
        apiBase: proxy.url,
        journalPath: join(tmp, `journal-${name}.json`),
        // The sandbox's content plans name its own origin for uploads, not the proxy's.
        uploadOrigins: sandbox.apiBase,
      }),
      "--rail",
      rail,
      "--json",
    ],
    env: { RUN402_PRIVATE_KEY: sandbox.wallets[wallet]!.privateKey },
  };
}

async function paidBy(wallet: number) {
  const payer = sandbox.wallets[wallet]!.address.toLowerCase();
  return (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);
}

/** The wallet's stablecoin balance on the rail's chain. */
function balance(rail: "x402" | "mpp", wallet: number): Promise<bigint> {
  const { rpcUrl } = rail === "x402" ? sandbox.x402 : sandbox.mpp;
  const token = rail === "x402" ? sandbox.x402.asset : sandbox.mpp.currency;
  return createPublicClient({ transport: http(rpcUrl) }).readContract({
    address: token,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [sandbox.wallets[wallet]!.address as Address],
  });
}

/** Processes of the run that `pid` started: its descendants, and any process naming it RUN402_RUN_OWNER. */
function runProcesses(pid: number): number[] {
  const found = new Set<number>();
  const out = spawnSync("ps", ["-A", "-o", "pid=", "-o", "ppid="], { encoding: "utf8" }).stdout;
  const children = new Map<number, number[]>();
  for (const line of out.split("\n")) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    if (p && pp !== undefined) children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift() as number) ?? []) {
      found.add(c);
      queue.push(c);
    }
  }
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = readFileSync(`/proc/${entry}/environ`, "utf8");
      if (env.includes(`\u0000RUN402_RUN_OWNER=${pid}:`) || env.startsWith(`RUN402_RUN_OWNER=${pid}:`))
        found.add(Number(entry));
    } catch {
      // Gone, or not ours.
    }
  }
  found.delete(pid);
  return [...found];
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function until(check: () => boolean, ms: number, what: () => string): Promise<number> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error(`not within ${ms} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - started;
}

/** Waits for the run's exit, at most `ms`; a run still going is killed (group) and reported. */
async function exitWithin(running: { child: ChildProcess; done: Promise<Run> }, ms: number) {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), ms);
  });
  const first = await Promise.race([running.done, late]);
  clearTimeout(timer);
  if (first === "late") {
    const stragglers = runProcesses(running.child.pid as number);
    try {
      process.kill(-(running.child.pid as number), "SIGKILL");
    } catch {}
    for (const p of stragglers) {
      try {
        process.kill(p, "SIGKILL");
      } catch {}
    }
    const run = await running.done;
    throw new Error(`the CLI was still running ${ms} ms after the signal:\n${why(run)}`);
  }
  return { run: first, ms: Date.now() - started };
}

describe("a stop that stops", () => {
  const cases = [
    { rail: "x402", signal: "SIGINT", wallet: 0 },
    { rail: "x402", signal: "SIGTERM", wallet: 1 },
    { rail: "mpp", signal: "SIGINT", wallet: 2 },
    { rail: "mpp", signal: "SIGTERM", wallet: 3 },
  ] as const;
  for (const { rail, signal, wallet } of cases) {
    test(`behavior: ${rail}: ${signal} while a settled payment's answer is held: exit 130 within the bound, the intent named and pending; the next run pays nothing more and converges`, {
      timeout: 300_000,
    }, async () => {
      const manifest = appCopy(tmp);
      const { flags, env } = target(wallet, rail, `${rail}-${signal}`);
      const before = await balance(rail, wallet);
      const held = proxy.holdNextPaid();
      const running = start(["apply", "--manifest", manifest, "--yes", ...flags], env);
      await Promise.race([
        held,
        running.done.then((run) => {
          throw new Error(`exited before the paid answer was held:\n${why(run)}`);
        }),
      ]);
      const paid = await paidBy(wallet);
      expect(paid).toHaveLength(1);
      expect(paid[0]?.rail).toBe(rail);
      const afterPaying = await balance(rail, wallet);
      expect(afterPaying).toBeLessThan(before);

      running.child.kill(signal);
      const { run, ms } = await exitWithin(running, boundMs);
      measured.push(`${rail} ${signal} with the paid answer held: ${ms} ms`);
      expect(run.code, why(run)).toBe(130);
      expect(run.stderr).toMatch(new RegExp(`${signal} received`));
      const doc = report(run);
      const cancelled = doc.errors.find((e) => e.code === "ENGINE_CANCELLED");
      expect(cancelled?.message, why(run)).toMatch(
        /Unresolved payment\(s\): tier\/\S+ \(may have been paid; idempotency key \S+\).*the next run resolves them with the server and on chain without paying again/,
      );
      // Pending in the journal, never failed.
      const journal = readFileSync(join(tmp, `journal-${rail}-${signal}.json`), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { type: string; intentId?: string; state?: string });
      const tier = journal.filter((l) => l.type === "intent" && l.intentId?.startsWith("tier/"));
      expect(tier.at(-1)?.state).toBe("pending");
      expect(tier.some((l) => l.state === "failed")).toBe(false);

      const next = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
      expect(next.code, why(next)).toBe(0);
      expect(await paidBy(wallet)).toHaveLength(1);
      expect(await balance(rail, wallet)).toBe(afterPaying);
      const again = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
      expect(again.code, why(again)).toBe(0);
      expect(report(again).actions).toEqual([]);
      expect(await paidBy(wallet)).toHaveLength(1);
    });
  }

  test("behavior: x402: SIGTERM while the purchase's first request is held by the server (before any payment): exit 130 within the bound; nothing paid; the next run pays once", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(6, "x402", "held-request");
    await sandbox.fault({ route: "POST /tiers/v1/:tier", kind: "delay", delayMs: 60_000, count: 1 });
    const arrived = proxy.arrival(/^POST \/tiers\/v1\/prototype/);
    const running = start(["apply", "--manifest", manifest, "--yes", ...flags], env);
    // The request has reached the server, whose delay holds it there.
    await Promise.race([
      arrived,
      running.done.then((run) => {
        throw new Error(`exited before the request arrived:\n${why(run)}`);
      }),
    ]);
    running.child.kill("SIGTERM");
    const { run, ms } = await exitWithin(running, boundMs);
    measured.push(`x402 SIGTERM with the purchase's first request held (nothing paid yet): ${ms} ms`);
    expect(run.code, why(run)).toBe(130);
    expect(await paidBy(6)).toHaveLength(0);
    const next = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(next.code, why(next)).toBe(0);
    expect(await paidBy(6)).toHaveLength(1);
  });

  test("behavior: x402: reconcile gets SIGTERM while a settled payment's answer is held: its round cannot finish within the bound, so it is cancelled: exit 130 within the bound, the intent named", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(7, "x402", "reconcile");
    const held = proxy.holdNextPaid();
    const running = start(["reconcile", "--manifest", manifest, "--every", "1h", ...flags], env);
    await Promise.race([
      held,
      running.done.then((run) => {
        throw new Error(`exited before the paid answer was held:\n${why(run)}`);
      }),
    ]);
    running.child.kill("SIGTERM");
    // 3 s for the round to finish, then the same bound as apply.
    const { run, ms } = await exitWithin(running, 3000 + boundMs);
    measured.push(`x402 reconcile SIGTERM with the paid answer held: ${ms} ms`);
    expect(run.code, why(run)).toBe(130);
    expect(run.stderr).toMatch(/no new round; the current one is cancelled unless it ends within 3 s/);
    expect(report(run).errors.find((e) => e.code === "ENGINE_CANCELLED")?.message).toMatch(
      /Unresolved payment\(s\): tier\/\S+ \(may have been paid/,
    );
    expect(await paidBy(7)).toHaveLength(1);
    const next = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(next.code, why(next)).toBe(0);
    expect(await paidBy(7)).toHaveLength(1);
  });

  test("behavior: SIGKILL of the CLI's process group while a settled payment's answer is held: no process of the run stays alive; the next run pays nothing more", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(4, "x402", "sigkill");
    const held = proxy.holdNextPaid();
    const running = start(["apply", "--manifest", manifest, "--yes", ...flags], env);
    await held;
    const pid = running.child.pid as number;
    const tree = runProcesses(pid);
    expect(tree.length, "supervisor, engine, provider").toBeGreaterThanOrEqual(3);
    const killed = Date.now();
    process.kill(-pid, "SIGKILL");
    await running.done;
    await until(
      () => tree.every((p) => !alive(p)),
      5_000,
      () => `processes ${tree.filter(alive).join(", ")} still alive`,
    );
    measured.push(
      `x402 SIGKILL of the process group: the last of its ${tree.length} processes gone ${Date.now() - killed} ms after the kill`,
    );
    expect(await paidBy(4)).toHaveLength(1);
    const next = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(next.code, why(next)).toBe(0);
    expect(await paidBy(4)).toHaveLength(1);
  });
});

describe("a full disk that heals", () => {
  test("behavior: the disk fills while the engine writes its checkpoint (tmpfs as root) and is freed again: the next run restores Pulumi's copy, refreshes, replays the keyed project create and converges without paying again", {
    timeout: 300_000,
  }, async () => {
    const mount = mkdtempSync(join(tmpdir(), "run402-full-"));
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mount], {
      encoding: "utf8",
    });
    if (mounted.status !== 0) throw new Error(`mount -t tmpfs needs root: ${mounted.stderr}`);
    try {
      const manifest = appCopy(tmp);
      // The engine's temporary files (fileblob writes beside, then renames) live on the same disk.
      mkdirSync(join(mount, "tmp"));
      const backend = `file://${join(mount, "state")}`;
      const { flags, env } = target(5, "x402", "full");
      const direct = flags.map((f) => f.replace(proxy.url, sandbox.apiBase));
      const runEnv = { ...env, TMPDIR: join(mount, "tmp") };
      const args = ["apply", "--manifest", manifest, "--yes", "--backend", backend, ...direct];

      // The project create is slow enough to fill the disk while it runs: the checkpoint the engine
      // writes when it finishes is the write that meets ENOSPC.
      await sandbox.fault({ route: "POST /projects/v1", kind: "delay", delayMs: 3000, count: 1 });
      const running = start(args, runEnv);
      await until(
        () => running.stderrText().match(/create\s+run402:Project project/) !== null,
        120_000,
        () => running.stderrText(),
      );
      const filler = join(mount, "filler");
      const free = Number(
        spawnSync("df", ["-B1", "--output=avail", mount], { encoding: "utf8" }).stdout.split("\n")[1],
      );
      spawnSync("fallocate", ["-l", String(free), filler]);
      const lost = await running.done;
      expect(lost.code, why(lost)).not.toBe(0);
      expect(`${lost.stdout}${lost.stderr}`).toMatch(/no space left on device/i);
      const checkpoint = join(mount, "state", ".pulumi", "stacks", "quickstart", "dev.json");
      const damaged = readFileSync(checkpoint, "utf8");
      let parsed = true;
      try {
        JSON.parse(damaged);
      } catch {
        parsed = false;
      }
      expect(parsed, `checkpoint after ENOSPC (${damaged.length} bytes)`).toBe(false);
      expect(await paidBy(5)).toHaveLength(1);

      expect(existsSync(`${checkpoint}.bak`)).toBe(true);
      // The lost update created the project on the server; Pulumi's copy predates it.
      const made = await sandbox.projectsOf(5);
      expect(made).toHaveLength(1);
      expect(readFileSync(`${checkpoint}.bak`, "utf8")).not.toContain(made[0]);

      rmSync(filler);
      const next = await cli(args, runEnv);
      expect(next.code, why(next)).toBe(0);
      expect(report(next).recovered ?? []).toContainEqual(
        expect.stringMatching(
          /checkpoint .*dev\.json (was empty|could not be read).*restored Pulumi's copy .* refreshed the stack from Run402/,
        ),
      );
      expect(await paidBy(5)).toHaveLength(1);
      // The keyed create answered with the project the lost update made: no second project.
      expect(await sandbox.projectsOf(5)).toEqual(made);
      expect(next.stdout).toContain(made[0]);
      const again = await cli(args, runEnv);
      expect(again.code, why(again)).toBe(0);
      expect(report(again).actions).toEqual([]);
      expect(await paidBy(5)).toHaveLength(1);
    } finally {
      spawnSync("umount", ["-l", mount]);
      rmSync(mount, { recursive: true, force: true });
    }
  });
});
