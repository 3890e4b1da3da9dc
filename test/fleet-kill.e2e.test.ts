/**
 * A fleet runner killed mid-payment (issue 24): runner A, a CLI process group with its own HOME and
 * work tree, applies a stack on a PostgreSQL backend (state and payment journal in one database)
 * through a proxy that lets the sandbox settle A's paid request and never answers it. A is then
 * SIGKILLed, as a runner host dies: its credential is out, its claim `pending` in the shared
 * journal. Runner B, on another stack with the same wallet (the tier lease is the wallet's: one
 * intent), must resolve A's claim without paying again: one payment in the sandbox's ledger and on
 * chain, B reporting that same settlement.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Address, createPublicClient, erc20Abi, http } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  assertBuilt,
  copyQuickstart,
  report,
  type Spawned,
  sandboxSettings,
  settingFlags,
  startCli,
  why,
} from "~test/cli-harness.js";
import { type HoldingProxy, holdingProxy } from "~test/holding-proxy.js";
import { startPostgres, type TestPostgres } from "~test/postgres.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import * as PgJournal from "../sdk/pay/journal-postgres.js";

let sandbox: TestSandbox;
let pg: TestPostgres;
let proxy: HoldingProxy;
let tmp: string;

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-fleet-kill-"));
  [sandbox, pg] = await Promise.all([startTestSandbox({ walletCount: 1 }), startPostgres()]);
  proxy = await holdingProxy(sandbox.apiBase);
});
afterAll(async () => {
  await proxy?.close();
  await Promise.all([sandbox?.close(), pg?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A runner's CLI, in a process group of its own, with its own HOME and work tree. */
function startRunner(name: string, stack: string): Spawned {
  const home = join(tmp, `home-${name}`);
  mkdirSync(home, { recursive: true });
  const tree = copyQuickstart(join(tmp, `tree-${name}`));
  const settings = {
    ...sandboxSettings(sandbox),
    apiBase: proxy.url,
    // The sandbox's content plans name its own origin for uploads, not the proxy's.
    uploadOrigins: sandbox.apiBase,
  };
  return startCli(
    tmp,
    [
      ...["apply", "--yes", "--manifest", join(tree, "app.json"), "--stack", stack, "--backend", pg.url],
      ...["--rail", "x402", "--json"],
      ...settingFlags(settings),
    ],
    {
      HOME: home,
      PULUMI_HOME: join(home, ".pulumi"),
      RUN402_CONFIG_DIR: join(home, ".config", "run402"),
      PULUMI_CONFIG_PASSPHRASE: "fleet-kill-passphrase",
      RUN402_PRIVATE_KEY: sandbox.wallets[0]!.privateKey,
    },
    { cwd: tree, unset: ["PULUMI_BACKEND_URL", "CI"], detached: true },
  );
}

async function usdc(owner: Address): Promise<bigint> {
  const pc = createPublicClient({ transport: http(sandbox.x402.rpcUrl) });
  return pc.readContract({
    address: sandbox.x402.asset,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [owner],
  });
}

describe("a fleet runner SIGKILLed between signing and the paid answer", () => {
  test("behavior: its claim stays pending in the shared journal; another runner, on another stack with the same wallet, resolves it without paying again", {
    timeout: 300_000,
  }, async () => {
    const wallet = sandbox.wallets[0]!.address;
    const before = await usdc(wallet);

    const held = proxy.holdNextPaid();
    const a = startRunner("a", "first");
    await Promise.race([
      held,
      a.done.then((run) => {
        throw new Error(`runner A exited before its paid answer was held:\n${why(run)}`);
      }),
    ]);
    process.kill(-(a.child.pid as number), "SIGKILL");
    await a.done;

    // Paid once, and A never heard of it: its claim is pending in the shared journal.
    const ledger = async () =>
      (await sandbox.ledger()).filter((e) => e.payer.toLowerCase() === wallet.toLowerCase());
    expect(await ledger()).toHaveLength(1);
    const journal = PgJournal.open({ url: pg.url });
    try {
      const open = await journal.unfinished();
      expect(open.map((r) => [r.state, r.wallet])).toEqual([["pending", wallet.toLowerCase()]]);
      const claim = open[0]!;

      const b = await startRunner("b", "second").done;
      expect(b.code, why(b)).toBe(0);
      // No second payment: the ledger, the chain and B's report agree on the one settlement.
      const paid = await ledger();
      expect(paid).toHaveLength(1);
      expect(before - (await usdc(wallet))).toBe(BigInt(paid[0]!.amount));
      // B signed nothing: it adopted the lease A's payment bought, resolved A's claim, and reports
      // and records that one settlement (the Tier's lastSettlement), never another.
      expect(report(b).payments.map((p) => p.reference)).toEqual([paid[0]!.reference]);
      const tier = report(b).resources.find((r) => r.type === "run402:Tier");
      expect(tier?.outputs?.["lastSettlement"], why(b)).toMatchObject({
        reference: paid[0]!.reference,
        rail: "x402",
      });
      // A's claim is settled now, by B, and nothing is left open.
      expect((await journal.get(claim.apiBase, claim.idempotencyKey))?.state).toBe("settled");
      expect(await journal.unfinished()).toEqual([]);
    } finally {
      await journal.close();
    }
  });
});
