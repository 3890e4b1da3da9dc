/**
 * Issue 20, items 3 and 5, with the real local chains: "void" (pay again) is decided only from
 * block-pinned chain data, so a lagging RPC that has not seen a mined transaction cannot make the
 * payer pay twice; and the payer signs only on the networks the operator allowed (by default, the
 * chains of its configured RPCs), on both rails. Also pins the EIP-712 domain the x402 signer hands
 * viem (numeric chainId), which viem 2.58's string-chainId fix concerns.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Address, createPublicClient, type Hex, http, parseAbi } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  type Call,
  type Hostile,
  honestTier,
  type Reply,
  type Signed,
  spyAccount,
  startHostile,
  tierBody,
} from "~test/hostile.js";
import type { BaseError } from "../../core/errors.js";
import { createRun402, type Run402 } from "../client.js";
import type { Run402Event } from "../internal/events.js";
import type { SpendPolicy } from "./policy.js";
import type { RailName } from "./rail.js";

let h: Hostile;
beforeAll(async () => {
  h = await startHostile({ wallets: 8 });
});
afterAll(async () => {
  await h?.close();
});

type Rpcs = { base?: string; tempo?: string };
type TestPayer = {
  r402: Run402;
  signed: Signed[];
  address: Address;
  events: Run402Event[];
  /** Another client on the same wallet and journal (the next run), optionally on other RPCs. */
  rerun(rpcUrls?: Rpcs): Run402;
};

function payer(
  index: number,
  rail: RailName,
  options: { policy?: Partial<SpendPolicy>; rpcUrls?: Rpcs } = {},
): TestPayer {
  const wallet = h.chains.wallets[index]!;
  const spy = spyAccount(wallet.privateKey);
  const journalPath = join(mkdtempSync(join(tmpdir(), "r402-hostile-policy-")), "journal.jsonl");
  const events: Run402Event[] = [];
  const make = (rpcUrls?: Rpcs) =>
    createRun402({
      apiBase: h.api.url,
      wallet: { account: spy.account },
      rail,
      policy: { maxPaymentUsd: 1, maxSpendUsd: 5, ...options.policy },
      journal: { path: journalPath },
      rpcUrls: rpcUrls ?? options.rpcUrls ?? { base: h.chains.base.rpcUrl, tempo: h.chains.tempo.rpcUrl },
      timeoutMs: 20_000,
      onEvent: (e) => events.push(e),
    });
  return { r402: make(), signed: spy.signed, address: wallet.address, events, rerun: make };
}

async function failure(promise: Promise<unknown>): Promise<BaseError | null> {
  return promise.then(
    () => null,
    (e: unknown) => e as BaseError,
  );
}

const paymentRequired = { code: "PAYMENT_REQUIRED", message: "Payment required." };

async function challengeFor(call: Call): Promise<Reply> {
  const outcome = await h.gate.check(new Request(call.url, { method: call.method }), h.price);
  if (outcome.kind === "verified") throw new Error("unexpected verified outcome");
  return outcome.response;
}

/**
 * A JSON-RPC proxy on `h.other` in front of the local Tempo chain, as one lagging backend of a
 * load-balanced RPC: the methods in `lagging` answer as a node that has not seen recent blocks.
 */
function laggingTempoRpc(lagging: Record<string, (params: unknown[]) => unknown>): string {
  h.other.handle(async (call) => {
    const request = JSON.parse(call.body.toString("utf8")) as {
      id: number;
      method: string;
      params: unknown[];
    };
    const fake = lagging[request.method];
    if (fake) return { status: 200, body: { jsonrpc: "2.0", id: request.id, result: fake(request.params) } };
    const upstream = await fetch(h.chains.tempo.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: call.body,
    });
    return { status: 200, body: await upstream.json() };
  });
  return h.other.url;
}

/** Resolves once the Tempo chain's latest block is at or past `validBefore` (a chain event, polled). */
async function chainPast(validBefore: number): Promise<void> {
  const client = createPublicClient({ transport: http(h.chains.tempo.rpcUrl) });
  for (;;) {
    const block = await client.getBlock({ blockTag: "latest" });
    if (Number(block.timestamp) >= validBefore) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** A first run: the server broadcasts the mpp payment (it is mined), then drops the connection. */
async function paidThenDropped(p: TestPayer, intent: string): Promise<{ hash: Hex; validBefore: number }> {
  let hash: Hex | null = null;
  h.api.handle(
    honestTier(h, h.api, (_call, settlement) => {
      hash = settlement.reference;
      return "drop";
    }),
  );
  await failure(p.r402.tiers.set({ tier: "prototype", intent }));
  expect(hash).not.toBeNull();
  const tx = p.signed.find((s) => s.kind === "transaction") as Signed & { kind: "transaction" };
  return { hash: hash!, validBefore: Number(tx.transaction["validBefore"]) };
}

describe("mpp decides void only from block-pinned data", () => {
  test("error: a lagging RPC with no receipt for a mined transaction past validBefore does not make the rerun pay again: the blocks, read by hash, show it mined", {
    timeout: 180_000,
  }, async () => {
    const p = payer(0, "mpp");
    const [walletBefore, treasuryBefore] = await Promise.all([
      h.balance("mpp", p.address),
      h.balance("mpp", h.chains.treasury),
    ]);
    const { hash, validBefore } = await paidThenDropped(p, "lagging-receipt");
    await chainPast(validBefore);
    // The rerun's RPC is a backend that lost the receipt (null: "not mined", to a naive reader).
    const rpc = laggingTempoRpc({ eth_getTransactionReceipt: () => null });
    h.api.handle((call) => challengeFor(call));
    const again = await failure(
      p
        .rerun({ base: h.chains.base.rpcUrl, tempo: rpc })
        .tiers.set({ tier: "prototype", intent: "lagging-receipt" }),
    );
    expect(again?.code).toBe("PAYMENT_UNDELIVERED");
    expect((again as BaseError & { settlement?: { reference: string } }).settlement?.reference).toBe(hash);
    expect(p.signed.filter((s) => s.kind === "transaction")).toHaveLength(1);
    expect((await h.balance("mpp", h.chains.treasury)) - treasuryBefore).toBe(100_000n);
    expect(walletBefore - (await h.balance("mpp", p.address))).toBeGreaterThanOrEqual(100_000n);
    expect(walletBefore - (await h.balance("mpp", p.address))).toBeLessThan(200_000n);
  });

  test("error: a lagging RPC that cannot serve the blocks by hash either leaves the outcome unknown, never void: nothing is signed again", {
    timeout: 180_000,
  }, async () => {
    const p = payer(1, "mpp");
    const treasuryBefore = await h.balance("mpp", h.chains.treasury);
    const { validBefore } = await paidThenDropped(p, "lagging-blocks");
    await chainPast(validBefore);
    const rpc = laggingTempoRpc({ eth_getTransactionReceipt: () => null, eth_getBlockByHash: () => null });
    h.api.handle((call) => challengeFor(call));
    const again = await failure(
      p
        .rerun({ base: h.chains.base.rpcUrl, tempo: rpc })
        .tiers.set({ tier: "prototype", intent: "lagging-blocks" }),
    );
    expect(again?.code).toBe("PAYMENT_CHAIN_UNAVAILABLE");
    expect(p.signed.filter((s) => s.kind === "transaction")).toHaveLength(1);
    expect((await h.balance("mpp", h.chains.treasury)) - treasuryBefore).toBe(100_000n);
  });
});

/** A 402 offering one x402 requirement with these fields. */
function x402Offer(fields: Record<string, unknown>): Reply {
  const accepts = [
    {
      scheme: "exact",
      network: "eip155:84532",
      amount: "100000",
      asset: h.chains.base.usdc,
      payTo: h.chains.treasury,
      maxTimeoutSeconds: 300,
      extra: { name: "USDC", version: "2" },
      ...fields,
    },
  ];
  return { status: 402, headers: { "payment-required": h.x402Required(accepts) }, body: paymentRequired };
}

const BASE_MAINNET_USDC = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const TEMPO_MAINNET_USDCE = "0x20C000000000000000000000b9537d11c60E8b50";

describe("the payer signs only on networks the operator allowed", () => {
  test("error: a client whose RPC serves Base Sepolia refuses a Base mainnet USDC authorization before signing, naming run402:allowedNetworks", async () => {
    const p = payer(2, "x402");
    h.api.handle(() => x402Offer({ network: "eip155:8453", asset: BASE_MAINNET_USDC }));
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "mainnet-x402" }));
    expect(err?.code).toBe("POLICY_NETWORK");
    expect(err?.message).toMatch(/run402:allowedNetworks/);
    expect(p.signed).toEqual([]);
  });

  test("error: with no RPC configured, mainnet is not a default: refused before signing", async () => {
    const p = payer(3, "x402", { rpcUrls: {} });
    h.api.handle(() => x402Offer({ network: "eip155:8453", asset: BASE_MAINNET_USDC }));
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "mainnet-no-rpc" }));
    expect(err?.code).toBe("POLICY_NETWORK");
    expect(p.signed).toEqual([]);
  });

  test("error: a listed mainnet is still refused when the configured RPC serves another chain (x402 signs only for its RPC's chain)", async () => {
    const p = payer(4, "x402", { policy: { allowedNetworks: ["eip155:84532", "eip155:8453"] } });
    h.api.handle(() => x402Offer({ network: "eip155:8453", asset: BASE_MAINNET_USDC }));
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "mainnet-listed" }));
    expect(err?.code).toBe("POLICY_NETWORK");
    expect(err?.message).toMatch(/configured RPC serves eip155:84532/);
    expect(p.signed).toEqual([]);
  });

  test("error: mpp: a Tempo mainnet charge is refused before signing for a client on the Moderato RPC", async () => {
    const p = payer(5, "mpp");
    h.api.handle(() => ({
      status: 402,
      headers: {
        "www-authenticate": h.mppChallenge({
          amount: "100000",
          currency: TEMPO_MAINNET_USDCE,
          recipient: h.chains.treasury,
          methodDetails: { chainId: 4217 },
        }),
      },
      body: paymentRequired,
    }));
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "mainnet-mpp" }));
    expect(err?.code).toBe("POLICY_NETWORK");
    expect(err?.message).toMatch(/run402:allowedNetworks/);
    expect(p.signed).toEqual([]);
  });

  test("behavior: the configured RPC's chain is allowed by default and paid; the EIP-712 domain handed to viem has a numeric chainId", async () => {
    const p = payer(6, "x402");
    h.api.handle(honestTier(h, h.api));
    const treasuryBefore = await h.balance("x402", h.chains.treasury);
    await p.r402.tiers.set({ tier: "prototype", intent: "testnet" });
    expect((await h.balance("x402", h.chains.treasury)) - treasuryBefore).toBe(100_000n);
    expect(p.signed).toHaveLength(1);
    const [signed] = p.signed as (Signed & { kind: "typedData" })[];
    expect(signed?.primaryType).toBe("TransferWithAuthorization");
    // Exactly these four fields, chainId a number: viem < 2.58 signed a string chainId without it.
    expect(signed?.domain).toStrictEqual({
      name: "USDC",
      version: "2",
      chainId: 84532,
      verifyingContract: h.chains.base.usdc,
    });
  });
});

describe("a sale answering a repeated request is a second purchase", () => {
  test("error: the server sells a repeated keyed request while the earlier x402 authorization is unused: recorded as a second purchase, and the authorization is cancelled on chain so it can never move money too", {
    timeout: 180_000,
  }, async () => {
    const p = payer(7, "x402");
    h.api.handle((call) => (call.headers["payment-signature"] ? "drop" : challengeFor(call)));
    await failure(p.r402.tiers.set({ tier: "prototype", intent: "sold-again" }));
    const [dropped] = p.signed as (Signed & { kind: "typedData" })[];
    expect(dropped?.primaryType).toBe("TransferWithAuthorization");
    // Now the server answers the unpaid repeat with a sale (as from an allowance), not a replay.
    h.api.handle(() => ({
      status: 200,
      headers: { "x-run402-settlement-rail": "allowance" },
      body: tierBody(p.address),
    }));
    const treasuryBefore = await h.balance("x402", h.chains.treasury);
    const rerun = p.rerun();
    const out = await rerun.tiers.set({ tier: "prototype", intent: "sold-again" });
    expect(out.replayed).toBe(false);
    expect(rerun.payments()).toEqual([expect.objectContaining({ rail: "allowance", amountUsd: "0.10" })]);
    expect(p.events).toContainEqual(expect.objectContaining({ type: "payment.repurchased" }));
    expect(p.events).toContainEqual(expect.objectContaining({ type: "payment.cancelling" }));
    // The dropped authorization's nonce is spent by the cancellation: it can never transfer.
    const used = await createPublicClient({ transport: http(h.chains.base.rpcUrl) }).readContract({
      address: h.chains.base.usdc,
      abi: parseAbi(["function authorizationState(address authorizer, bytes32 nonce) view returns (bool)"]),
      functionName: "authorizationState",
      args: [p.address, dropped!.message["nonce"] as Hex],
    });
    expect(used).toBe(true);
    expect((await h.balance("x402", h.chains.treasury)) - treasuryBefore).toBe(0n);
  });
});
