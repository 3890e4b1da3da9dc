/**
 * The built run402-pulumi CLI (dist/cli/main.js) as a child process, through the real Pulumi
 * engine, against a sandbox: validate, plan (prices, pays nothing), apply on each rail, a second
 * apply (pays nothing), renew after the clock moves, status, the spend cap, destroy, --sandbox.
 */
import { execFile, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { repoRoot } from "~test/engine.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import type { Report } from "../cli/report.js";

const main = join(repoRoot, "dist", "cli", "main.js");
const day = 24 * 60 * 60;
let sandbox: TestSandbox;
let tmp: string;

beforeAll(async () => {
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (npm test does).`);
  tmp = mkdtempSync(join(tmpdir(), "run402-cli-"));
  sandbox = await startTestSandbox();
});
afterAll(async () => {
  await sandbox?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI; never throws on exit codes. No passphrase in the env: the CLI makes its own. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env };
  delete base.PULUMI_CONFIG_PASSPHRASE;
  delete base.PULUMI_CONFIG_PASSPHRASE_FILE;
  delete base.RUN402_PRIVATE_KEY;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [main, ...args],
      {
        env: {
          ...base,
          PULUMI_HOME: join(tmp, "pulumi-home"),
          RUN402_CONFIG_DIR: join(tmp, "config"),
          ...env,
        },
        maxBuffer: 32 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
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

/** The one JSON document on stdout (JSON.parse of all of stdout proves there is nothing else). */
function report(run: Run): Report {
  try {
    return JSON.parse(run.stdout) as Report;
  } catch {
    throw new Error(`stdout is not one JSON document:\n${run.stdout}\n--- stderr:\n${run.stderr}`);
  }
}

/** Failure context: stderr and the JSON errors. */
function why(run: Run): string {
  return `${run.stderr}\n--- stdout:\n${run.stdout}`;
}

/** A private copy of the quickstart app. */
function appCopy(): string {
  const dir = mkdtempSync(join(tmp, "app-"));
  cpSync(join(repoRoot, "examples", "quickstart"), dir, {
    recursive: true,
    filter: (src) => !/node_modules|\.run402|Pulumi\./.test(src),
  });
  return join(dir, "app.json");
}

/** Flags and env that point the CLI at the test sandbox with one of its wallets. */
function target(wallet: number, name: string): { flags: string[]; env: Record<string, string> } {
  return {
    flags: [
      "-c",
      `run402:apiBase=${sandbox.apiBase}`,
      "-c",
      `run402:baseRpcUrl=${sandbox.x402.rpcUrl}`,
      "-c",
      `run402:tempoRpcUrl=${sandbox.mpp.rpcUrl}`,
      "-c",
      `run402:allowedRecipients=${sandbox.treasury}`,
      "-c",
      `run402:journalPath=${join(tmp, `journal-${name}.json`)}`,
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
  return body.tiers[tier]!.price;
}

describe("run402-pulumi", () => {
  test("error: validate reports a bad manifest with its pointer (exit 2, no network)", async () => {
    const manifest = appCopy();
    writeFileSync(manifest, JSON.stringify({ tier: "prototype", sitee: { dir: "site" } }));
    const run = await cli(["validate", "--manifest", manifest, "--json"]);
    expect(run.code, why(run)).toBe(2);
    const doc = report(run);
    expect(doc.ok).toBe(false);
    expect(doc.errors[0]).toMatchObject({ code: "MANIFEST_INVALID", pointer: "/sitee" });

    const good = await cli(["validate", "--manifest", appCopy(), "--json"]);
    expect(good.code, why(good)).toBe(0);
    expect(report(good)).toMatchObject({ ok: true, command: "validate", errors: [] });
  });

  test("error: bad flags and apply without --yes off a terminal exit 2", async () => {
    const unknown = await cli(["apply", "--frobnicate", "--json"]);
    expect(unknown.code).toBe(2);
    expect(report(unknown).errors[0]?.code).toBe("CLI_USAGE");
    expect(unknown.stderr).toMatch(/Usage: run402-pulumi/);

    const noYes = await cli(["apply", "--manifest", appCopy(), "--json"]);
    expect(noYes.code).toBe(2);
    expect(report(noYes).errors[0]).toMatchObject({ code: "CLI_CONFIRMATION_REQUIRED" });
    expect(report(noYes).errors[0]?.message).toMatch(/--yes/);
  });

  test("behavior: x402: plan prices without paying, apply pays once, again pays nothing, renew pays the renewal, status, destroy", async () => {
    const manifest = appCopy();
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

  test("behavior: mpp: apply settles on mpp and the JSON agrees with the ledger; reconcile stops cleanly on SIGTERM", async () => {
    const manifest = appCopy();
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
    const manifest = appCopy();
    const { flags, env } = target(2, "cap");
    const apply = await cli(["apply", "--manifest", manifest, "--yes", "--max-spend", "0.05", ...flags], env);
    expect(apply.code, why(apply)).toBe(3);
    const doc = report(apply);
    expect(doc.ok).toBe(false);
    expect(doc.errors[0]?.code).toMatch(/^POLICY_/);
    expect(doc.payments).toEqual([]);
    expect(await paidBy(2)).toEqual([]);
  });

  test("behavior: apply on a terminal shows the plan and asks; no means nothing is paid", async () => {
    const manifest = appCopy();
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
    const manifest = appCopy();
    const { flags, env } = target(2, "api-error");
    await sandbox.fault({ route: "POST /tiers/v1/:tier", kind: "error_before_settlement", count: 20 });
    const apply = await cli(["apply", "--manifest", manifest, "--yes", ...flags], env);
    expect(apply.code, why(apply)).toBe(4);
    const doc = report(apply);
    expect(doc.errors[0]?.code).toMatch(/^RUN402_/);
    expect(doc.payments).toEqual([]);
    expect(await paidBy(2)).toEqual([]);
  });

  test("behavior: --sandbox (npm start): starts its own sandbox, prints the outputs with the settlement rail", async () => {
    const manifest = appCopy();
    const run = await cli(["apply", "--manifest", manifest, "--sandbox", "--yes"]);
    expect(run.code, why(run)).toBe(0);
    expect(run.stdout).toMatch(/lastSettlement\s+rail=x402/);
    expect(run.stdout).toMatch(/siteUrl\s+http:\/\/127\.0\.0\.1:/);
    expect(run.stderr).toMatch(/sandbox ready at/);
  });
});
