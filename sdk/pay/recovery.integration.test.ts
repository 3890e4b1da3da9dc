/**
 * Issue 20, item 2 (recovery never buys), end to end against the sandbox with its real chains: a
 * purchase the server settled but did not store ("settled_not_stored"), then a wallet whose prepaid
 * allowance covers the price (so the server sells a repeated, unpaid keyed request from it, as
 * Run402 does). The rerun's repeated request is answered by a sale, not a replay: it must be
 * recorded as a second purchase, counted and reported, never booked as the first one's delivery;
 * and it is not even sent when a second sale would not fit the run's cap.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Address, createPublicClient, erc20Abi, http } from "viem";
import { afterAll, beforeAll, expect, test } from "vitest";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import type { BaseError } from "../../core/errors.js";
import { createRun402 } from "../client.js";
import type { Run402Event } from "../internal/events.js";
import { resolveWallet } from "../wallet.js";
import * as Journal from "./journal.js";

let sandbox: TestSandbox;
beforeAll(async () => {
  sandbox = await startTestSandbox({ walletCount: 2 });
});
afterAll(async () => {
  await sandbox?.close();
});

async function usdc(address: Address): Promise<bigint> {
  return createPublicClient({ transport: http(sandbox.x402.rpcUrl) }).readContract({
    address: sandbox.x402.asset,
    abi: erc20Abi,
    functionName: "balanceOf",
    args: [address],
  });
}

async function control(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${sandbox.apiBase}/_sandbox/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`/_sandbox/${path}: ${res.status} ${await res.text()}`);
}

test("error: a repeated keyed request answered by an allowance sale is a second purchase (recorded, counted, reported), never the first one's delivery; with no room under the cap it is not sent", {
  timeout: 240_000,
}, async () => {
  const { address, privateKey } = sandbox.wallets[0]!;
  const journalPath = join(mkdtempSync(join(tmpdir(), "r402-recovery-")), "journal.jsonl");
  const events: Run402Event[] = [];
  const client = (maxSpendUsd: number) =>
    createRun402({
      apiBase: sandbox.apiBase,
      wallet: resolveWallet({ privateKey }),
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd, allowedRecipients: [sandbox.treasury] },
      journal: { path: journalPath },
      rpcUrls: { base: sandbox.x402.rpcUrl, tempo: sandbox.mpp.rpcUrl },
      onEvent: (e) => events.push(e),
    });
  const [walletBefore, treasuryBefore] = await Promise.all([usdc(address), usdc(sandbox.treasury)]);

  // The first run: the server settles the payment on chain, then fails before delivering or storing.
  await sandbox.fault({ route: "POST /tiers/v1/:tier", kind: "settled_not_stored" });
  const first = await client(1)
    .tiers.set({ tier: "prototype", intent: "lost" })
    .then(
      () => null,
      (e: BaseError & { status?: number }) => e,
    );
  expect(first?.status).toBe(500);
  expect(walletBefore - (await usdc(address))).toBe(100_000n);
  expect((await usdc(sandbox.treasury)) - treasuryBefore).toBe(100_000n);
  expect(await sandbox.ledger()).toEqual([expect.objectContaining({ rail: "x402", amount: "100000" })]);

  // Meanwhile the org has prepaid allowance: an unpaid repeat of the keyed request would be sold.
  await control("allowance", { wallet: address, allowance_usd_micros: 1_000_000 });

  // A rerun whose cap has no room for a second sale does not ask the server at all.
  const requestsBefore = (await sandbox.requests()).length;
  const tight = await client(0.05)
    .tiers.set({ tier: "prototype", intent: "lost" })
    .then(
      () => null,
      (e: BaseError) => e,
    );
  expect(tight?.code).toBe("PAYMENT_OUTCOME_UNKNOWN");
  expect((await sandbox.requests()).slice(requestsBefore).filter((r) => r.method === "POST")).toEqual([]);
  expect(await sandbox.ledger()).toHaveLength(1);

  // A rerun with room: the server sells from the allowance instead of replaying.
  const rerun = client(1);
  const out = await rerun.tiers.set({ tier: "prototype", intent: "lost" });
  expect(out.replayed).toBe(false);
  expect(out.settlement).toMatchObject({ rail: "allowance", amountUsd: "0.10" });
  // Recorded with this run's payments and counted against its cap.
  expect(rerun.payments()).toEqual([expect.objectContaining({ rail: "allowance", amountUsd: "0.10" })]);
  // The sale, and the earlier credential that also moved money, both count against this run's cap.
  expect(rerun.spentUsd()).toBeCloseTo(0.2, 9);
  expect(events).toContainEqual(expect.objectContaining({ type: "payment.repurchased" }));
  expect(events.some((e) => e.type === "payment.replayed")).toBe(false);
  const [record] = [...(await Journal.open({ path: journalPath }).intents()).values()];
  expect(record).toMatchObject({
    state: "settled",
    error: "SECOND_PURCHASE",
    secondPurchase: { rail: "allowance", amountUsd: "0.10" },
  });
  // On chain the wallet paid once; the server's ledger holds both sales.
  expect(walletBefore - (await usdc(address))).toBe(100_000n);
  expect((await sandbox.ledger()).map((p) => p.rail)).toEqual(["x402", "allowance"]);
});

test("behavior: a stored result is delivered as a replay, marked the way Run402 marks one", {
  timeout: 240_000,
}, async () => {
  const { privateKey } = sandbox.wallets[1]!;
  const journalPath = join(mkdtempSync(join(tmpdir(), "r402-recovery-")), "journal.jsonl");
  const make = () =>
    createRun402({
      apiBase: sandbox.apiBase,
      wallet: resolveWallet({ privateKey }),
      rail: "mpp",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1, allowedRecipients: [sandbox.treasury] },
      journal: { path: journalPath },
      rpcUrls: { base: sandbox.x402.rpcUrl, tempo: sandbox.mpp.rpcUrl },
    });
  // Settled and stored, then the answer failed: the rerun gets the stored result, marked a replay.
  await sandbox.fault({ route: "POST /tiers/v1/:tier", kind: "error_after_settlement" });
  await make()
    .tiers.set({ tier: "prototype", intent: "stored" })
    .catch(() => null);
  const rerun = make();
  const out = await rerun.tiers.set({ tier: "prototype", intent: "stored" });
  expect(out.replayed).toBe(true);
  expect(rerun.payments()).toEqual([]);
  expect((await sandbox.ledger()).filter((p) => p.rail === "mpp")).toHaveLength(1);
});
