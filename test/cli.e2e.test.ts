/**
 * The built run402-pulumi CLI (dist/cli/main.js) as a child process, through the real Pulumi
 * engine, against a sandbox: validate, plan (prices, pays nothing), apply on each rail, a second
 * apply (pays nothing), renew after the clock moves, status, the spend cap, destroy, --sandbox;
 * and what a run must never do: keep its flags, pay what `renew` or the confirmation did not
 * allow, share another stack's project, outlive a SIGKILL holding the lock, hide an interruption.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  appCopy,
  assertBuilt,
  childEnv as envFor,
  main,
  type Run,
  report,
  runCli,
  sandboxSettings,
  settingFlags,
  startCli,
  why,
} from "~test/cli-harness.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";

const day = 24 * 60 * 60;
let sandbox: TestSandbox;
let tmp: string;

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-cli-"));
  sandbox = await startTestSandbox({ walletCount: 8 });
});
// A fault a test armed and did not use up must not reach the next test.
afterEach(async () => {
  await fetch(`${sandbox.apiBase}/_sandbox/faults`, { method: "DELETE" });
});
afterAll(async () => {
  await sandbox?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// The shared harness (test/cli-harness.ts), in this file's temp folder.
const cli = (args: string[], env: Record<string, string> = {}) => runCli(tmp, args, env);
const childEnv = (env: Record<string, string>) => envFor(tmp, env);
const start = (args: string[], env: Record<string, string>) => startCli(tmp, args, env);

/** Every descendant of `pid` (from ps). */
function descendants(pid: number): number[] {
  const out = spawnSync("ps", ["-A", "-o", "pid=", "-o", "ppid="], { encoding: "utf8" }).stdout;
  const children = new Map<number, number[]>();
  for (const line of out.split("\n")) {
    const [p, pp] = line.trim().split(/\s+/).map(Number);
    if (p && pp !== undefined) children.set(pp, [...(children.get(pp) ?? []), p]);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift() as number) ?? []) {
      found.push(c);
      queue.push(c);
    }
  }
  return found;
}

/** Running (a zombie waiting to be reaped has stopped running). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Resolves when `check` holds, polling; rejects after `ms`. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The lock files of an app's default file backend. */
function lockFiles(manifest: string): string[] {
  const locks = join(manifest, "..", ".run402", "state", ".pulumi", "locks");
  if (!existsSync(locks)) return [];
  return readdirSync(locks, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".json"))
    .map((e) => join(e.parentPath, e.name));
}

/** Runs the CLI on a pseudo-terminal (util-linux `script`), answering its [y/N] with `answer()`. */
function onTerminal(
  args: string[],
  env: Record<string, string>,
  answer: () => Promise<string>,
): Promise<Run> {
  const command = [process.execPath, main, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  return new Promise<Run>((resolve) => {
    const child = spawn("script", ["-qec", command, "/dev/null"], {
      env: childEnv(env),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let answered = false;
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (!answered && /\[y\/N\]/.test(out)) {
        answered = true;
        void answer().then((text) => child.stdin.write(`${text}\r`));
      }
    });
    child.on("close", (code) => resolve({ code: code ?? 1, stdout: out, stderr: "" }));
  });
}

/** Starts `reconcile`, sends SIGTERM once a round is done, and waits for the exit. */
function reconcileOnce(args: string[], env: Record<string, string>): Promise<Run> {
  const base = { ...process.env };
  delete base.PULUMI_CONFIG_PASSPHRASE;
  delete base.PULUMI_CONFIG_PASSPHRASE_FILE;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, "reconcile", ...args], {
      env: { ...base, PULUMI_HOME: join(tmp, "pulumi-home"), RUN402_CONFIG_DIR: join(tmp, "config"), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let signalled = false;
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (!signalled && /round 1 (done|failed)/.test(stderr)) {
        signalled = true;
        child.kill("SIGTERM");
      }
    });
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** Flags and env that point the CLI at the test sandbox with one of its wallets. */
function target(wallet: number, name: string): { flags: string[]; env: Record<string, string> } {
  return {
    flags: [
      ...settingFlags({ ...sandboxSettings(sandbox), journalPath: join(tmp, `journal-${name}.json`) }),
      "--json",
    ],
    env: { RUN402_PRIVATE_KEY: sandbox.wallets[wallet]!.privateKey },
  };
}

async function paidBy(wallet: number) {
  const payer = sandbox.wallets[wallet]!.address.toLowerCase();
  return (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);
}

async function price(tier: string): Promise<string> {
  const body = (await (await fetch(`${sandbox.apiBase}/tiers/v1`)).json()) as {
    tiers: Record<string, { price: string }>;
  };
  // Run402 quotes "$0.10"; the plan shows the amount ("0.10").
  return body.tiers[tier]!.price.replace(/^\$/, "");
}

describe("run402-pulumi", () => {
  test("error: validate reports a bad manifest with its pointer (exit 2, no network)", async () => {
    const manifest = appCopy(tmp);
    writeFileSync(manifest, JSON.stringify({ tier: "prototype", sitee: { dir: "site" } }));
    const run = await cli(["validate", "--manifest", manifest, "--json"]);
    expect(run.code, why(run)).toBe(2);
    const doc = report(run);
    expect(doc.ok).toBe(false);
    expect(doc.errors[0]).toMatchObject({ code: "MANIFEST_INVALID", pointer: "/sitee" });

    const good = await cli(["validate", "--manifest", appCopy(tmp), "--json"]);
    expect(good.code, why(good)).toBe(0);
    expect(report(good)).toMatchObject({ ok: true, command: "validate", errors: [] });
  });

  test("error: bad flags and apply without --yes off a terminal exit 2", async () => {
    const unknown = await cli(["apply", "--frobnicate", "--json"]);
    expect(unknown.code).toBe(2);
    expect(report(unknown).errors[0]?.code).toBe("CLI_USAGE");
    // One line naming the flag and the way to the full text, not a usage dump.
    expect(unknown.stderr.trim().split("\n")).toEqual([
      "run402-pulumi: Unknown flag --frobnicate. (`run402-pulumi --help` lists the commands and flags)",
    ]);

    const noYes = await cli(["apply", "--manifest", appCopy(tmp), "--json"]);
    expect(noYes.code).toBe(2);
    expect(report(noYes).errors[0]).toMatchObject({ code: "CLI_CONFIRMATION_REQUIRED" });
    expect(report(noYes).errors[0]?.message).toMatch(/--yes/);
  });

  test("behavior: x402: plan prices without paying, apply pays once, again pays nothing, renew pays the renewal, status, destroy", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(0, "x402");
    const expected = await price("prototype");

    const plan = await cli(["plan", "--manifest", manifest, "--rail", "x402", ...flags], env);
    expect(plan.code, why(plan)).toBe(0);
    const planned = report(plan);
    expect(planned.totalPlannedUsd).toBe(expected);
    expect(planned.plannedByRail).toEqual({ x402: expected });
    expect(planned.actions).toContainEqual(
      expect.objectContaining({ resource: "tier", action: "subscribe", amountUsd: expected, rail: "x402" }),
    );
    expect(planned.payments).toEqual([]);
    expect(await paidBy(0)).toEqual([]);

    const apply = await cli(["apply", "--manifest", manifest, "--rail", "x402", "--yes", ...flags], env);
    expect(apply.code, why(apply)).toBe(0);
    const applied = report(apply);
    const ledger = await paidBy(0);
    expect(ledger).toHaveLength(1);
    expect(applied.payments).toEqual([
      { rail: "x402", reference: ledger[0]!.reference, amountUsd: expected, network: ledger[0]!.network },
    ]);
    expect(applied.totalPaidUsd).toBe(expected);
    expect(applied.outputs?.siteUrl).toMatch(/^http:\/\/127\.0\.0\.1:/);
    expect(applied.outputs?.lastSettlement).toMatchObject({ rail: "x402", reference: ledger[0]!.reference });
    expect(statSync(join(manifest, "..", ".run402", "passphrase")).mode & 0o777).toBe(0o600);
    // --rail and -c applied to that run only: the stack's config holds none of them.
    expect(readFileSync(join(manifest, "..", ".run402", "Pulumi.dev.yaml"), "utf8")).not.toMatch(/run402:/);

    const again = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(again.code, why(again)).toBe(0);
    expect(report(again)).toMatchObject({ ok: true, payments: [], totalPaidUsd: "0.00" });
    expect(report(again).resources.every((r) => r.op === "same")).toBe(true);
    expect(await paidBy(0)).toHaveLength(1);

    // Into the renewal window (prototype: 7 days, renewed 2 days before expiry).
    await sandbox.advanceClock(6 * day);
    const renew = await cli(["renew", "--manifest", manifest, ...flags], env);
    expect(renew.code, why(renew)).toBe(0);
    const renewed = report(renew);
    expect(renewed.actions).toContainEqual(
      expect.objectContaining({ resource: "tier", action: "renew", amountUsd: expected }),
    );
    const ledger2 = await paidBy(0);
    expect(ledger2).toHaveLength(2);
    expect(renewed.payments).toEqual([
      { rail: "x402", reference: ledger2[1]!.reference, amountUsd: expected, network: ledger2[1]!.network },
    ]);

    const mark = (await sandbox.requests()).length;
    const status = await cli(["status", "--manifest", manifest, "--json"]);
    expect(status.code, why(status)).toBe(0);
    const held = report(status);
    expect(held.outputs?.lastSettlement).toMatchObject({ rail: "x402", reference: ledger2[1]!.reference });
    expect(held.resources.find((r) => r.name === "tier")?.outputs).toMatchObject({ tier: "prototype" });
    expect(JSON.stringify(held)).not.toMatch(/svc_|anon_/);
    expect((await sandbox.requests()).length).toBe(mark);

    const destroy = await cli(["destroy", "--manifest", manifest, "--yes", ...flags], env);
    expect(destroy.code, why(destroy)).toBe(0);
    expect(
      report(destroy)
        .resources.filter((r) => r.op === "delete")
        .map((r) => r.name),
    ).toEqual(expect.arrayContaining(["project", "deployment"]));
    expect(await paidBy(0)).toHaveLength(2);
  });

  test("behavior: mpp: apply settles on mpp and the JSON agrees with the ledger; reconcile stops cleanly on SIGTERM", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(1, "mpp");
    const apply = await cli(["apply", "--manifest", manifest, "--rail", "mpp", "--yes", ...flags], env);
    expect(apply.code, why(apply)).toBe(0);
    const ledger = await paidBy(1);
    expect(ledger).toHaveLength(1);
    expect(ledger[0]!.rail).toBe("mpp");
    expect(report(apply).payments).toEqual([
      expect.objectContaining({
        rail: "mpp",
        reference: ledger[0]!.reference,
        amountUsd: await price("prototype"),
      }),
    ]);

    // reconcile: one refresh + up round finds nothing to do, then SIGTERM stops it cleanly.
    const loop = await reconcileOnce(["--manifest", manifest, "--every", "1h", ...flags], env);
    expect(loop.code, why(loop)).toBe(0);
    expect(report(loop)).toMatchObject({
      ok: true,
      command: "reconcile",
      rounds: 1,
      payments: [],
      errors: [],
    });
    expect(loop.stderr).toMatch(/SIGTERM received/);
    expect(await paidBy(1)).toHaveLength(1);
  });

  test("error: over the spend cap: exit 3, nothing settled", async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(2, "cap");
    const apply = await cli(["apply", "--manifest", manifest, "--yes", "--max-spend", "0.05", ...flags], env);
    expect(apply.code, why(apply)).toBe(3);
    const doc = report(apply);
    expect(doc.ok).toBe(false);
    expect(doc.errors[0]?.code).toMatch(/^POLICY_/);
    expect(doc.payments).toEqual([]);
    expect(await paidBy(2)).toEqual([]);
  });

  test("behavior: apply on a terminal shows the plan and asks; no means nothing is paid", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(2, "tty");
    const args = ["apply", "--manifest", manifest, ...flags.filter((f) => f !== "--json")];
    const command = [process.execPath, main, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
    const base = { ...process.env };
    delete base.PULUMI_CONFIG_PASSPHRASE;
    // util-linux `script` gives the CLI a pseudo-terminal, so stdin is a TTY.
    const run = await new Promise<Run>((resolve) => {
      const child = spawn("script", ["-qec", command, "/dev/null"], {
        env: {
          ...base,
          PULUMI_HOME: join(tmp, "pulumi-home"),
          RUN402_CONFIG_DIR: join(tmp, "config"),
          ...env,
        },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      let answered = false;
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (!answered && /\[y\/N\]/.test(out)) {
          answered = true;
          child.stdin.write("n\r");
        }
      });
      child.on("close", (code) => resolve({ code: code ?? 1, stdout: out, stderr: "" }));
    });
    expect(run.stdout).toMatch(/tier: subscribe \(\$0\.10 via x402\)/);
    expect(run.stdout).toMatch(/Apply these changes, paying up to \$0\.10\? \[y\/N\]/);
    expect(run.stdout).toMatch(/CLI_ABORTED/);
    expect(run.code, run.stdout).toBe(2);
    expect(await paidBy(2)).toEqual([]);
  });

  test("error: the Run402 API fails the purchase: exit 4, nothing settled", async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(2, "api-error");
    await sandbox.fault({ route: "POST /tiers/v1/:tier", kind: "error_before_settlement", count: 20 });
    const apply = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(apply.code, why(apply)).toBe(4);
    const doc = report(apply);
    expect(doc.errors[0]?.code).toMatch(/^RUN402_/);
    expect(doc.payments).toEqual([]);
    expect(await paidBy(2)).toEqual([]);
  });

  test("behavior: --sandbox (npm start): starts its own sandbox, prints the outputs with the settlement rail; later runs in other processes reach the same sandbox and destroy works", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const run = await cli(["apply", "--manifest", manifest, "--sandbox", "--yes"]);
    expect(run.code, why(run)).toBe(0);
    expect(run.stdout).toMatch(/lastSettlement\s+rail=x402/);
    expect(run.stdout).toMatch(/siteUrl\s+http:\/\/127\.0\.0\.1:/);
    expect(run.stderr).toMatch(/sandbox ready at/);
    // The progress of long work comes from the provider, on stderr.
    expect(run.stderr).toMatch(/\[tier\] paying \$0\.10 on x402 \(eip155:84532\)…/);
    // Every upload is reported, up to the last one (site files, and the migration's SQL).
    expect(run.stderr).toMatch(/uploaded (\d+) of \1 files \(([\d.]+ k?B) of \2\)/);
    const siteUrl = /siteUrl\s+(\S+)/.exec(run.stdout)?.[1];

    // Another process: the sandbox serves where it did, so the recorded URLs point at it.
    const again = await cli(["apply", "--manifest", manifest, "--sandbox", "--yes", "--json"]);
    expect(again.code, why(again)).toBe(0);
    expect(report(again)).toMatchObject({ payments: [], outputs: { siteUrl } });
    expect(again.stderr).toContain(`sandbox ready at ${new URL(siteUrl as string).origin} `);
    const destroy = await cli(["destroy", "--manifest", manifest, "--sandbox", "--yes", "--json"]);
    expect(destroy.code, why(destroy)).toBe(0);
    expect(
      report(destroy)
        .resources.filter((r) => r.op === "delete")
        .map((r) => r.name),
    ).toEqual(expect.arrayContaining(["project", "deployment"]));
  });

  test("error: status of a stack that does not exist is not ok (exit 2)", async () => {
    const run = await cli(["status", "--manifest", appCopy(tmp), "--json"]);
    expect(run.code, why(run)).toBe(2);
    expect(report(run)).toMatchObject({ ok: false, errors: [{ code: "CLI_STACK_NOT_FOUND" }] });
  });

  test("behavior: renew pays renewals only: an upgrade is reported, refused (exit 3) and not paid; reconcile exits non-zero after a failed round", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(3, "renew-only");
    const apply = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(apply.code, why(apply)).toBe(0);
    expect(await paidBy(3)).toHaveLength(1);

    // Same project name (so the same stack), another tier: the stack now needs an upgrade.
    writeFileSync(
      manifest,
      JSON.stringify({ tier: "hobby", project: { name: "quickstart" }, site: { dir: "site" } }),
    );
    const renew = await cli(["renew", "--manifest", manifest, ...flags], env);
    expect(renew.code, why(renew)).toBe(3);
    const doc = report(renew);
    expect(doc.actions).toContainEqual(
      expect.objectContaining({ resource: "tier", action: "upgrade", amountUsd: await price("hobby") }),
    );
    expect(doc.errors[0]).toMatchObject({
      code: "POLICY_ACTION_NOT_ALLOWED",
      message: expect.stringMatching(/needs "upgrade".*may pay only for renew.*Nothing was paid/),
    });
    expect(doc.payments).toEqual([]);
    expect(await paidBy(3)).toHaveLength(1);

    // A round that fails is not hidden: reconcile reports it and exits non-zero.
    await sandbox.fault({ route: "GET /tiers/v1/status", kind: "error_before_settlement", count: 50 });
    const loop = await reconcileOnce(["--manifest", manifest, "--every", "1h", ...flags], env);
    expect(loop.code, why(loop)).toBe(4);
    expect(report(loop)).toMatchObject({ ok: false, rounds: 1, failedRounds: 1 });
    expect(report(loop).errors[0]?.message).toMatch(/^round 1: /);
    expect(await paidBy(3)).toHaveLength(1);
  });

  test("behavior: two apps with the same project name on one wallet get a project each", {
    timeout: 300_000,
  }, async () => {
    const { flags, env } = target(4, "twins");
    const [one, two] = [appCopy(tmp), appCopy(tmp)]; // both name their project "quickstart"
    const a = await cli(["apply", "--manifest", one, "--yes", ...flags], env);
    expect(a.code, why(a)).toBe(0);
    const b = await cli(["apply", "--manifest", two, "--yes", ...flags], env);
    expect(b.code, why(b)).toBe(0);
    const [pa, pb] = [report(a).outputs?.projectId, report(b).outputs?.projectId];
    expect(pa).toMatch(/^prj_/);
    expect(pb).toMatch(/^prj_/);
    expect(pb).not.toBe(pa);
    // Destroying one leaves the other's project and site alone.
    const destroy = await cli(["destroy", "--manifest", one, "--yes", ...flags], env);
    expect(destroy.code, why(destroy)).toBe(0);
    expect((await fetch(report(b).outputs?.siteUrl as string)).status).toBe(200);
  });

  test("behavior: the confirmed total is the run's cap: a free change asks without a price and pays nothing, even when a renewal falls due before the answer", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(5, "confirm");
    const apply = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(apply.code, why(apply)).toBe(0);
    expect(await paidBy(5)).toHaveLength(1);
    writeFileSync(join(manifest, "..", "site", "style.css"), "body { color: teal; }\n");
    const args = ["apply", "--manifest", manifest, ...flags.filter((f) => f !== "--json")];
    const run = await onTerminal(args, env, async () => {
      // While the question waits, the lease enters its renewal window (7-day lease, 2-day window).
      await sandbox.advanceClock(6 * day);
      return "y";
    });
    expect(run.stdout).toMatch(/deployment: update \(free\)/);
    expect(run.stdout).toMatch(/Apply these changes\? Nothing will be paid\. \[y\/N\]/);
    expect(run.stdout).not.toMatch(/paying up to \$0\.00/);
    expect(run.stdout).toMatch(/POLICY_MAX_SPEND/);
    expect(run.code, run.stdout).toBe(3);
    expect(await paidBy(5)).toHaveLength(1);
  });

  test("behavior: SIGKILL of the CLI: the engine and its plugins do not outlive it; a second apply meanwhile is told who holds the stack (exit 6); the next apply converges, clearing and naming whatever the killed run left", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(6, "killed");
    const first = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(first.code, why(first)).toBe(0);

    // A deploy that hangs on the server: the run is mid-update when it is killed.
    writeFileSync(join(manifest, "..", "site", "style.css"), "body { color: maroon; }\n");
    await sandbox.fault({ route: "POST /apply/v1/plans", kind: "delay", delayMs: 120_000, count: 1 });
    const running = start(["apply", "--manifest", manifest, "--yes", ...flags], env);
    await running.seen(/update\s+run402:Deployment deployment/);
    await until(() => lockFiles(manifest).length === 1, 30_000, "the run holds the stack lock");

    const second = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(second.code, why(second)).toBe(6);
    expect(report(second).errors[0]).toMatchObject({
      code: "CONFLICT_STACK_LOCKED",
      message: expect.stringMatching(/^Another run holds stack dev: pid \d+ \(\S+@\S+\) since /),
    });

    const pid = running.child.pid as number;
    const tree = descendants(pid);
    expect(tree.length).toBeGreaterThan(2); // supervisor, engine, language host, provider…
    running.child.kill("SIGKILL");
    await running.done;
    await until(
      () => tree.every((p) => !alive(p)),
      30_000,
      `processes ${tree.filter(alive).join(", ")} still alive`,
    );

    // The supervisor asked the engine to stop: it cancelled the provider's held request, saved its
    // state and released the lock (a stale lock or pending operation, if any, is cleared and said).
    const next = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(next.code, why(next)).toBe(0);
    for (const line of report(next).recovered ?? []) {
      expect(line).toMatch(
        /^cleared a stale lock of stack dev: pid \d+ .*; that run is gone$|^cleared 1 pending operation\(s\) left by an interrupted run \(updating deployment\)/,
      );
    }
    expect(report(next).resources.find((r) => r.name === "deployment")?.op).toBe("update");
    expect(lockFiles(manifest)).toEqual([]);
    expect(await paidBy(6)).toHaveLength(1);
  });

  test("behavior: Ctrl-C: the run stops, says what finished and what did not, exits 130; refresh repairs the stack", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(tmp);
    const { flags, env } = target(7, "ctrl-c");
    // The project create hangs long enough for the signal to arrive while it runs.
    await sandbox.fault({ route: "POST /projects/v1", kind: "delay", delayMs: 8_000, count: 1 });
    const running = start(["apply", "--manifest", manifest, "--yes", ...flags], env);
    await running.seen(/create\s+run402:Project project/);
    running.child.kill("SIGINT");
    const run = await running.done;
    expect(run.code, why(run)).toBe(130);
    const doc = report(run);
    expect(doc.ok).toBe(false);
    expect(doc.errors[0]).toMatchObject({
      code: "ENGINE_CANCELLED",
      message: expect.stringMatching(
        /^Stopped by a signal during applying \(pulumi up\)\. Finished: .*create tier.*create project/,
      ),
    });
    expect(doc.errors[0]?.message).toMatch(
      /run `run402-pulumi refresh --manifest \S+app\.json`|Nothing is pending in the state/,
    );

    const repaired = await cli(["refresh", "--manifest", manifest, ...flags], env);
    expect(repaired.code, why(repaired)).toBe(0);
    expect(report(repaired)).toMatchObject({ ok: true, command: "refresh" });
    expect(report(repaired).pending).toBeUndefined();
    const status = await cli(["status", "--manifest", manifest, "--json"]);
    expect(report(status).pending).toBeUndefined();
    const finish = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(finish.code, why(finish)).toBe(0);
    expect(await paidBy(7)).toHaveLength(1);
  });
});
