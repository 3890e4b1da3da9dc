/**
 * `run402-pulumi forecast` against the sandbox: two stacks on two wallets (one lease per wallet's
 * organization), one paying on x402 and one on MPP. Their forecast names each renewal's date (on the
 * sandbox's clock), tier, amount and rail, and writes and pays nothing; `plan` shows the same beside
 * what converging pays now. Then the sandbox clock moves past the due dates and `reconcile` pays
 * exactly what the forecasts said.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
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
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import type { ForecastReport } from "../cli/report.js";
import { atomicToUsd } from "../sdk/money.js";

const day = 24 * 60 * 60 * 1000;
let sandbox: TestSandbox;
let tmp: string;

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-forecast-"));
  sandbox = await startTestSandbox({ walletCount: 3 });
});
afterAll(async () => {
  await sandbox?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** Flags pointing the CLI at the sandbox (this run only; nothing is stored in the stack's config). */
function flags(wallet: number): string[] {
  return [
    ...settingFlags({ ...sandboxSettings(sandbox), journalPath: join(tmp, `journal-${wallet}.json`) }),
    "--json",
  ];
}

/** The CLI as wallet `wallet` against the sandbox. */
const cli = (args: string[], wallet: number): Promise<Run> =>
  runCli(tmp, [...args, ...flags(wallet)], { RUN402_PRIVATE_KEY: sandbox.wallets[wallet]!.privateKey });

/** Starts `reconcile`, sends SIGTERM once its first round is done, and waits for the exit. */
async function reconcileOnce(args: string[], wallet: number): Promise<Run> {
  const run = startCli(tmp, ["reconcile", ...args, ...flags(wallet)], {
    RUN402_PRIVATE_KEY: sandbox.wallets[wallet]!.privateKey,
  });
  await run.seen(/round 1 (done|failed)/);
  run.child.kill("SIGTERM");
  return run.done;
}

/** A digest of every file under `dir` (path, size, content). */
function digest(dir: string): string {
  const hash = createHash("sha256");
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else hash.update(`${path}\0${readFileSync(path).toString("base64")}\0`);
    }
  };
  walk(dir);
  return hash.digest("hex");
}

const doc = report;

describe("run402-pulumi forecast", () => {
  test("behavior: two stacks on two wallets: the forecast matches what reconcile pays once the clock reaches the due dates", async () => {
    const stacks = [
      { manifest: appCopy(tmp), wallet: 0, rail: "x402" },
      { manifest: appCopy(tmp), wallet: 1, rail: "mpp" },
    ];
    const leases: number[] = [];
    for (const s of stacks) {
      const apply = await cli(["apply", "--yes", "--manifest", s.manifest, "--rail", s.rail], s.wallet);
      expect(apply.code, why(apply)).toBe(0);
      expect(doc(apply).payments).toHaveLength(1);
      const tier = doc(apply).resources.find((r) => r.type === "run402:Tier");
      leases.push(Date.parse(String(tier?.outputs?.leaseExpiresAt)));
    }

    // The forecast: one renewal each within 6 days, due renewBeforeDays (2) before the 7-day lease ends.
    const ledgerBefore = await sandbox.ledger();
    const forecasts: ForecastReport[] = [];
    for (const [i, s] of stacks.entries()) {
      const state = join(dirname(s.manifest), ".run402", "state");
      const before = digest(state);
      const run = await cli(["forecast", "--manifest", s.manifest, "--days", "6"], s.wallet);
      expect(run.code, why(run)).toBe(0);
      const f = doc(run).forecast!;
      expect(f.days).toBe(6);
      expect(f.renewals).toEqual([
        {
          resource: "tier",
          wallet: sandbox.wallets[s.wallet]!.address,
          date: new Date(leases[i]! - 2 * day).toISOString(),
          tier: "prototype",
          action: "renew",
          amountUsd: "0.10",
          rail: s.rail,
        },
      ]);
      expect(f.byRail).toEqual({ [s.rail]: "0.10" });
      expect(f.totalUsd).toBe("0.10");
      // Nothing written, nothing paid.
      expect(digest(state)).toBe(before);
      forecasts.push(f);
    }
    // A shorter horizon holds nothing; a longer one the next renewals too (every 7 days).
    const none = await cli(["forecast", "--manifest", stacks[0]!.manifest, "--days", "4"], 0);
    expect(doc(none).forecast!.renewals).toEqual([]);
    const long = await cli(["forecast", "--manifest", stacks[0]!.manifest, "--days", "30"], 0);
    expect(doc(long).forecast!.renewals.map((r) => r.date)).toEqual(
      [2, 9, 16, 23].map((d) => new Date(leases[0]! - 2 * day + (d - 2) * day).toISOString()),
    );
    expect(doc(long).forecast!.totalUsd).toBe("0.40");

    // plan shows the same forecast beside what converging pays now (nothing, here).
    const plan = await cli(["plan", "--manifest", stacks[0]!.manifest, "--days", "6"], 0);
    expect(plan.code, why(plan)).toBe(0);
    expect(doc(plan).totalPlannedUsd).toBe("0.00");
    expect(doc(plan).forecast!.renewals).toEqual(forecasts[0]!.renewals);
    expect(await sandbox.ledger()).toEqual(ledgerBefore);

    // The sandbox clock moves past both due dates; one reconcile round per stack pays them.
    const due = Math.max(...leases) - 2 * day;
    const now = Date.parse(String((await fetch(`${sandbox.apiBase}/tiers/v1`)).headers.get("date")));
    await sandbox.advanceClock(Math.ceil((due - now) / 1000) + 3600);
    for (const s of stacks) {
      const loop = await reconcileOnce(
        ["--manifest", s.manifest, "--every", "1h", "--rail", s.rail],
        s.wallet,
      );
      expect(loop.code, why(loop)).toBe(0);
    }
    const paid = (await sandbox.ledger()).slice(ledgerBefore.length);
    const expected = forecasts.flatMap((f) =>
      f.renewals.map((r) => ({ payer: r.wallet!.toLowerCase(), amountUsd: r.amountUsd, rail: r.rail })),
    );
    const actual = paid.map((p) => ({
      payer: p.payer.toLowerCase(),
      amountUsd: atomicToUsd(BigInt(p.amount)),
      rail: p.rail,
    }));
    expect(actual).toEqual(expected);
  });

  test("error: forecast of a stack that does not exist, and a bad --days (exit 2)", async () => {
    const bad = await cli(["forecast", "--manifest", appCopy(tmp), "--days", "0"], 2);
    expect(bad.code, why(bad)).toBe(2);
    expect(doc(bad).errors[0]!.message).toContain("--days");
    const missing = await cli(["forecast", "--manifest", appCopy(tmp)], 2);
    expect(missing.code, why(missing)).not.toBe(0);
    expect(doc(missing).forecast).toBeUndefined();
  });
});
