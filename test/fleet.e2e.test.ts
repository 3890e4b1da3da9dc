/**
 * A fleet: three runners as separate CLI processes (dist/cli/main.js), each with its own HOME,
 * work tree and Pulumi workspace, sharing only one PostgreSQL (state backend and, by default, the
 * payment journal in the same database) and one wallet, applying concurrently against the sandbox:
 * two of them the same stack (the backend's state lock serializes them), the third another stack
 * on the other rail. Every intent is paid exactly once (sandbox ledger and chain balances), and the
 * wallet's rolling budget, counted in the shared journal, is never exceeded.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Address, createPublicClient, erc20Abi, http } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  assertBuilt,
  copyQuickstart,
  type Run,
  report,
  runCli,
  sandboxSettings,
  settingFlags,
} from "~test/cli-harness.js";
import { startPostgres, type TestPostgres } from "~test/postgres.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import * as PgJournal from "../sdk/pay/journal-postgres.js";

let sandbox: TestSandbox;
let pg: TestPostgres;
let tmp: string;

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-fleet-"));
  [sandbox, pg] = await Promise.all([startTestSandbox({ walletCount: 2 }), startPostgres()]);
});
afterAll(async () => {
  await Promise.all([sandbox?.close(), pg?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** One runner: its own HOME, work tree (a copy of the quickstart app) and Pulumi workspace. */
function runner(name: string) {
  const home = join(tmp, `home-${name}`);
  mkdirSync(home, { recursive: true });
  const tree = copyQuickstart(join(tmp, `tree-${name}`));
  return (args: string[], wallet: number): Promise<Run> =>
    runCli(
      tmp,
      [...args, "--manifest", join(tree, "app.json")],
      {
        HOME: home,
        PULUMI_HOME: join(home, ".pulumi"),
        RUN402_CONFIG_DIR: join(home, ".config", "run402"),
        // One stack's secrets are read by every runner that applies it: one passphrase, from the CI's secret store.
        PULUMI_CONFIG_PASSPHRASE: "fleet-test-passphrase",
        RUN402_PRIVATE_KEY: sandbox.wallets[wallet]!.privateKey,
      },
      { cwd: tree, unset: ["PULUMI_BACKEND_URL", "CI"] },
    );
}

const flags = (stack: string, rail: "x402" | "mpp", budgetUsd: string) => [
  "--stack",
  stack,
  "--backend",
  pg.url,
  "--rail",
  rail,
  ...settingFlags({ ...sandboxSettings(sandbox), budgetUsd }),
  "--json",
];

const why = (run: Run) => `exit ${run.code}\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-3000)}`;

async function balance(rail: "x402" | "mpp", owner: Address): Promise<bigint> {
  const pc = createPublicClient({
    transport: http(rail === "x402" ? sandbox.x402.rpcUrl : sandbox.mpp.rpcUrl),
  });
  const token = rail === "x402" ? sandbox.x402.asset : sandbox.mpp.currency;
  return pc.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [owner] });
}

describe("a fleet of three runners on one PostgreSQL and one wallet", () => {
  test("behavior: concurrent applies, one stack from two runners and another stack on the other rail: every intent paid once, within the budget", async () => {
    const w = sandbox.wallets[0]!;
    const treasury = {
      x402: await balance("x402", sandbox.treasury),
      mpp: await balance("mpp", sandbox.treasury),
    };
    const [a, b, c] = [runner("a"), runner("b"), runner("c")];
    const runs = await Promise.all([
      a(["apply", "--yes", ...flags("shared", "x402", "0.15")], 0),
      b(["apply", "--yes", ...flags("shared", "x402", "0.15")], 0),
      c(["apply", "--yes", ...flags("other", "mpp", "0.15")], 0),
    ]);
    // Each runner either converged, or stopped without paying: the shared stack locked by the other
    // runner, or the tier's one intent (the lease is the wallet's) being paid by another runner. Never
    // the budget: another runner's claim of that same intent is no second spend.
    const ok = runs.filter((r) => r.code === 0);
    for (const run of runs.filter((r) => r.code !== 0)) {
      for (const code of report(run).errors.map((e) => e.code))
        expect(["CONFLICT_STACK_LOCKED", "INTENT_IN_PROGRESS"], why(run)).toContain(code);
      expect(report(run).payments, why(run)).toEqual([]);
    }
    expect(ok.length, runs.map(why).join("\n----\n")).toBeGreaterThanOrEqual(1);

    // The tier lease belongs to the wallet's organization: one intent, paid once, whoever came first.
    const paid = (await sandbox.ledger()).filter((e) => e.payer.toLowerCase() === w.address.toLowerCase());
    const keys = paid.map((e) => e.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
    expect(paid).toHaveLength(1);
    const rail = paid[0]!.rail as "x402" | "mpp";
    expect((await balance(rail, sandbox.treasury)) - treasury[rail]).toBe(BigInt(paid[0]!.amount));
    // Runners that found it paid report the same settlement (a replay), never another one.
    const reported = runs.flatMap((r) => report(r).payments);
    expect(reported.length).toBeGreaterThanOrEqual(1);
    expect(new Set(reported.map((p) => p.reference))).toEqual(new Set([paid[0]!.reference]));

    // The journal in the backend's own database knows that one claim, settled, within the budget.
    const journal = PgJournal.open({ url: pg.url });
    const records = [...(await journal.intents()).values()].filter(
      (r) => r.wallet === w.address.toLowerCase(),
    );
    expect(records.filter((r) => r.state === "settled" && r.claimedAt)).toHaveLength(1);
    expect(await journal.unfinished()).toEqual([]);
    const use = await journal.budgetUse({
      wallet: w.address,
      window: { seconds: 86_400, maxAtomic: 150_000n },
    });
    expect(use.windowAtomic).toBeLessThanOrEqual(150_000n);
    await journal.close();

    // The next wave converges every stack, from any runner, without paying again.
    const again = [
      await b(["apply", "--yes", ...flags("shared", "x402", "0.15")], 0),
      await c(["apply", "--yes", ...flags("other", "mpp", "0.15")], 0),
    ];
    for (const run of again) {
      expect(run.code, why(run)).toBe(0);
      expect(report(run).payments).toEqual([]);
    }
    expect(
      (await sandbox.ledger()).filter((e) => e.payer.toLowerCase() === w.address.toLowerCase()),
    ).toHaveLength(1);
  });
});
