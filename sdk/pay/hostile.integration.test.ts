/**
 * The payer against a hostile or faulty Run402: each test plays one attack or fault with
 * the sandbox's real chains and verifiers, and asserts on chain balances or on what the wallet signed.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Address,
  createPublicClient,
  decodeFunctionData,
  type Hex,
  http,
  maxUint256,
  parseAbi,
  type TransactionReceipt,
} from "viem";
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
import * as Journal from "./journal.js";
import * as Mpp from "./mpp.js";
import * as Payer from "./payer.js";
import type { SpendPolicy } from "./policy.js";
import type { Rail, RailName } from "./rail.js";
import * as X402 from "./x402.js";

let h: Hostile;
const realFetch = globalThis.fetch;
/** Requests anything in this process tried to send off this machine (none may leave). */
const outside: string[] = [];

beforeAll(async () => {
  // The hostile suite never reaches the network: every fetch to a non-loopback host is recorded and
  // refused (viem's RPC transport, mppx and the sdk all use the global fetch).
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.hostname !== "127.0.0.1") {
      outside.push(url.href);
      throw new TypeError(`refused by the hostile suite: ${url.href}`);
    }
    return realFetch(input, init);
  }) as typeof globalThis.fetch;
  h = await startHostile({ wallets: 22 });
});
afterAll(async () => {
  globalThis.fetch = realFetch;
  await h?.close();
});

const PERMIT2: Address = "0x000000000022D473030F116dDEE9F6B43aC78BA3";
const tokenAbi = parseAbi([
  "function transferWithMemo(address to, uint256 amount, bytes32 memo)",
  "function authorizationState(address authorizer, bytes32 nonce) view returns (bool)",
]);

type TestPayer = {
  r402: Run402;
  signed: Signed[];
  address: Address;
  journalPath: string;
  events: Run402Event[];
  /** Another client on the same wallet and journal: the next run. */
  rerun(): Run402;
};

function payer(
  index: number,
  rail: RailName,
  options: {
    policy?: Partial<SpendPolicy>;
    rpcUrls?: { base?: string; tempo?: string };
    apiBase?: string;
    journalPath?: string;
  } = {},
): TestPayer {
  const wallet = h.chains.wallets[index]!;
  const spy = spyAccount(wallet.privateKey);
  const journalPath =
    options.journalPath ?? join(mkdtempSync(join(tmpdir(), "r402-hostile-")), "journal.jsonl");
  const events: Run402Event[] = [];
  const make = () =>
    createRun402({
      apiBase: options.apiBase ?? h.api.url,
      wallet: { account: spy.account },
      rail,
      policy: { maxPaymentUsd: 1, maxSpendUsd: 5, ...options.policy },
      journal: { path: journalPath },
      rpcUrls: options.rpcUrls ?? { base: h.chains.base.rpcUrl, tempo: h.chains.tempo.rpcUrl },
      timeoutMs: 20_000,
      onEvent: (e) => events.push(e),
    });
  return { r402: make(), signed: spy.signed, address: wallet.address, journalPath, events, rerun: make };
}

/** The error a call failed with, or null when it succeeded (asserted last, after chain and signer). */
async function failure(promise: Promise<unknown>): Promise<BaseError | null> {
  return promise.then(
    () => null,
    (e: unknown) => e as BaseError,
  );
}

const paymentRequired = { code: "PAYMENT_REQUIRED", message: "Payment required." };
const usdc = () => h.chains.base.usdc;
const pathUsd = () => h.chains.tempo.pathUsd;

/** A 402 with exactly this MPP challenge. */
function mpp402(request: Record<string, unknown>): Reply {
  return { status: 402, headers: { "www-authenticate": h.mppChallenge(request) }, body: paymentRequired };
}

/** The gate's own dual-rail 402 for `call`. */
async function challengeFor(call: Call): Promise<Reply> {
  const outcome = await h.gate.check(new Request(call.url, { method: call.method }), h.price);
  if (outcome.kind === "verified") throw new Error("unexpected verified outcome");
  return outcome.response;
}

function decodeHeader(value: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(value, "base64").toString("utf8")) as Record<string, unknown>;
}

async function tempoReceipt(hash: Hex): Promise<TransactionReceipt> {
  return createPublicClient({ transport: http(h.chains.tempo.rpcUrl) }).getTransactionReceipt({ hash });
}

/** What an MPP payment costs the payer beyond the price (the Tempo fee, paid in pathUSD, rounded up). */
async function tempoFee(hash: Hex): Promise<bigint> {
  const r = await tempoReceipt(hash);
  return (r.gasUsed * r.effectiveGasPrice + 10n ** 12n - 1n) / 10n ** 12n;
}

describe("positive: what the wallet signs for a normal challenge", () => {
  test("x402: one EIP-3009 TransferWithAuthorization for the price, to the treasury, on Base Sepolia USDC", async () => {
    const p = payer(0, "x402");
    h.api.handle(honestTier(h, h.api));
    const before = await h.balance("x402", p.address);
    const t0 = Math.floor(Date.now() / 1000);
    const out = await p.r402.tiers.set({ tier: "prototype", intent: "positive-x402" });
    expect(before - (await h.balance("x402", p.address))).toBe(100000n);
    expect(p.signed).toHaveLength(1);
    const signed = p.signed[0]!;
    expect(signed.kind).toBe("typedData");
    if (signed.kind !== "typedData") return;
    expect(signed.primaryType).toBe("TransferWithAuthorization");
    expect(signed.domain).toEqual({ name: "USDC", version: "2", chainId: 84532, verifyingContract: usdc() });
    const { nonce, validBefore, ...rest } = signed.message as { nonce: Hex; validBefore: bigint };
    expect(rest).toEqual({ from: p.address, to: h.chains.treasury, value: 100000n, validAfter: 0n });
    expect(nonce).toMatch(/^0x[0-9a-f]{64}$/);
    expect(Number(validBefore) - t0).toBeGreaterThanOrEqual(300);
    expect(Number(validBefore) - t0).toBeLessThanOrEqual(302);
    expect(out.settlement).toMatchObject({ rail: "x402", amountAtomic: "100000", network: "eip155:84532" });
  });

  test("mpp: one Tempo transaction with one transferWithMemo of the price to the treasury, on chain 42431", async () => {
    const p = payer(1, "mpp");
    h.api.handle(honestTier(h, h.api));
    const before = await h.balance("mpp", p.address);
    const t0 = Math.floor(Date.now() / 1000);
    const out = await p.r402.tiers.set({ tier: "prototype", intent: "positive-mpp" });
    const hash = out.settlement!.reference as Hex;
    expect(before - (await h.balance("mpp", p.address))).toBe(100000n + (await tempoFee(hash)));
    expect(p.signed).toHaveLength(1);
    const signed = p.signed[0]!;
    expect(signed.kind).toBe("transaction");
    if (signed.kind !== "transaction") return;
    const tx = signed.transaction as {
      chainId: number;
      calls: { to: Address; data: Hex; value?: bigint }[];
      nonceKey: bigint;
      validBefore: number;
      feePayer?: unknown;
    };
    expect(tx.chainId).toBe(42431);
    expect(tx.nonceKey).toBe(maxUint256);
    expect(tx.validBefore - t0).toBeGreaterThan(0);
    expect(tx.validBefore - t0).toBeLessThanOrEqual(26);
    expect(tx.feePayer).toBeFalsy();
    expect(tx.calls).toHaveLength(1);
    expect(tx.calls[0]!.to.toLowerCase()).toBe(pathUsd().toLowerCase());
    const call = decodeFunctionData({ abi: tokenAbi, data: tx.calls[0]!.data });
    expect(call.functionName).toBe("transferWithMemo");
    expect(call.args.slice(0, 2)).toEqual([h.chains.treasury, 100000n]);
    expect(out.settlement).toMatchObject({ rail: "mpp", amountAtomic: "100000", network: "eip155:42431" });
  });
});

describe("hostile challenges are refused before anything is signed", () => {
  test("1. mpp splits that divert money to another address are refused", async () => {
    const p = payer(2, "mpp");
    h.api.handle(async (call) => {
      if (!call.headers.authorization)
        return mpp402({
          amount: "100000",
          currency: pathUsd(),
          recipient: h.chains.treasury,
          methodDetails: { chainId: 42431, splits: [{ amount: "90000", recipient: h.attacker }] },
        });
      await h.broadcastMpp(call.headers.authorization);
      return { status: 200, body: tierBody(p.address) };
    });
    const attackerBefore = await h.balance("mpp", h.attacker);
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "splits" }));
    expect(p.signed).toEqual([]);
    expect(await h.balance("mpp", h.attacker)).toBe(attackerBefore);
    expect(err?.code).toBe("POLICY_RECIPIENT");
  });

  test("1b. mpp splits to allowed recipients that add up are paid exactly as split", async () => {
    const p = payer(3, "mpp", { policy: { allowedRecipients: [h.chains.treasury, h.attacker] } });
    h.api.handle(async (call) => {
      if (!call.headers.authorization)
        return mpp402({
          amount: "100000",
          currency: pathUsd(),
          recipient: h.chains.treasury,
          methodDetails: { chainId: 42431, splits: [{ amount: "30000", recipient: h.attacker }] },
        });
      await h.broadcastMpp(call.headers.authorization);
      return { status: 200, body: tierBody(p.address) };
    });
    const [treasuryBefore, otherBefore] = await Promise.all([
      h.balance("mpp", h.chains.treasury),
      h.balance("mpp", h.attacker),
    ]);
    await p.r402.tiers.set({ tier: "prototype", intent: "splits-ok" });
    expect((await h.balance("mpp", h.chains.treasury)) - treasuryBefore).toBe(70000n);
    expect((await h.balance("mpp", h.attacker)) - otherBefore).toBe(30000n);
  });

  test("2. an mpp challenge that offers only push mode is refused: nothing is broadcast", async () => {
    const p = payer(4, "mpp");
    h.api.handle(async (call) => {
      if (!call.headers.authorization)
        return mpp402({
          amount: "100000",
          currency: pathUsd(),
          recipient: h.chains.treasury,
          methodDetails: { chainId: 42431, supportedModes: ["push"] },
        });
      return { status: 500, body: { code: "INTERNAL", message: "lost it" } };
    });
    const before = await h.balance("mpp", p.address);
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "push" }));
    expect(p.signed).toEqual([]);
    expect(await h.balance("mpp", p.address)).toBe(before);
    expect(err?.code).toBe("POLICY_CHALLENGE");
  });

  test("3. an mpp challenge naming no chain is refused, and no library default RPC is contacted", async () => {
    const p = payer(5, "mpp", { rpcUrls: { base: h.chains.base.rpcUrl } });
    h.api.handle(async (call) => {
      if (!call.headers.authorization)
        return mpp402({ amount: "100000", currency: pathUsd(), recipient: h.chains.treasury });
      return { status: 500, body: { code: "INTERNAL", message: "unexpected" } };
    });
    const seen = outside.length;
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "no-chain" }));
    expect(outside.slice(seen)).toEqual([]);
    expect(p.signed).toEqual([]);
    expect(err?.code).toBe("POLICY_CHALLENGE");
  });

  test("3b. an mpp challenge on a chain no RPC is configured for is refused", async () => {
    // The configured Tempo RPC serves 42431; mainnet (4217) is an allowed network but has no RPC here.
    const p = payer(5, "mpp");
    h.api.handle(async (call) => {
      if (!call.headers.authorization)
        return mpp402({
          amount: "100000",
          currency: pathUsd(),
          recipient: h.chains.treasury,
          methodDetails: { chainId: 4217 },
        });
      return { status: 500, body: { code: "INTERNAL", message: "unexpected" } };
    });
    const seen = outside.length;
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "mainnet-no-rpc" }));
    expect(outside.slice(seen)).toEqual([]);
    expect(p.signed).toEqual([]);
    expect(err?.code).toBe("POLICY_NETWORK");
  });

  test("4. x402 permit2 with an approval-sponsoring extension is refused: no approve() is signed", async () => {
    const p = payer(6, "x402");
    const requirement = {
      scheme: "exact",
      network: "eip155:84532",
      amount: "100000",
      asset: usdc(),
      payTo: h.chains.treasury,
      maxTimeoutSeconds: 300,
      extra: { name: "USDC", version: "2", assetTransferMethod: "permit2" },
    };
    h.api.handle(async (call) => {
      const header = call.headers["payment-signature"];
      if (!header)
        return {
          status: 402,
          headers: {
            "payment-required": h.x402Required([requirement], {
              extensions: { erc20ApprovalGasSponsoring: {} },
            }),
          },
          body: paymentRequired,
        };
      const payload = decodeHeader(header) as {
        extensions?: { erc20ApprovalGasSponsoring?: { info?: { signedTransaction?: Hex } } };
      };
      const raw = payload.extensions?.erc20ApprovalGasSponsoring?.info?.signedTransaction;
      if (raw) await h.broadcastBase(raw);
      return await challengeFor(call);
    });
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "permit2" }));
    expect(p.signed).toEqual([]);
    expect(await h.allowance(p.address, PERMIT2)).toBe(0n);
    expect(err?.code).toBe("POLICY_CHALLENGE");
  });

  test("4b. x402 extensions are refused, not stripped: even an empty one on an EIP-3009 offer", async () => {
    const p = payer(7, "x402");
    const requirement = {
      scheme: "exact",
      network: "eip155:84532",
      amount: "100000",
      asset: usdc(),
      payTo: h.chains.treasury,
      maxTimeoutSeconds: 300,
      extra: { name: "USDC", version: "2" },
    };
    h.api.handle(async (call) => {
      const header = call.headers["payment-signature"];
      if (!header)
        return {
          status: 402,
          headers: { "payment-required": h.x402Required([requirement], { extensions: { bazaar: {} } }) },
          body: paymentRequired,
        };
      await h.settleX402(header, requirement);
      return { status: 200, body: tierBody(p.address) };
    });
    const before = await h.balance("x402", p.address);
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "extensions" }));
    expect(p.signed).toEqual([]);
    expect(await h.balance("x402", p.address)).toBe(before);
    expect(err?.code).toBe("POLICY_CHALLENGE");
  });

  test("6. x402 v1 amount fields that disagree are refused (the policy would see one, the signer another)", async () => {
    const p = payer(8, "x402", { policy: { maxPaymentUsd: 1, maxSpendUsd: 0.05 } });
    const requirement = {
      scheme: "exact",
      network: "base-sepolia",
      amount: "10000",
      maxAmountRequired: "900000",
      resource: `${h.api.url}/tiers/v1/prototype`,
      description: "tier",
      mimeType: "application/json",
      payTo: h.chains.treasury,
      maxTimeoutSeconds: 300,
      asset: usdc(),
      extra: { name: "USDC", version: "2" },
    };
    h.api.handle(async (call) => {
      const header = call.headers["x-payment"];
      if (!header)
        return {
          status: 402,
          body: { ...paymentRequired, x402Version: 1, error: "pay", accepts: [requirement] },
        };
      await h.settleX402(header, requirement);
      return { status: 200, body: tierBody(p.address) };
    });
    const before = await h.balance("x402", p.address);
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "v1-amounts" }));
    expect(p.signed).toEqual([]);
    expect(await h.balance("x402", p.address)).toBe(before);
    expect(err?.code).toBe("POLICY_CHALLENGE");
  });

  test("7. string-typed numbers are refused (a string maxTimeoutSeconds would sign for ~5.7e9 years)", async () => {
    const p = payer(9, "x402");
    const requirement = {
      scheme: "exact",
      network: "eip155:84532",
      amount: "100000",
      asset: usdc(),
      payTo: h.chains.treasury,
      maxTimeoutSeconds: "31536000",
      extra: { name: "USDC", version: "2" },
    };
    h.api.handle(async (call) => {
      const header = call.headers["payment-signature"];
      if (!header)
        return {
          status: 402,
          headers: { "payment-required": h.x402Required([requirement]) },
          body: paymentRequired,
        };
      await h.settleX402(header, { ...requirement, maxTimeoutSeconds: 31536000 }).catch(() => undefined);
      return { status: 200, body: tierBody(p.address) };
    });
    const before = await h.balance("x402", p.address);
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "string-numbers" }));
    expect(p.signed).toEqual([]);
    expect(await h.balance("x402", p.address)).toBe(before);
    expect(err?.code).toBe("POLICY_CHALLENGE");
  });
});

describe("one intent is paid at most once", () => {
  test("5. a 402 after the settled paid retry is not a reason to pay again: the rerun finds the payment on chain", async () => {
    const p = payer(10, "x402");
    h.api.handle(honestTier(h, h.api, (call) => challengeFor(call)));
    const [walletBefore, treasuryBefore] = await Promise.all([
      h.balance("x402", p.address),
      h.balance("x402", h.chains.treasury),
    ]);
    const first = await failure(p.r402.tiers.set({ tier: "prototype", intent: "402-after-paid" }));
    const spentAfterFirst = p.r402.spentUsd();
    const second = await failure(p.rerun().tiers.set({ tier: "prototype", intent: "402-after-paid" }));
    expect(walletBefore - (await h.balance("x402", p.address))).toBe(100000n);
    expect((await h.balance("x402", h.chains.treasury)) - treasuryBefore).toBe(100000n);
    expect(spentAfterFirst).toBeCloseTo(0.1, 9);
    expect(first?.code).toBe("PAYMENT_REJECTED");
    expect(second?.code).toBe("PAYMENT_UNDELIVERED");
    expect(p.signed).toHaveLength(1);
  });

  test("5b. settled-then-402 payments count against the run cap", async () => {
    const p = payer(11, "x402", { policy: { maxPaymentUsd: 0.1, maxSpendUsd: 0.25 } });
    h.api.handle(honestTier(h, h.api, (call) => challengeFor(call)));
    const treasuryBefore = await h.balance("x402", h.chains.treasury);
    for (let i = 0; i < 5; i++) await failure(p.r402.tiers.set({ tier: "prototype", intent: `cap-${i}` }));
    const moved = (await h.balance("x402", h.chains.treasury)) - treasuryBefore;
    expect(moved).toBeLessThanOrEqual(250000n);
    expect(moved).toBe(200000n);
    expect(BigInt(Math.round(p.r402.spentUsd() * 1e6))).toBe(moved);
  });

  test("8. concurrent calls with one intent in one process sign one credential", async () => {
    const p = payer(12, "x402");
    // A naive server: replays a completed key on unpaid requests, settles every valid credential.
    const completed = new Map<string, Reply>();
    h.api.handle(async (call) => {
      const key = call.headers["idempotency-key"] ?? "";
      if (!call.headers["payment-signature"]) return completed.get(key) ?? (await challengeFor(call));
      const outcome = await h.gate.check(h.request(call), h.price);
      if (outcome.kind !== "verified") return outcome.response;
      const s = await outcome.settle();
      const reply = {
        status: 200,
        headers: { "x-run402-settlement-rail": "x402", ...s.receiptHeaders },
        body: tierBody(p.address),
      };
      completed.set(key, {
        ...reply,
        headers: { ...reply.headers, "x-run402-payment-deduplicated": "true" },
      });
      return reply;
    });
    const before = await h.balance("x402", p.address);
    const results = await Promise.allSettled([
      p.r402.tiers.set({ tier: "prototype", intent: "concurrent" }),
      p.r402.tiers.set({ tier: "prototype", intent: "concurrent" }),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled"]);
    expect(p.signed).toHaveLength(1);
    expect(before - (await h.balance("x402", p.address))).toBe(100000n);
  });

  test("12. mpp: paid, then the server failed and lost it: the rerun finds the transaction and never pays again", async () => {
    const p = payer(13, "mpp");
    let settledHash: Hex | null = null;
    h.api.handle(
      honestTier(h, h.api, (_call, settlement) => {
        settledHash = settlement.reference;
        return { status: 500, body: { code: "INTERNAL_ERROR", message: "database went away" } };
      }),
    );
    const [walletBefore, treasuryBefore] = await Promise.all([
      h.balance("mpp", p.address),
      h.balance("mpp", h.chains.treasury),
    ]);
    const first = await failure(p.r402.tiers.set({ tier: "prototype", intent: "paid-then-lost" }));
    expect(first?.status).toBe(500);
    expect(settledHash).not.toBeNull();
    const second = await failure(p.rerun().tiers.set({ tier: "prototype", intent: "paid-then-lost" }));
    expect(second?.code).toBe("PAYMENT_UNDELIVERED");
    expect(
      (second as (BaseError & { settlement?: { reference: string } }) | null)?.settlement?.reference,
    ).toBe(settledHash);
    const fee = await tempoFee(settledHash!);
    expect(walletBefore - (await h.balance("mpp", p.address))).toBe(100000n + fee);
    expect((await h.balance("mpp", h.chains.treasury)) - treasuryBefore).toBe(100000n);
    expect(p.signed).toHaveLength(1);
    const record = [...(await Journal.open({ path: p.journalPath }).intents()).values()][0]!;
    expect(record.state).toBe("paid");
    expect(record.settlement?.reference).toBe(settledHash);
  });

  test("scope: one wallet and journal against two APIs pays each once, without collisions", async () => {
    const journalPath = join(mkdtempSync(join(tmpdir(), "r402-scope-")), "journal.jsonl");
    const a = payer(14, "x402", { journalPath });
    const b = payer(14, "x402", { journalPath, apiBase: h.other.url });
    h.api.handle(honestTier(h, h.api));
    h.other.handle(honestTier(h, h.other));
    const before = await h.balance("x402", a.address);
    await a.r402.tiers.set({ tier: "prototype", intent: "same-intent" });
    const out = await b.r402.tiers.set({ tier: "prototype", intent: "same-intent" });
    expect(out.replayed).toBe(false);
    expect(before - (await h.balance("x402", a.address))).toBe(200000n);
    const keys = h.api.calls.concat(h.other.calls).map((c) => c.headers["idempotency-key"]);
    expect(new Set(keys.filter(Boolean)).size).toBe(2);
  });
});

describe("credentials never leave the API's origin", () => {
  test("9. a cross-origin redirect on the paid retry is an error; the other origin receives nothing", async () => {
    const p = payer(15, "x402");
    h.other.handle(honestTier(h, h.other));
    h.api.handle(async (call) => {
      if (!call.headers["payment-signature"]) return challengeFor(call);
      return { status: 307, headers: { location: `${h.other.url}/tiers/v1/prototype` } };
    });
    const treasuryBefore = await h.balance("x402", h.chains.treasury);
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "redirect" }));
    expect(h.other.calls).toEqual([]);
    expect(await h.balance("x402", h.chains.treasury)).toBe(treasuryBefore);
    expect(err?.code).toBe("HTTP_REDIRECT");
  });

  test("9b. a redirect on a GET does not carry the anon key elsewhere", async () => {
    const p = payer(15, "x402");
    h.other.handle(() => ({ status: 200, body: {} }));
    h.api.handle(() => ({ status: 302, headers: { location: `${h.other.url}/apply/v1/releases/active` } }));
    const err = await failure(p.r402.deploy.active({ anonKey: "anon-key-secret" }));
    expect(h.other.calls).toEqual([]);
    expect(err?.code).toBe("HTTP_REDIRECT");
  });

  test("10. an upload URL on another origin is refused before any byte is sent", async () => {
    const p = payer(15, "x402");
    const bytes = new TextEncoder().encode("<h1>hi</h1>");
    const sha = "a".repeat(64);
    h.other.handle(() => ({ status: 200, body: {} }));
    h.api.handle((call) => {
      if (call.path === "/apply/v1/plans")
        return {
          status: 201,
          body: {
            kind: "plan_response",
            plan_id: "plan_1",
            operation_id: null,
            is_noop: false,
            missing_content: [{ sha256: sha, size: bytes.length, content_type: "text/html" }],
            diff: {},
          },
        };
      if (call.path === "/content/v1/plans")
        return {
          status: 200,
          body: {
            plan_id: "cplan_1",
            missing: [
              {
                sha256: sha,
                mode: "single",
                parts: [
                  { part_number: 1, url: `${h.other.url}/upload`, byte_start: 0, byte_end: bytes.length },
                ],
              },
            ],
          },
        };
      return { status: 404, body: { code: "NOT_FOUND", message: call.path } };
    });
    const err = await failure(
      p.r402.deploy.apply({
        projectId: "prj_1",
        anonKey: "anon-key-secret",
        spec: {
          site: { replace: { "index.html": { sha256: sha, size: bytes.length, contentType: "text/html" } } },
        },
        content: new Map([[sha, { bytes, contentType: "text/html" }]]),
      }),
    );
    expect(h.other.calls).toEqual([]);
    expect(err?.code).toBe("HTTP_UPLOAD_URL_REFUSED");
  });

  test("11. an oversized response body is cut off, not read whole into memory", async () => {
    const p = payer(15, "x402");
    const total = 64 * 1024 * 1024;
    h.api.handle(() => ({
      status: 200,
      headers: { "content-type": "application/json" },
      stream: async (res) => {
        const chunk = Buffer.alloc(1024 * 1024, 0x20);
        let closed = false;
        res.on("close", () => {
          closed = true;
        });
        for (let sent = 0; sent < total && !closed; sent += chunk.length) {
          if (!res.write(chunk)) await new Promise((r) => res.once("drain", r).once("close", r));
        }
        res.end();
      },
    }));
    const err = await failure(p.r402.tiers.quote());
    expect(await h.api.streamed()).toBeLessThan(total / 2);
    expect(err?.code).toBe("HTTP_RESPONSE_TOO_LARGE");
  });
});

describe("maybe-paid is resolved on chain, not by waiting or trusting", () => {
  test("x402: an unused authorization the server never settled is cancelled on chain, then paid once", async () => {
    const p = payer(16, "x402");
    h.api.handle((call) => (call.headers["payment-signature"] ? "drop" : challengeFor(call)));
    const treasuryBefore = await h.balance("x402", h.chains.treasury);
    const first = await failure(p.r402.tiers.set({ tier: "prototype", intent: "dropped" }));
    expect(first?.code).toBe("HTTP_REQUEST_FAILED");
    const [dropped] = p.signed;
    h.api.handle(honestTier(h, h.api));
    const out = await p.rerun().tiers.set({ tier: "prototype", intent: "dropped" });
    expect((await h.balance("x402", h.chains.treasury)) - treasuryBefore).toBe(100000n);
    expect(out.settlement?.rail).toBe("x402");
    // The dropped authorization, its cancellation (signed, then sent by the wallet), the new one.
    expect(p.signed.map((s) => (s.kind === "typedData" ? s.primaryType : s.kind))).toEqual([
      "TransferWithAuthorization",
      "CancelAuthorization",
      "transaction",
      "TransferWithAuthorization",
    ]);
    const nonce = (dropped as Signed & { kind: "typedData" }).message["nonce"] as Hex;
    const used = await createPublicClient({ transport: http(h.chains.base.rpcUrl) }).readContract({
      address: usdc(),
      abi: tokenAbi,
      functionName: "authorizationState",
      args: [p.address, nonce],
    });
    expect(used).toBe(true);
    expect(p.events.some((e) => e.type === "payment.cancelling")).toBe(true);
  });

  test("mpp: an unused transaction the server never broadcast is waited out (with progress), then paid once", async () => {
    const p = payer(17, "mpp");
    h.api.handle((call) => (call.headers.authorization ? "drop" : challengeFor(call)));
    const treasuryBefore = await h.balance("mpp", h.chains.treasury);
    await failure(p.r402.tiers.set({ tier: "prototype", intent: "mpp-dropped" }));
    h.api.handle(honestTier(h, h.api));
    const out = await p.rerun().tiers.set({ tier: "prototype", intent: "mpp-dropped" });
    expect((await h.balance("mpp", h.chains.treasury)) - treasuryBefore).toBe(100000n);
    expect(out.settlement?.reference).toMatch(/^0x[0-9a-f]{64}$/);
    expect(p.signed.filter((s) => s.kind === "transaction")).toHaveLength(2);
    const waits = p.events.filter((e) => e.type === "payment.pending");
    expect(waits.length).toBeGreaterThan(0);
    expect(waits.every((e) => e.type === "payment.pending" && e.validUntil)).toBe(true);
    expect(p.events.some((e) => e.type === "payment.resolved" && e.outcome === "unpaid")).toBe(true);
  });

  test("recover(): a payment the server committed but failed to answer is found, with its transaction", async () => {
    const p = payer(18, "x402");
    // The server settles and stores the result, then fails before answering.
    const stored = honestTier(h, h.api);
    let failNext = true;
    h.api.handle(async (call) => {
      const reply = await stored(call);
      if (call.headers["payment-signature"] && failNext) {
        failNext = false;
        return { status: 502, body: { code: "BAD_GATEWAY", message: "upstream reset" } };
      }
      return reply;
    });
    const first = await failure(p.r402.tiers.set({ tier: "prototype", intent: "committed" }));
    expect(first?.status).toBe(502);
    const recovered = await p.rerun().recover();
    expect(recovered).toEqual([
      expect.objectContaining({
        intentId: "committed",
        outcome: "settled",
        settlement: expect.objectContaining({
          rail: "x402",
          reference: expect.stringMatching(/^0x[0-9a-f]{64}$/),
        }),
      }),
    ]);
    expect(p.signed).toHaveLength(1);
    expect(await p.rerun().recover()).toEqual([]);
  });
});

describe("what was signed is checked against what was approved", () => {
  test("a rail that signs for another recipient than the policy approved: discarded unsent, nothing paid", async () => {
    const wallet = h.chains.wallets[19]!;
    const spy = spyAccount(wallet.privateKey);
    const real = X402.create({ account: spy.account, rpcUrl: h.chains.base.rpcUrl });
    // As if the library changed: the policy is shown one recipient, the raw offer names another.
    const lying: Rail = {
      ...real,
      getChallenges(response, body) {
        const offers = real.getChallenges(response, body);
        return {
          ...offers,
          challenges: offers.challenges.map((c) => ({
            ...c,
            recipient: h.chains.treasury,
            transfers: [{ recipient: h.chains.treasury, amountAtomic: c.amountAtomic }],
          })),
        };
      },
    };
    const requirement = {
      scheme: "exact",
      network: "eip155:84532",
      amount: "100000",
      asset: usdc(),
      payTo: h.attacker,
      maxTimeoutSeconds: 300,
      extra: { name: "USDC", version: "2" },
    };
    h.api.handle(async (call) => {
      const header = call.headers["payment-signature"];
      if (!header)
        return {
          status: 402,
          headers: { "payment-required": h.x402Required([requirement]) },
          body: paymentRequired,
        };
      await h.settleX402(header, requirement);
      return { status: 200, body: tierBody(wallet.address) };
    });
    const journal = Journal.memory();
    const payer = Payer.create({
      rails: [lying],
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1, allowedRecipients: [h.chains.treasury] },
      journal,
      payer: wallet.address,
    });
    const t = {
      apiBase: new URL(h.api.url),
      fetch: globalThis.fetch,
      timeoutMs: 10_000,
      account: spy.account,
      emit: () => {},
    };
    const attackerBefore = await h.balance("x402", h.attacker);
    const err = await failure(
      payer.fetch(
        t,
        { method: "POST", path: "/tiers/v1/prototype", body: {}, auth: { kind: "siwx" } },
        { intentId: "lying", idempotencyKey: "k-lying" },
      ),
    );
    expect(h.api.calls.filter((c) => c.headers["payment-signature"])).toEqual([]);
    expect(await h.balance("x402", h.attacker)).toBe(attackerBefore);
    expect(p402Signed(spy.signed)).toEqual([]);
    expect(err?.code).toBe("PAYMENT_CREDENTIAL_MISMATCH");
    expect((await journal.get(h.api.url, "k-lying"))?.state).toBe("failed");
  });

  test("an mpp rail whose transaction pays more than approved: refused before signing, nothing sent", async () => {
    const wallet = h.chains.wallets[20]!;
    const spy = spyAccount(wallet.privateKey);
    const real = Mpp.create({ account: spy.account, rpcUrl: h.chains.tempo.rpcUrl });
    const lying: Rail = {
      ...real,
      getChallenges(response, body) {
        const offers = real.getChallenges(response, body);
        return {
          ...offers,
          // The policy is shown half the amount the raw offer (and so the library) pays.
          challenges: offers.challenges.map((c) => ({
            ...c,
            amountAtomic: c.amountAtomic / 2n,
            transfers: [{ recipient: c.recipient, amountAtomic: c.amountAtomic / 2n }],
          })),
        };
      },
    };
    h.api.handle(async (call) => {
      if (!call.headers.authorization)
        return mpp402({
          amount: "100000",
          currency: pathUsd(),
          recipient: h.chains.treasury,
          methodDetails: { chainId: 42431 },
        });
      await h.broadcastMpp(call.headers.authorization);
      return { status: 200, body: tierBody(wallet.address) };
    });
    const payer = Payer.create({
      rails: [lying],
      rail: "mpp",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1, allowedRecipients: [h.chains.treasury] },
      journal: Journal.memory(),
      payer: wallet.address,
    });
    const t = {
      apiBase: new URL(h.api.url),
      fetch: globalThis.fetch,
      timeoutMs: 10_000,
      account: spy.account,
      emit: () => {},
    };
    const before = await h.balance("mpp", wallet.address);
    const err = await failure(
      payer.fetch(
        t,
        { method: "POST", path: "/tiers/v1/prototype", body: {}, auth: { kind: "siwx" } },
        { intentId: "lying-mpp", idempotencyKey: "k-lying-mpp" },
      ),
    );
    expect(h.api.calls.filter((c) => c.headers.authorization)).toEqual([]);
    expect(await h.balance("mpp", wallet.address)).toBe(before);
    expect(spy.signed).toEqual([]);
    expect(err?.code).toBe("PAYMENT_CREDENTIAL_MISMATCH");
  });
});

/** Payment signatures only (the x402 guard signs nothing it refused). */
function p402Signed(signed: Signed[]): Signed[] {
  return signed.filter((s) => s.kind === "transaction" || s.primaryType === "TransferWithAuthorization");
}

test("the whole suite sent nothing off this machine (no library reached for a public RPC)", () => {
  expect(outside).toEqual([]);
});
