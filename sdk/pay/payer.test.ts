import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Challenge } from "mppx";
import type { LocalAccount } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, test } from "vitest";
import { createRun402 } from "../client.js";
import {
  IntentAlreadyPaidError,
  PaymentAlreadyAttemptedError,
  type PaymentCredentialError,
  PaymentOutcomeUnknownError,
  PaymentRejectedError,
  RailNotOfferedError,
  SpendPolicyError,
} from "../errors/payment.js";
import type { Transport } from "../internal/http.js";
import { deriveKey } from "./idempotency.js";
import * as Journal from "./journal.js";
import * as Mpp from "./mpp.js";
import * as Payer from "./payer.js";
import type { SpendPolicy } from "./policy.js";
import { type Rail, SignedThenFailed } from "./rail.js";
import * as X402 from "./x402.js";

const key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const treasury = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const usdcBaseSepolia = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const pathUsd = "0x20c0000000000000000000000000000000000000";
// Not on loopback: a loopback API is a sandbox, whose rails refuse to sign without a configured RPC
// (sdk/pay/rpc.ts), and a unit test opens no socket to ask one. Every request goes to fakeApi.
const apiBase = "https://api.run402.test";

/** A real account whose payment-signing methods are counted (SIWX uses signMessage, payments never do). */
function spyAccount() {
  const base = privateKeyToAccount(key);
  const signed: string[] = [];
  const account: LocalAccount = {
    ...base,
    signTypedData: async (args) => {
      signed.push("signTypedData");
      return base.signTypedData(args);
    },
    signTransaction: async (tx, opts) => {
      signed.push("signTransaction");
      return base.signTransaction(tx, opts);
    },
  };
  return { account, signed };
}

type Offer = {
  x402?:
    | { network?: string; asset?: string; amount?: string; payTo?: string; maxTimeoutSeconds?: number }
    | false;
  mpp?:
    | { chainId?: number; currency?: string; amount?: string; recipient?: string; expires?: string }
    | false;
};

/** Real dual-rail 402 bytes, as ARCHITECTURE.md §Paid requests describes them. */
function challenge402(url: string, offer: Offer = {}): Response {
  const headers = new Headers({ "content-type": "application/json" });
  const body: Record<string, unknown> = {
    code: "PAYMENT_REQUIRED",
    message: "Payment required",
    category: "payment",
    retryable: true,
    safe_to_retry: true,
    next_actions: [{ type: "submit_payment" }],
  };
  if (offer.x402 !== false) {
    const x = offer.x402 ?? {};
    const paymentRequired = {
      x402Version: 2,
      error: "Payment required",
      resource: { url, description: "tier prototype", mimeType: "application/json" },
      accepts: [
        {
          scheme: "exact",
          network: x.network ?? "eip155:84532",
          amount: x.amount ?? "100000",
          asset: x.asset ?? usdcBaseSepolia,
          payTo: x.payTo ?? treasury,
          maxTimeoutSeconds: x.maxTimeoutSeconds ?? 300,
          extra: { name: "USDC", version: "2" },
        },
      ],
    };
    headers.set("PAYMENT-REQUIRED", Buffer.from(JSON.stringify(paymentRequired)).toString("base64"));
    Object.assign(body, paymentRequired);
  }
  if (offer.mpp !== false) {
    const m = offer.mpp ?? {};
    const ch = Challenge.from({
      secretKey: "0123456789abcdef0123456789abcdef",
      realm: "api.run402.test",
      method: "tempo",
      intent: "charge",
      request: {
        amount: m.amount ?? "100000",
        currency: m.currency ?? pathUsd,
        recipient: m.recipient ?? treasury,
        methodDetails: { chainId: m.chainId ?? 42431 },
      },
      expires: m.expires ?? new Date(Date.now() + 300_000).toISOString(),
    });
    headers.set("WWW-Authenticate", Challenge.serialize(ch));
  }
  return new Response(JSON.stringify(body), { status: 402, headers });
}

/** A stand-in Run402 answering each request through `answer`; records what it received. */
function fakeApi(answer: (req: Request, n: number) => Response | Promise<Response>) {
  const requests: Request[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    const req = new Request(input, init);
    requests.push(req.clone());
    return answer(req, requests.length);
  };
  return { fetch: fetch as typeof globalThis.fetch, requests };
}

/** The transport a test drives a Payer with directly: every request to `api`, events dropped. */
function transport(api: { fetch: typeof globalThis.fetch }, account: LocalAccount): Transport {
  return { apiBase: new URL(apiBase), fetch: api.fetch, timeoutMs: 1000, account, emit: () => {} };
}

const tierOk = {
  wallet: "0x0",
  action: "subscribe",
  tier: "prototype",
  previous_tier: null,
  lease_started_at: "2026-11-24T00:00:00.000Z",
  lease_expires_at: "2026-12-01T00:00:00.000Z",
  allowance_remaining_usd_micros: 0,
};

function client(
  offer: Offer,
  policy: Partial<SpendPolicy> = {},
  extra: { rail?: "x402" | "mpp"; journal?: { path: string } | false } = {},
) {
  const spy = spyAccount();
  const api = fakeApi((req) => challenge402(req.url, offer));
  const r402 = createRun402({
    apiBase,
    wallet: { account: spy.account },
    rail: extra.rail ?? "x402",
    policy: { maxPaymentUsd: 1, maxSpendUsd: 5, ...policy },
    journal: extra.journal ?? false,
    fetch: api.fetch,
  });
  return { r402, api, spy };
}

async function refusal(promise: Promise<unknown>): Promise<SpendPolicyError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SpendPolicyError);
  return err as SpendPolicyError;
}

describe("Payer: policy refusals sign nothing", () => {
  test("error: over the per-payment cap", async () => {
    const { r402, api, spy } = client({ x402: { amount: "5000000" } });
    const err = await refusal(r402.tiers.set({ tier: "hobby", intent: "t1" }));
    expect(err.code).toBe("POLICY_MAX_PAYMENT");
    expect(err.message).toMatchInlineSnapshot(`
      "Refused to pay on x402: 5.00 USD is over the per-payment limit of 1.00 USD. Nothing was signed.

      Asked: 5.00 USD
      Allowed: 1.00 USD"
    `);
    expect(spy.signed).toEqual([]);
    expect(api.requests).toHaveLength(1);
    expect(api.requests[0]!.headers.get("payment-signature")).toBeNull();
  });

  test("error: over the caller's cap for this payment (what a preview showed)", async () => {
    // Within the client's $1 cap, but over the $0.10 the caller planned.
    const { r402, api, spy } = client({ x402: { amount: "500000" } });
    const err = await refusal(r402.tiers.set({ tier: "prototype", intent: "t-planned", maxPaymentUsd: 0.1 }));
    expect(err.code).toBe("POLICY_MAX_PAYMENT");
    expect(err.shortMessage).toContain("0.50 USD is over the per-payment limit of 0.10 USD");
    expect(spy.signed).toEqual([]);
    expect(api.requests).toHaveLength(1);
  });

  test("error: over the run cap", async () => {
    const { r402, spy } = client({ x402: { amount: "900000" } }, { maxSpendUsd: 0.5 });
    const err = await refusal(r402.tiers.set({ tier: "prototype", intent: "t1" }));
    expect(err.code).toBe("POLICY_MAX_SPEND");
    expect(err.message).toMatchInlineSnapshot(`
      "Refused to pay on x402: 0.90 USD on top of 0.00 USD already spent is over the run limit of 0.50 USD. Nothing was signed.

      Asked: 0.90 USD
      Allowed: 0.50 USD"
    `);
    expect(spy.signed).toEqual([]);
  });

  test("error: wrong chain", async () => {
    const { r402, spy } = client({ x402: { network: "eip155:1" } });
    const err = await refusal(r402.tiers.set({ tier: "prototype", intent: "t1" }));
    expect(err.code).toBe("POLICY_NETWORK");
    expect(err.message).toMatchInlineSnapshot(`
      "Refused to pay on x402: network eip155:1 is not allowed (by default only the chain of the configured RPC, or the testnet when none is configured); an operator who means to pay there lists it in allowedNetworks (run402:allowedNetworks). Nothing was signed.

      Asked: eip155:1
      Allowed: eip155:84532"
    `);
    expect(spy.signed).toEqual([]);
  });

  test("error: wrong asset", async () => {
    const { r402, spy } = client({ x402: { asset: "0x1111111111111111111111111111111111111111" } });
    const err = await refusal(r402.tiers.set({ tier: "prototype", intent: "t1" }));
    expect(err.code).toBe("POLICY_ASSET");
    expect(err.message).toMatchInlineSnapshot(`
      "Refused to pay on x402: asset 0x1111111111111111111111111111111111111111 is not allowed. Nothing was signed.

      Asked: 0x1111111111111111111111111111111111111111
      Allowed: 0x036CbD53842c5426634e7929541eC2318f3dCF7e, 0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913, 0x20c0000000000000000000000000000000000000, 0x20C000000000000000000000b9537d11c60E8b50"
    `);
    expect(spy.signed).toEqual([]);
  });

  test("error: recipient outside the allow-list", async () => {
    const { r402, spy } = client({}, { allowedRecipients: ["0x2222222222222222222222222222222222222222"] });
    const err = await refusal(r402.tiers.set({ tier: "prototype", intent: "t1" }));
    expect(err.code).toBe("POLICY_RECIPIENT");
    expect(err.message).toMatchInlineSnapshot(`
      "Refused to pay on x402: recipient 0x90F79bf6EB2c4f870365E785982E1f101E93b906 is not allowed. Nothing was signed.

      Asked: 0x90F79bf6EB2c4f870365E785982E1f101E93b906
      Allowed: 0x2222222222222222222222222222222222222222"
    `);
    expect(spy.signed).toEqual([]);
  });

  test("error: recipient differs from the one pinned on first use", async () => {
    const dir = mkdtempSync(join(tmpdir(), "r402-pin-"));
    const path = join(dir, "journal.jsonl");
    await Journal.open({ path }).pin(apiBase, "x402", "0x3333333333333333333333333333333333333333");
    const { r402, spy } = client({}, {}, { journal: { path } });
    const err = await refusal(r402.tiers.set({ tier: "prototype", intent: "t1" }));
    expect(err.code).toBe("POLICY_RECIPIENT");
    expect(err.message).toMatchInlineSnapshot(`
      "Refused to pay on x402: recipient 0x90F79bf6EB2c4f870365E785982E1f101E93b906 differs from the one pinned on first use. Nothing was signed.

      Asked: 0x90F79bf6EB2c4f870365E785982E1f101E93b906
      Allowed: 0x3333333333333333333333333333333333333333"
    `);
    expect(spy.signed).toEqual([]);
  });

  test("error: expired mpp challenge", async () => {
    const { r402, spy } = client(
      { x402: false, mpp: { expires: new Date(Date.now() - 1000).toISOString() } },
      {},
      { rail: "mpp" },
    );
    const err = await refusal(r402.tiers.set({ tier: "prototype", intent: "t1" }));
    expect(err.code).toBe("POLICY_EXPIRY");
    expect(err.shortMessage).toMatch(/^Refused to pay on mpp: the challenge expired at /);
    expect(spy.signed).toEqual([]);
  });

  test("error: x402 authorization lifetime over the ceiling", async () => {
    const { r402, spy } = client({ x402: { maxTimeoutSeconds: 86_400 } }, { maxChallengeExpirySeconds: 600 });
    const err = await refusal(r402.tiers.set({ tier: "prototype", intent: "t1" }));
    expect(err.code).toBe("POLICY_EXPIRY");
    expect(err.message).toMatchInlineSnapshot(`
      "Refused to pay on x402: the challenge stays valid for 86400 s, over the 600 s ceiling. Nothing was signed.

      Asked: 86400 s
      Allowed: 600 s"
    `);
    expect(spy.signed).toEqual([]);
  });

  test("error: mpp chain not allowed", async () => {
    const { r402, spy } = client({ x402: false, mpp: { chainId: 1 } }, {}, { rail: "mpp" });
    const err = await refusal(r402.tiers.set({ tier: "prototype", intent: "t1" }));
    expect(err.code).toBe("POLICY_NETWORK");
    expect(spy.signed).toEqual([]);
  });
});

describe("Payer: rails", () => {
  test("error: the configured rail is not offered", async () => {
    const { r402, spy } = client({ mpp: false }, {}, { rail: "mpp" });
    const err = await r402.tiers.set({ tier: "prototype", intent: "t1" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RailNotOfferedError);
    expect((err as RailNotOfferedError).message).toMatchInlineSnapshot(
      `"The server did not offer the mpp rail for https://api.run402.test/tiers/v1/prototype; offered: x402."`,
    );
    expect(spy.signed).toEqual([]);
  });

  test("behavior: fallbackRail is used only when named", async () => {
    const spy = spyAccount();
    const api = fakeApi((req, n) =>
      n === 1
        ? challenge402(req.url, { mpp: false })
        : new Response(JSON.stringify(tierOk), {
            headers: {
              "content-type": "application/json",
              "x-run402-settlement-rail": "x402",
              "payment-response": Buffer.from(
                JSON.stringify({
                  success: true,
                  transaction: "0xabc",
                  network: "eip155:84532",
                  payer: spy.account.address,
                }),
              ).toString("base64"),
            },
          }),
    );
    const r402 = createRun402({
      apiBase,
      wallet: { account: spy.account },
      rail: "mpp",
      fallbackRail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 5 },
      journal: false,
      fetch: api.fetch,
    });
    const out = await r402.tiers.set({ tier: "prototype", intent: "t1" });
    expect(out.settlement?.rail).toBe("x402");
    expect(spy.signed).toEqual(["signTypedData"]);
  });

  test("error: a request that already carries a payment is refused", async () => {
    const spy = spyAccount();
    const api = fakeApi((req) => challenge402(req.url));
    const payer = Payer.create({
      rails: [],
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: Journal.memory(),
      payer: spy.account.address,
    });
    const t = transport(api, spy.account);
    const err = await payer
      .fetch(
        t,
        {
          method: "POST",
          path: "/tiers/v1/prototype",
          body: {},
          auth: { kind: "none" },
          headers: { "PAYMENT-SIGNATURE": "x" },
        },
        { intentId: "i", idempotencyKey: "k" },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentAlreadyAttemptedError);
    expect((err as Error).message).toMatchInlineSnapshot(
      `"Refused to pay a request that already carries a payment (payment-signature)."`,
    );
    expect(api.requests).toHaveLength(0);
  });
});

describe("Payer: paying", () => {
  test("default: pays once on x402 and records the settlement", async () => {
    const spy = spyAccount();
    const receipt = {
      success: true,
      transaction: `0x${"ab".repeat(32)}`,
      network: "eip155:84532",
      payer: spy.account.address,
    };
    const api = fakeApi((req, n) =>
      n === 1
        ? challenge402(req.url)
        : new Response(JSON.stringify(tierOk), {
            headers: {
              "content-type": "application/json",
              "x-run402-settlement-rail": "x402",
              "payment-response": Buffer.from(JSON.stringify(receipt)).toString("base64"),
            },
          }),
    );
    const r402 = createRun402({
      apiBase,
      wallet: { account: spy.account },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 5 },
      journal: false,
      fetch: api.fetch,
    });
    const out = await r402.tiers.set({ tier: "prototype", intent: "lease-1" });
    expect(out.replayed).toBe(false);
    expect(out.result.action).toBe("subscribe");
    const key = deriveKey({
      scope: apiBase,
      intent: "lease-1",
      method: "POST",
      route: "/tiers/v1/prototype",
      body: {},
    });
    expect(out.settlement).toMatchObject({
      rail: "x402",
      reference: receipt.transaction,
      network: "eip155:84532",
      asset: usdcBaseSepolia,
      amountAtomic: "100000",
      amountUsd: "0.10",
      payer: spy.account.address,
      recipient: treasury,
      idempotencyKey: key,
    });
    expect(r402.payments()).toHaveLength(1);
    expect(r402.spentUsd()).toBe(0.1);
    expect(spy.signed).toEqual(["signTypedData"]);
    expect(api.requests).toHaveLength(2);
    expect(api.requests[0]!.headers.get("idempotency-key")).toBe(key);
    expect(api.requests[1]!.headers.get("idempotency-key")).toBe(key);
    expect(api.requests[1]!.headers.get("payment-signature")).toBeTruthy();
  });

  test("behavior: the policy's cap is the only cap (no library default of $1 in the way)", async () => {
    const spy = spyAccount();
    const api = fakeApi((req, n) =>
      n === 1
        ? challenge402(req.url, { x402: { amount: "5000000" } })
        : new Response(JSON.stringify({ ...tierOk, tier: "hobby" }), {
            headers: { "content-type": "application/json", "x-run402-settlement-rail": "x402" },
          }),
    );
    const r402 = createRun402({
      apiBase,
      wallet: { account: spy.account },
      rail: "x402",
      policy: { maxPaymentUsd: 10, maxSpendUsd: 10 },
      journal: false,
      fetch: api.fetch,
    });
    const out = await r402.tiers.set({ tier: "hobby", intent: "h1" });
    expect(out.settlement).toMatchObject({ rail: "x402", reference: null, amountUsd: "5.00" });
    expect(spy.signed).toEqual(["signTypedData"]);
  });

  test("error: a 402 after the paid retry fails instead of paying again", async () => {
    const { r402, api, spy } = client({});
    const err = await r402.tiers.set({ tier: "prototype", intent: "t1" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentRejectedError);
    expect((err as Error).message).toMatchInlineSnapshot(`
      "The server answered the x402 payment for https://api.run402.test/tiers/v1/prototype with another 402.

      Server code: PAYMENT_REQUIRED
      The payment stays pending until the chain shows whether it was used; a rerun resolves it and never pays it twice.

      Details: Payment required"
    `);
    expect(api.requests).toHaveLength(2);
    expect(spy.signed).toEqual(["signTypedData"]);
  });

  test("behavior: an intent left signing is resolved by the keyed replay, not a new payment", async () => {
    const dir = mkdtempSync(join(tmpdir(), "r402-resume-"));
    const path = join(dir, "journal.jsonl");
    const idempotencyKey = deriveKey({
      scope: apiBase,
      intent: "lease-1",
      method: "POST",
      route: "/tiers/v1/prototype",
      body: {},
    });
    // As an older version wrote it: partial lines, `signing`, no API base, no proof.
    const legacy = {
      intentId: "lease-1",
      idempotencyKey,
      method: "POST",
      url: `${apiBase}/tiers/v1/prototype`,
    };
    writeFileSync(
      path,
      [
        { type: "intent", ...legacy, body: {}, state: "begun", updatedAt: "" },
        {
          type: "intent",
          ...legacy,
          state: "signing",
          rail: "x402",
          amountAtomic: "100000",
          recipient: treasury,
          network: "eip155:84532",
          asset: usdcBaseSepolia,
          updatedAt: "",
        },
      ]
        .map((l) => JSON.stringify(l))
        .join("\n"),
    );
    const spy = spyAccount();
    const api = fakeApi(
      () =>
        new Response(JSON.stringify(tierOk), {
          headers: {
            "content-type": "application/json",
            "x-run402-payment-deduplicated": "true",
            "x-run402-settlement-rail": "x402",
            "payment-response": Buffer.from(
              JSON.stringify({
                success: true,
                transaction: "0xfeed",
                network: "eip155:84532",
                payer: spy.account.address,
              }),
            ).toString("base64"),
          },
        }),
    );
    const r402 = createRun402({
      apiBase,
      wallet: { account: spy.account },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 5 },
      journal: { path },
      fetch: api.fetch,
    });
    const out = await r402.tiers.set({ tier: "prototype", intent: "lease-1" });
    expect(out.replayed).toBe(true);
    expect(out.settlement).toMatchObject({
      reference: "0xfeed",
      amountAtomic: "100000",
      recipient: treasury,
    });
    expect(spy.signed).toEqual([]);
    expect(r402.payments()).toEqual([]);
    expect((await Journal.open({ path }).get(apiBase, idempotencyKey))?.state).toBe("settled");
    expect(readFileSync(path, "utf8")).not.toContain(key.slice(2));
  });

  test("error: a settled intent asked to pay again is refused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "r402-settled-"));
    const path = join(dir, "journal.jsonl");
    const idempotencyKey = deriveKey({
      scope: apiBase,
      intent: "lease-1",
      method: "POST",
      route: "/tiers/v1/prototype",
      body: {},
    });
    await Journal.open({ path }).transition(
      {
        apiBase,
        intentId: "lease-1",
        idempotencyKey,
        method: "POST",
        url: `${apiBase}/tiers/v1/prototype`,
        state: "settled",
      },
      [undefined],
    );
    const { r402, spy } = client({}, {}, { journal: { path } });
    const err = await r402.tiers.set({ tier: "prototype", intent: "lease-1" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntentAlreadyPaidError);
    expect(spy.signed).toEqual([]);
  });

  test("behavior: an in-flight credential from a dead run is waited for, not paid again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "r402-inflight-"));
    const journal = Journal.open({ path: join(dir, "journal.jsonl") });
    const idempotencyKey = "k-inflight";
    const signing = {
      apiBase,
      intentId: "lease-1",
      idempotencyKey,
      method: "POST",
      url: `${apiBase}/tiers/v1/prototype`,
      body: {},
      state: "pending" as const,
      rail: "x402" as const,
      amountAtomic: "100000",
      recipient: treasury,
      validUntil: new Date(Date.now() + 60_000).toISOString(),
    };
    // Pending with no proof to ask the chain about: only how long the credential could settle.
    await journal.transition(signing, [undefined]);
    const spy = spyAccount();
    // The server only learns of the earlier credential on the third ask.
    const api = fakeApi((req, n) =>
      n < 3
        ? challenge402(req.url)
        : new Response(JSON.stringify(tierOk), {
            headers: { "content-type": "application/json", "x-run402-payment-deduplicated": "true" },
          }),
    );
    const rail = X402.create({ account: spy.account });
    const payer = Payer.create({
      rails: [rail],
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal,
      payer: spy.account.address,
      maxPendingWaitSeconds: 10,
    });
    const t = transport(api, spy.account);
    const spec = {
      method: "POST" as const,
      path: "/tiers/v1/prototype",
      body: {},
      auth: { kind: "none" as const },
    };
    const out = await payer.fetch(t, spec, { intentId: "lease-1", idempotencyKey });
    expect(out.replayed).toBe(true);
    expect(spy.signed).toEqual([]);
    expect(api.requests).toHaveLength(3);

    // Still unknown and still able to settle: refuse rather than pay again.
    await journal.transition({ ...signing, idempotencyKey: "k-unknown" }, [undefined]);
    const stuck = Payer.create({
      rails: [rail],
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal,
      payer: spy.account.address,
      maxPendingWaitSeconds: 1,
    });
    const never = fakeApi((req) => challenge402(req.url));
    const err = await stuck
      .fetch({ ...t, fetch: never.fetch }, spec, { intentId: "lease-1", idempotencyKey: "k-unknown" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentOutcomeUnknownError);
    expect((err as PaymentOutcomeUnknownError).code).toBe("PAYMENT_OUTCOME_UNKNOWN");
    expect(spy.signed).toEqual([]);
  });

  test("behavior: another runner claiming the same intent between our read and our budget check is waited for, not counted as our spend", async () => {
    const dir = mkdtempSync(join(tmpdir(), "r402-samekey-"));
    const shared = Journal.open({ path: join(dir, "journal.jsonl") });
    const idempotencyKey = "k-same";
    const spy = spyAccount();
    // The other runner (same wallet, same intent) claims it just before this payer reads the
    // budget: the real journal, with that interleaving forced.
    let otherClaimed = false;
    const journal: Journal.Journal = {
      ...shared,
      budgetUse: async (budget, except) => {
        if (!otherClaimed) {
          otherClaimed = true;
          const claimed = await shared.transition(
            {
              apiBase,
              intentId: "lease-1",
              idempotencyKey,
              method: "POST",
              url: `${apiBase}/tiers/v1/prototype`,
              body: {},
              state: "pending",
              rail: "x402",
              amountAtomic: "100000",
              recipient: treasury,
              wallet: spy.account.address,
              owner: "another-runner",
              validUntil: new Date(Date.now() + 60_000).toISOString(),
            },
            [undefined],
            { budget },
          );
          expect(claimed.ok).toBe(true);
        }
        return shared.budgetUse(budget, except);
      },
    };
    const api = fakeApi((req) => challenge402(req.url));
    const payer = Payer.create({
      rails: [X402.create({ account: spy.account })],
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal,
      payer: spy.account.address,
      // Room for one $0.10 purchase, not two: the same intent must not count twice.
      budget: { window: { seconds: 3600, maxUsd: 0.15 } },
    });
    const t = transport(api, spy.account);
    const err = await payer
      .fetch(
        t,
        { method: "POST", path: "/tiers/v1/prototype", body: {}, auth: { kind: "none" } },
        {
          intentId: "lease-1",
          idempotencyKey,
        },
      )
      .catch((e: unknown) => e);
    expect(otherClaimed).toBe(true);
    // The other runner's claim stands; this payer sent nothing paid and says whose it is.
    expect((err as { code?: string }).code).toBe("INTENT_IN_PROGRESS");
    expect(api.requests).toHaveLength(1);
    expect((await shared.get(apiBase, idempotencyKey))?.owner).toBe("another-runner");
  });

  test("behavior: a credential the chain shows used, whose server has not stored its answer yet, is delivered when asked again, not reported lost", async () => {
    const dir = mkdtempSync(join(tmpdir(), "r402-used-"));
    const journal = Journal.open({ path: join(dir, "journal.jsonl") });
    const idempotencyKey = "k-used";
    const validBefore = Math.floor(Date.now() / 1000) + 60;
    await journal.transition(
      {
        apiBase,
        intentId: "lease-1",
        idempotencyKey,
        method: "POST",
        url: `${apiBase}/tiers/v1/prototype`,
        body: {},
        state: "pending" as const,
        rail: "x402" as const,
        amountAtomic: "100000",
        recipient: treasury,
        validUntil: new Date(validBefore * 1000).toISOString(),
        proof: {
          rail: "x402",
          network: "eip155:84532",
          asset: usdcBaseSepolia,
          from: treasury,
          nonce: `0x${"11".repeat(32)}`,
          validBefore,
          domain: { name: "USDC", version: "2" },
        },
      },
      [undefined],
    );
    const spy = spyAccount();
    // The killed run's request settled on chain; the server stores its answer a moment later.
    const api = fakeApi((req, n) =>
      n < 2
        ? challenge402(req.url)
        : new Response(JSON.stringify(tierOk), {
            headers: { "content-type": "application/json", "x-run402-payment-deduplicated": "true" },
          }),
    );
    const real = X402.create({ account: spy.account });
    // The chain, as the rail reads it: the authorization was used by transaction 0xabc.
    const rail: typeof real = {
      ...real,
      name: real.name,
      getChallenges: (r, b) => real.getChallenges(r, b),
      createCredential: (c) => real.createCredential(c),
      chainState: async () => ({ state: "used", reference: "0xabc" }),
    };
    const payer = Payer.create({
      rails: [rail],
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal,
      payer: spy.account.address,
      maxPendingWaitSeconds: 10,
    });
    const t = transport(api, spy.account);
    const out = await payer.fetch(
      t,
      { method: "POST", path: "/tiers/v1/prototype", body: {}, auth: { kind: "none" } },
      { intentId: "lease-1", idempotencyKey },
    );
    expect(out.replayed).toBe(true);
    expect(out.settlement?.reference).toBe("0xabc");
    expect(spy.signed).toEqual([]);
    expect(api.requests).toHaveLength(2);
    expect((await journal.get(apiBase, idempotencyKey))?.state).toBe("settled");
  });

  test("behavior: v1 servers (402 body only, X-PAYMENT) are paid too", async () => {
    const spy = spyAccount();
    const v1 = {
      x402Version: 1,
      error: "X-PAYMENT header is required",
      accepts: [
        {
          scheme: "exact",
          network: "base-sepolia",
          maxAmountRequired: "100000",
          asset: usdcBaseSepolia,
          payTo: treasury,
          resource: `${apiBase}/tiers/v1/prototype`,
          description: "tier",
          mimeType: "application/json",
          maxTimeoutSeconds: 60,
          extra: { name: "USDC", version: "2" },
        },
      ],
    };
    const api = fakeApi((_req, n) =>
      n === 1
        ? new Response(JSON.stringify(v1), { status: 402, headers: { "content-type": "application/json" } })
        : new Response(JSON.stringify(tierOk), {
            headers: {
              "content-type": "application/json",
              "x-payment-response": Buffer.from(
                JSON.stringify({
                  success: true,
                  transaction: "0xv1",
                  network: "base-sepolia",
                  payer: spy.account.address,
                }),
              ).toString("base64"),
            },
          }),
    );
    const r402 = createRun402({
      apiBase,
      wallet: { account: spy.account },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: false,
      fetch: api.fetch,
    });
    const out = await r402.tiers.set({ tier: "prototype", intent: "v1" });
    expect(api.requests[1]!.headers.get("x-payment")).toBeTruthy();
    expect(api.requests[1]!.headers.get("payment-signature")).toBeNull();
    expect(out.settlement).toMatchObject({
      rail: "x402",
      reference: "0xv1",
      network: "eip155:84532",
      amountUsd: "0.10",
    });
  });

  test("behavior: a garbled receipt does not lose a delivered, paid result", async () => {
    const spy = spyAccount();
    const api = fakeApi((req, n) =>
      n === 1
        ? challenge402(req.url)
        : new Response(JSON.stringify(tierOk), {
            headers: {
              "content-type": "application/json",
              "x-run402-settlement-rail": "x402",
              "payment-response": "%%%",
            },
          }),
    );
    const r402 = createRun402({
      apiBase,
      wallet: { account: spy.account },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: false,
      fetch: api.fetch,
    });
    const out = await r402.tiers.set({ tier: "prototype", intent: "g" });
    expect(out.settlement).toMatchObject({ rail: "x402", reference: null, amountAtomic: "100000" });
    expect(r402.spentUsd()).toBe(0.1);
  });

  test("behavior: recover() settles what a dead run left signing, without paying", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "r402-recover-")), "journal.jsonl");
    const idempotencyKey = deriveKey({
      intent: "img-1",
      method: "POST",
      route: "/generate-image/v1",
      body: { prompt: "x" },
    });
    await Journal.open({ path }).transition(
      {
        apiBase,
        intentId: "img-1",
        idempotencyKey,
        method: "POST",
        url: `${apiBase}/generate-image/v1`,
        body: { prompt: "x" },
        state: "pending",
        rail: "x402",
        amountAtomic: "30000",
      },
      [undefined],
    );
    const spy = spyAccount();
    const api = fakeApi(
      () =>
        new Response(JSON.stringify({ image: "iVBORw0KGgo=", content_type: "image/png" }), {
          headers: { "content-type": "application/json", "x-run402-payment-deduplicated": "true" },
        }),
    );
    const r402 = createRun402({
      apiBase,
      wallet: { account: spy.account },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: { path },
      fetch: api.fetch,
    });
    expect(await r402.recover()).toEqual([
      {
        intentId: "img-1",
        idempotencyKey,
        outcome: "settled",
        settlement: expect.objectContaining({ rail: "x402", amountAtomic: "30000", idempotencyKey }),
      },
    ]);
    expect(await api.requests[0]!.json()).toEqual({ prompt: "x" });
    expect(api.requests[0]!.headers.get("idempotency-key")).toBe(idempotencyKey);
    expect(spy.signed).toEqual([]);
    expect(await r402.recover()).toEqual([]);
  });
});

describe("Payer: maybe paid is pending", () => {
  test("behavior: a rail that signed, then failed (its library may have broadcast), leaves the intent pending and counted", async () => {
    const spy = spyAccount();
    const api = fakeApi((req) => challenge402(req.url, { x402: false }));
    const proof = {
      rail: "mpp" as const,
      network: "eip155:42431",
      hash: `0x${"11".repeat(32)}`,
      validBefore: Math.floor(Date.now() / 1000) + 20,
    };
    const parser = Mpp.create({ account: spy.account });
    const broadcastThenTimedOut: Rail = {
      name: "mpp",
      getChallenges: (response, body) => parser.getChallenges(response, body),
      createCredential: async () => {
        throw new SignedThenFailed(proof, new Error("RPC timed out after eth_sendRawTransactionSync"));
      },
      chainState: async () => ({
        state: "unused",
        validBefore: proof.validBefore,
        chainTime: proof.validBefore - 20,
      }),
    };
    const journal = Journal.memory();
    const payer = Payer.create({
      rails: [broadcastThenTimedOut],
      rail: "mpp",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal,
      payer: spy.account.address,
    });
    const t = transport(api, spy.account);
    const err = await payer
      .fetch(
        t,
        { method: "POST", path: "/tiers/v1/prototype", body: {}, auth: { kind: "none" } },
        { intentId: "i", idempotencyKey: "k" },
      )
      .catch((e: unknown) => e);
    expect((err as PaymentCredentialError).code).toBe("PAYMENT_CREDENTIAL_FAILED");
    expect(await journal.get(apiBase, "k")).toMatchObject({
      state: "pending",
      proof,
      amountAtomic: "100000",
    });
    expect(payer.spentAtomic()).toBe(100000n);
    expect(api.requests).toHaveLength(1);
  });
});
