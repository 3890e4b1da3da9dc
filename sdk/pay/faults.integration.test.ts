/**
 * The sandbox's settlement fault knobs do what their names say, on both rails, checked on chain (the
 * treasury's balance) and on the sandbox's ledger, driven by our client: `error_before_settlement`
 * moves no money (on mpp too, where verifying broadcasts), `error_after_settlement` and
 * `drop_after_settlement` settle and store (a rerun gets the replay), `settled_not_stored` settles
 * and stores nothing (a rerun finds the payment on chain, undelivered, and never pays again).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Address, createPublicClient, erc20Abi, http } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type FaultSpec, startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import type { BaseError } from "../../core/errors.js";
import { createRun402 } from "../client.js";
import { resolveWallet } from "../wallet.js";

let sandbox: TestSandbox;
beforeAll(async () => {
  sandbox = await startTestSandbox({ walletCount: 8 });
});
afterAll(async () => {
  await sandbox?.close();
});

async function treasury(rail: "x402" | "mpp"): Promise<bigint> {
  const [rpc, token] =
    rail === "x402" ? [sandbox.x402.rpcUrl, sandbox.x402.asset] : [sandbox.mpp.rpcUrl, sandbox.mpp.currency];
  return createPublicClient({ transport: http(rpc) }).readContract({
    address: token as Address,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [sandbox.treasury],
  });
}

const kinds = [
  "error_before_settlement",
  "error_after_settlement",
  "drop_after_settlement",
  "settled_not_stored",
] as const;

describe.each(["x402", "mpp"] as const)("sandbox fault knobs on %s", (rail) => {
  test.each(kinds.map((kind, i) => [kind, i] as const))("%s", { timeout: 180_000 }, async (kind, i) => {
    const wallet = sandbox.wallets[(rail === "x402" ? 0 : 4) + i]!;
    const journalPath = join(mkdtempSync(join(tmpdir(), "r402-faults-")), "journal.jsonl");
    const client = () =>
      createRun402({
        apiBase: sandbox.apiBase,
        wallet: resolveWallet({ privateKey: wallet.privateKey }),
        rail,
        policy: { maxPaymentUsd: 1, maxSpendUsd: 1, allowedRecipients: [sandbox.treasury] },
        journal: { path: journalPath },
        rpcUrls: { base: sandbox.x402.rpcUrl, tempo: sandbox.mpp.rpcUrl },
      });
    const ledger = async () =>
      (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === wallet.address.toLowerCase());
    const before = await treasury(rail);
    await sandbox.fault({ route: "POST /tiers/v1/:tier", kind } satisfies FaultSpec);
    const first = await client()
      .tiers.set({ tier: "prototype", intent: kind })
      .then(
        () => null,
        (e: BaseError & { status?: number }) => e,
      );
    expect(first).not.toBeNull();
    if (kind === "error_before_settlement") {
      expect(first?.status).toBe(500);
      expect((await treasury(rail)) - before).toBe(0n);
      expect(await ledger()).toEqual([]);
      // Nothing moved, so the rerun pays once.
      const again = await client().tiers.set({ tier: "prototype", intent: kind });
      expect(again.replayed).toBe(false);
      expect((await treasury(rail)) - before).toBe(100_000n);
      return;
    }
    expect((await treasury(rail)) - before).toBe(100_000n);
    expect(await ledger()).toEqual([expect.objectContaining({ rail, amount: "100000" })]);
    if (kind === "settled_not_stored") {
      expect(first?.status).toBe(500);
      const again = await client()
        .tiers.set({ tier: "prototype", intent: kind })
        .then(
          () => null,
          (e: BaseError) => e,
        );
      expect(again?.code).toBe("PAYMENT_UNDELIVERED");
    } else {
      const again = await client().tiers.set({ tier: "prototype", intent: kind });
      expect(again.replayed).toBe(true);
    }
    expect((await treasury(rail)) - before).toBe(100_000n);
    expect(await ledger()).toHaveLength(1);
  });
});
