/**
 * The payer's steps, each on its own (payer.ts: open → ask → choose → approve → reserve → sign →
 * claim → send → settle, and refuse): a memory journal, stub rails that sign nothing real, and a
 * transport whose fetch answers from here. payer.test.ts drives the same steps through the client.
 */
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, test } from "vitest";
import { ApiError } from "../errors/http.js";
import {
  IntentAlreadyPaidError,
  IntentInProgressError,
  PaymentCredentialError,
  PaymentRejectedError,
  RailNotOfferedError,
  SpendPolicyError,
} from "../errors/payment.js";
import type { Run402Event } from "../internal/events.js";
import type { RequestSpec, Transport } from "../internal/http.js";
import * as Journal from "./journal.js";
import {
  type Approval,
  type Attempt,
  approve,
  ask,
  type CreateOptions,
  choose,
  claim,
  context,
  create,
  hold,
  open,
  type PayerContext,
  refuse,
  reserve,
  send,
  settle,
  sign,
} from "./payer.js";
import type { Credential, PaymentChallenge, Proof, Rail, RailName } from "./rail.js";
import { SignedThenFailed } from "./rail.js";

const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const apiBase = "https://api.run402.test";
const url = `${apiBase}/tiers/v1/prototype`;
const treasury = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const other = "0x2222222222222222222222222222222222222222";
const usdc = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
const spec: RequestSpec = { method: "POST", path: "/tiers/v1/prototype", body: {}, auth: { kind: "none" } };
const intent = { intentId: "lease-1", idempotencyKey: "k-1" };

/** A challenge as a rail's parse returns it; its one transfer follows `recipient` and `amountAtomic`. */
function challenge(change: Partial<PaymentChallenge> = {}): PaymentChallenge {
  const recipient = change.recipient ?? treasury;
  const amountAtomic = change.amountAtomic ?? 100_000n;
  return {
    rail: "x402",
    network: "eip155:84532",
    asset: usdc,
    amountAtomic,
    recipient,
    transfers: [{ recipient, amountAtomic }],
    lifetimeSeconds: 300,
    expiresAt: null,
    raw: null,
    ...change,
  };
}

const proof = (validBefore = Math.floor(Date.now() / 1000) + 300): Proof => ({
  rail: "x402",
  network: "eip155:84532",
  asset: usdc,
  from: account.address,
  nonce: `0x${"11".repeat(32)}`,
  validBefore,
  domain: { name: "USDC", version: "2" },
});

/** A rail that offers `offered` and "signs" a fixed credential; records what it was asked to sign. */
function stubRail(
  name: RailName = "x402",
  change: Partial<Rail> & { offered?: PaymentChallenge[] } = {},
): Rail & { signing: PaymentChallenge[] } {
  const signing: PaymentChallenge[] = [];
  const { offered = [challenge({ rail: name })], ...rest } = change;
  return {
    name,
    getChallenges: () => ({ challenges: offered, refused: [] }),
    createCredential: async (c) => {
      signing.push(c);
      return { headers: { "PAYMENT-SIGNATURE": "signed" }, proof: proof() } satisfies Credential;
    },
    chainState: async () => ({ state: "void" }),
    ...rest,
    signing,
  };
}

/** A transport whose fetch answers through `answer`; records the requests and the events. */
function fakeTransport(
  answer: (req: Request, n: number) => Response = () => new Response(null, { status: 402 }),
) {
  const requests: Request[] = [];
  const events: Run402Event[] = [];
  const t: Transport = {
    apiBase: new URL(apiBase),
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      const req = new Request(input, init);
      requests.push(req);
      return answer(req, requests.length);
    }) as typeof fetch,
    timeoutMs: 1000,
    account,
    emit: (event) => events.push(event),
  };
  const refused = () => events.filter((e) => e.type === "payment.refused");
  /** The payment events, in order (requests are reported too). */
  const payment = (): string[] => events.map((e) => e.type).filter((type) => type.startsWith("payment."));
  return { t, requests, events, refused, payment };
}

const ok = (headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ ok: true }), { headers: { "content-type": "application/json", ...headers } });
const paymentRequired = () =>
  new Response(JSON.stringify({ code: "PAYMENT_REQUIRED", message: "Payment required" }), {
    status: 402,
    headers: { "content-type": "application/json" },
  });

/** The payer's context over a memory journal (unless given), paying on `rails[0]`. */
function setup(change: Partial<CreateOptions> = {}): PayerContext {
  const rails = change.rails ?? [stubRail()];
  return context({
    rails,
    rail: rails[0]?.name ?? "x402",
    policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
    journal: Journal.memory(),
    payer: account.address,
    ...change,
  });
}

/** The attempt `open` starts for `intent`. */
async function attempt(ctx: PayerContext, t: Transport, maxPaymentUsd?: number): Promise<Attempt> {
  const opened = await open(ctx, t, spec, { ...intent, maxPaymentUsd });
  if ("done" in opened) throw new Error("expected a fresh attempt");
  return opened.attempt;
}

/** The approval of `c` on `ctx`'s first rail, as `approve` would make it. */
function approval(
  ctx: PayerContext,
  c: PaymentChallenge = challenge(),
  pinned: string | null = treasury,
): Approval {
  const impl = ctx.rails[0]!;
  return {
    url,
    rail: impl.name,
    impl,
    offer: { challenges: [c], refused: [] },
    challenge: c,
    pinned,
    held: null,
    configuredNetwork: null,
  };
}

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a refusal");
    },
    (e: unknown) => e,
  );
}

/** A claim of another intent on the wallet, `amountAtomic` of it, as another process makes it. */
async function earlierClaim(journal: Journal.Journal, amountAtomic: string) {
  const claimed = await journal.transition(
    {
      apiBase,
      intentId: "other",
      idempotencyKey: "k-other",
      method: "POST",
      url,
      state: "pending",
      rail: "x402",
      amountAtomic,
      wallet: account.address.toLowerCase(),
      owner: "1@another-host",
    },
    [undefined],
  );
  expect(claimed.ok).toBe(true);
}

describe("Payer step open", () => {
  test("error: an intent another live process is paying is refused, nothing sent", async () => {
    const ctx = setup();
    await ctx.journal.transition(
      { apiBase, ...intent, method: "POST", url, state: "pending", owner: "4242@another-host" },
      [undefined],
    );
    const { t, requests } = fakeTransport();
    expect(await thrown(open(ctx, t, spec, intent))).toBeInstanceOf(IntentInProgressError);
    expect(requests).toHaveLength(0);
  });

  test("default: a fresh intent starts from an unwritten record; the call's cap only tightens the policy", async () => {
    const ctx = setup();
    const a = await attempt(ctx, fakeTransport().t, 5);
    expect(a.record).toMatchObject({ apiBase, idempotencyKey: "k-1", url, state: "begun" });
    expect(await ctx.journal.get(apiBase, "k-1")).toBeUndefined();
    expect(a.policy.maxPaymentUsd).toBe(1);
    expect((await attempt(ctx, fakeTransport().t, 0.1)).policy.maxPaymentUsd).toBe(0.1);
    expect(a.keyed.headers).toEqual({ "Idempotency-Key": "k-1" });
  });
});

describe("Payer step ask", () => {
  test("error: a 402 for an intent settled before is refused (never paid twice)", async () => {
    const ctx = setup();
    await ctx.journal.transition({ apiBase, ...intent, method: "POST", url, state: "settled" }, [undefined]);
    const { t } = fakeTransport(paymentRequired);
    const opened = await open(ctx, t, spec, intent);
    if ("done" in opened) throw new Error("expected an attempt");
    expect(await thrown(ask(ctx, opened.attempt))).toBeInstanceOf(IntentAlreadyPaidError);
  });

  test("behavior: a marked replay settles the intent without a challenge", async () => {
    const ctx = setup();
    const { t, payment } = fakeTransport(() => ok({ "x-run402-payment-deduplicated": "true" }));
    const asked = await ask(ctx, await attempt(ctx, t));
    expect("done" in asked && asked.done.replayed).toBe(true);
    expect((await ctx.journal.get(apiBase, "k-1"))?.state).toBe("settled");
    expect(payment()).toEqual(["payment.replayed"]);
  });

  test("error: another failure status is an ApiError, nothing recorded", async () => {
    const ctx = setup();
    const { t } = fakeTransport(
      () => new Response(JSON.stringify({ code: "NOPE", message: "no" }), { status: 400 }),
    );
    expect(await thrown(ask(ctx, await attempt(ctx, t)))).toBeInstanceOf(ApiError);
    expect(await ctx.journal.get(apiBase, "k-1")).toBeUndefined();
  });
});

describe("Payer step choose", () => {
  test("error: neither the rail nor a fallback offered: refused, recorded failed, nothing signed", async () => {
    const mpp = stubRail("mpp", { offered: [] });
    const x402 = stubRail("x402");
    const ctx = setup({ rails: [mpp, x402], rail: "mpp" });
    const { t, refused } = fakeTransport(paymentRequired);
    const a = await attempt(ctx, t);
    const err = await thrown(choose(ctx, a, { response: paymentRequired(), body: null, url }));
    expect(err).toBeInstanceOf(RailNotOfferedError);
    expect((err as RailNotOfferedError).message).toContain("offered: x402");
    expect(await ctx.journal.get(apiBase, "k-1")).toMatchObject({
      state: "failed",
      error: "RAIL_NOT_OFFERED",
    });
    expect(refused()).toEqual([]);
    expect(x402.signing).toEqual([]);
  });

  test("behavior: the fallback is taken only when named", async () => {
    const ctx = setup({
      rails: [stubRail("mpp", { offered: [] }), stubRail("x402")],
      rail: "mpp",
      fallbackRail: "x402",
    });
    const { t } = fakeTransport();
    const choice = await choose(ctx, await attempt(ctx, t), { response: paymentRequired(), body: null, url });
    expect(choice.rail).toBe("x402");
  });
});

describe("Payer step approve", () => {
  /** What approve makes of one offered challenge. */
  async function approving(c: PaymentChallenge, change: Partial<CreateOptions> = {}, maxPaymentUsd?: number) {
    const rail = stubRail("x402", { offered: [c] });
    const ctx = setup({ rails: [rail], ...change });
    const fake = fakeTransport();
    const a = await attempt(ctx, fake.t, maxPaymentUsd);
    const choice = await choose(ctx, a, { response: paymentRequired(), body: null, url });
    const result = await approve(ctx, a, choice).catch((e: unknown) => e);
    return { ctx, result, rail, fake };
  }

  test("default: a challenge within the policy is approved, unsigned", async () => {
    const { result, rail } = await approving(challenge());
    expect((result as Approval).challenge.amountAtomic).toBe(100_000n);
    expect(rail.signing).toEqual([]);
  });

  test.each([
    ["another chain", challenge({ network: "eip155:8453" }), "POLICY_NETWORK"],
    ["another asset", challenge({ asset: "0x1111111111111111111111111111111111111111" }), "POLICY_ASSET"],
    ["another recipient than the allowed", challenge({ recipient: other }), "POLICY_RECIPIENT"],
    ["an amount over the per-payment cap", challenge({ amountAtomic: 1_000_001n }), "POLICY_MAX_PAYMENT"],
  ])("error: %s is refused, recorded failed, reported once", async (_what, c, code) => {
    const { ctx, result, rail, fake } = await approving(c, {
      policy: { maxPaymentUsd: 1, maxSpendUsd: 5, allowedRecipients: [treasury] },
    });
    expect(result).toBeInstanceOf(SpendPolicyError);
    expect((result as SpendPolicyError).code).toBe(code);
    expect(await ctx.journal.get(apiBase, "k-1")).toMatchObject({ state: "failed", error: code });
    expect(fake.refused()).toEqual([expect.objectContaining({ code, url })]);
    expect(rail.signing).toEqual([]);
  });

  test("error: over the call's own cap (what a preview showed)", async () => {
    const { result } = await approving(challenge({ amountAtomic: 500_000n }), {}, 0.1);
    expect((result as SpendPolicyError).code).toBe("POLICY_MAX_PAYMENT");
  });

  test("error: what other calls of this process are signing right now counts against the run cap", async () => {
    const rail = stubRail("x402");
    const ctx = setup({ rails: [rail] });
    ctx.reserved.atomic = 950_000n;
    const { t } = fakeTransport();
    const a = await attempt(ctx, t);
    const choice = await choose(ctx, a, { response: paymentRequired(), body: null, url });
    const err = await thrown(approve(ctx, a, choice));
    expect((err as SpendPolicyError).code).toBe("POLICY_MAX_SPEND");
  });

  test("error: a recipient other than the one pinned on first use is refused", async () => {
    const journal = Journal.memory();
    await journal.pin(apiBase, "x402", other);
    const { result } = await approving(challenge(), { journal });
    expect((result as SpendPolicyError).code).toBe("POLICY_RECIPIENT");
  });
});

describe("Payer step reserve", () => {
  test("error: a payment over the wallet budget (claims of every process sharing the journal) is refused before signing", async () => {
    const journal = Journal.memory();
    await earlierClaim(journal, "100000");
    const ctx = setup({ journal, budget: { window: { seconds: 3600, maxUsd: 0.15 } } });
    const { t, refused } = fakeTransport();
    const err = await thrown(reserve(ctx, await attempt(ctx, t), approval(ctx)));
    expect(err).toBeInstanceOf(SpendPolicyError);
    expect((err as SpendPolicyError).code).toBe("POLICY_BUDGET_WINDOW");
    expect((err as SpendPolicyError).message).toContain("Nothing was signed.");
    expect(ctx.reserved.atomic).toBe(0n);
    expect(await ctx.journal.get(apiBase, "k-1")).toMatchObject({ state: "failed" });
    expect(refused()).toHaveLength(1);
  });

  test("error: over the run's budget too", async () => {
    const ctx = setup({ budget: { run: { id: "run-1", maxUsd: 0.05 } } });
    const err = await thrown(reserve(ctx, await attempt(ctx, fakeTransport().t), approval(ctx)));
    expect((err as SpendPolicyError).code).toBe("POLICY_BUDGET_RUN");
  });

  test("behavior: the amount is reserved against the run cap until released, once", async () => {
    const ctx = setup({ budget: { window: { seconds: 3600, maxUsd: 0.15 } } });
    const reservation = await reserve(ctx, await attempt(ctx, fakeTransport().t), approval(ctx));
    expect(ctx.reserved.atomic).toBe(100_000n);
    reservation.release();
    reservation.release();
    expect(ctx.reserved.atomic).toBe(0n);
  });

  test.each([
    ["a wallet budget overrun", "budget"],
    ["a recipient another process pinned meanwhile", "pin"],
    ["a journal that fails the budget read", "journal"],
  ] as const)(
    "behavior: the hold approve took is released on %s, so it refuses no later purchase",
    async (_what, how) => {
      const journal = Journal.memory();
      if (how === "budget") await earlierClaim(journal, "100000");
      if (how === "pin") await journal.pin(apiBase, "x402", other);
      if (how === "journal")
        journal.budgetUse = async () => {
          throw new Error("journal unreachable");
        };
      const ctx = setup({ journal, budget: { window: { seconds: 3600, maxUsd: 0.15 } } });
      const a = await attempt(ctx, fakeTransport().t);
      // As approve hands it over: the amount already held against the run cap.
      const approved = { ...approval(ctx, challenge(), null), held: hold(ctx, 100_000n) };
      expect(ctx.reserved.atomic).toBe(100_000n);
      await thrown(reserve(ctx, a, approved));
      expect(ctx.reserved.atomic).toBe(0n);
    },
  );

  test("behavior: with no allow-list, the first recipient is pinned; one another process pinned meanwhile is refused", async () => {
    const ctx = setup();
    await reserve(ctx, await attempt(ctx, fakeTransport().t), approval(ctx, challenge(), null));
    expect(await ctx.journal.pinned(apiBase, "x402")).toBe(treasury);

    const raced = setup();
    await raced.journal.pin(apiBase, "x402", other);
    const { t, refused } = fakeTransport();
    // Approved while nothing was pinned (pinned: null); the pin write finds another's.
    const err = await thrown(reserve(raced, await attempt(raced, t), approval(raced, challenge(), null)));
    expect((err as SpendPolicyError).code).toBe("POLICY_RECIPIENT");
    expect(raced.reserved.atomic).toBe(0n);
    expect(refused()).toHaveLength(1);
  });
});

describe("Payer step sign", () => {
  test("behavior: a rail that signed, then failed, leaves the intent pending and counted (maybe paid)", async () => {
    const signedProof = proof();
    const ctx = setup({
      rails: [
        stubRail("x402", {
          createCredential: async () => {
            throw new SignedThenFailed(signedProof, new Error("timed out after broadcasting"));
          },
        }),
      ],
    });
    const a = await attempt(ctx, fakeTransport().t);
    const reservation = await reserve(ctx, a, approval(ctx));
    const err = await thrown(sign(ctx, a, approval(ctx), reservation));
    expect(err).toBeInstanceOf(PaymentCredentialError);
    expect(await ctx.journal.get(apiBase, "k-1")).toMatchObject({
      state: "pending",
      proof: signedProof,
      amountAtomic: "100000",
      rail: "x402",
    });
    expect([...ctx.counted.values()]).toEqual([100_000n]);
    expect(ctx.reserved.atomic).toBe(0n);
  });

  test("behavior: a rail that signed, then failed, after another runner claimed the intent, still counts the signed amount against the run cap", async () => {
    const journal = Journal.memory();
    const ctx = setup({
      journal,
      rails: [
        stubRail("x402", {
          createCredential: async () => {
            throw new SignedThenFailed(proof(), new Error("timed out after broadcasting"));
          },
        }),
      ],
    });
    const a = await attempt(ctx, fakeTransport().t);
    const reservation = await reserve(ctx, a, approval(ctx));
    // Another runner claims the same intent between our open and our write.
    const theirs = await journal.transition(
      { ...a.record, state: "pending", rail: "x402", amountAtomic: "100000", owner: "1@another-host" },
      [undefined, "failed"],
    );
    expect(theirs.ok).toBe(true);
    expect(await thrown(sign(ctx, a, approval(ctx), reservation))).toBeInstanceOf(PaymentCredentialError);
    // What we signed may have been broadcast: it stays counted for the rest of the run (fail-safe).
    expect(ctx.reserved.atomic).toBe(0n);
    expect([...ctx.counted.values()]).toEqual([100_000n]);
  });

  test("error: a rail that refused before signing leaves the intent failed, reported once, nothing counted", async () => {
    const noRpc = new SpendPolicyError({
      limit: "network",
      rail: "x402",
      reason: "no RPC for eip155:84532",
      asked: "eip155:84532",
      allowed: "none",
    });
    const ctx = setup({
      rails: [
        stubRail("x402", {
          createCredential: async () => {
            throw noRpc;
          },
        }),
      ],
    });
    const { t, payment, refused } = fakeTransport();
    const a = await attempt(ctx, t);
    expect(await thrown(sign(ctx, a, approval(ctx), await reserve(ctx, a, approval(ctx))))).toBe(noRpc);
    expect(await ctx.journal.get(apiBase, "k-1")).toMatchObject({ state: "failed", error: "POLICY_NETWORK" });
    expect(payment()).toEqual(["payment.signing", "payment.refused"]);
    expect(refused()).toHaveLength(1);
    expect(ctx.counted.size).toBe(0);
  });

  test("default: the approved challenge is what the rail signs", async () => {
    const rail = stubRail();
    const ctx = setup({ rails: [rail] });
    const a = await attempt(ctx, fakeTransport().t);
    const credential = await sign(ctx, a, approval(ctx), await reserve(ctx, a, approval(ctx)));
    expect(rail.signing).toEqual([approval(ctx).challenge]);
    expect(credential.headers).toEqual({ "PAYMENT-SIGNATURE": "signed" });
  });
});

describe("Payer step claim", () => {
  const credential: Credential = { headers: { "PAYMENT-SIGNATURE": "signed" }, proof: proof() };

  test("default: the intent is pending in the journal before sending, counted, and the reservation released", async () => {
    const ctx = setup();
    const a = await attempt(ctx, fakeTransport().t);
    const reservation = await reserve(ctx, a, approval(ctx));
    const pending = await claim(ctx, a, approval(ctx), credential, reservation);
    expect(pending).toMatchObject({ state: "pending", proof: credential.proof, amountAtomic: "100000" });
    expect(ctx.counted.get(Journal.recordKey(apiBase, "k-1"))).toBe(100_000n);
    expect(ctx.reserved.atomic).toBe(0n);
  });

  test("error: an intent another process claimed meanwhile is refused, its claim left as it is", async () => {
    const ctx = setup();
    const a = await attempt(ctx, fakeTransport().t);
    await ctx.journal.transition(
      { ...a.record, state: "pending", owner: "4242@another-host", amountAtomic: "100000" },
      [undefined],
    );
    const reservation = await reserve(ctx, a, approval(ctx));
    const err = await thrown(claim(ctx, a, approval(ctx), credential, reservation));
    expect(err).toBeInstanceOf(IntentInProgressError);
    expect((await ctx.journal.get(apiBase, "k-1"))?.owner).toBe("4242@another-host");
    expect(ctx.counted.size).toBe(0);
  });

  test("error: a claim over the wallet budget (another process claimed after our early read) discards the credential", async () => {
    const ctx = setup({ budget: { window: { seconds: 3600, maxUsd: 0.15 } } });
    const { t, refused } = fakeTransport();
    const a = await attempt(ctx, t);
    const reservation = await reserve(ctx, a, approval(ctx));
    await earlierClaim(ctx.journal, "100000");
    const err = await thrown(claim(ctx, a, approval(ctx), credential, reservation));
    expect((err as SpendPolicyError).code).toBe("POLICY_BUDGET_WINDOW");
    expect((err as SpendPolicyError).message).toContain("The signed credential was discarded unsent.");
    expect(await ctx.journal.get(apiBase, "k-1")).toMatchObject({
      state: "failed",
      error: "POLICY_BUDGET_WINDOW",
    });
    expect(refused()).toHaveLength(1);
    expect(ctx.counted.size).toBe(0);
  });
});

describe("Payer step send", () => {
  const credential: Credential = { headers: { "PAYMENT-SIGNATURE": "signed" }, proof: proof() };

  test("default: one request, keyed, carrying the credential", async () => {
    const ctx = setup();
    const { t, requests } = fakeTransport(() => ok());
    const second = await send(await attempt(ctx, t), approval(ctx), credential);
    expect(second.response.ok).toBe(true);
    expect(requests).toHaveLength(1);
    expect(requests[0]!.headers.get("payment-signature")).toBe("signed");
    expect(requests[0]!.headers.get("idempotency-key")).toBe("k-1");
  });

  test("error: a 402 to the paid request is a rejection, never a second payment", async () => {
    const ctx = setup();
    const { t, requests } = fakeTransport(paymentRequired);
    const err = await thrown(send(await attempt(ctx, t), approval(ctx), credential));
    expect(err).toBeInstanceOf(PaymentRejectedError);
    expect(requests).toHaveLength(1);
  });

  test("error: a server error to the paid request is not retried", async () => {
    const ctx = setup();
    const { t, requests } = fakeTransport(
      () =>
        new Response(JSON.stringify({ code: "INTERNAL", message: "x", safe_to_retry: true }), {
          status: 503,
          headers: { "content-type": "application/json" },
        }),
    );
    expect(await thrown(send(await attempt(ctx, t), approval(ctx), credential))).toBeInstanceOf(ApiError);
    expect(requests).toHaveLength(1);
  });
});

describe("Payer step settle", () => {
  const credential: Credential = { headers: { "PAYMENT-SIGNATURE": "signed" }, proof: proof() };

  /** The pending record `claim` leaves, then `settle` on the answer `response`. */
  async function settling(ctx: PayerContext, response: Response, c = challenge()) {
    const { t, payment } = fakeTransport();
    const a = await attempt(ctx, t);
    const approved = approval(ctx, c);
    const pending = await claim(ctx, a, approved, credential, await reserve(ctx, a, approved));
    const out = await settle(ctx, a, approved, credential, pending, { response, body: null, url });
    return { out, payment };
  }

  test("default: records the rail that paid, with this lifetime's payments, and settles the intent", async () => {
    const ctx = setup({ rails: [stubRail("mpp")] });
    const c = challenge({ rail: "mpp", network: "eip155:42431" });
    const { out, payment } = await settling(ctx, ok(), c);
    expect(out.settlement).toMatchObject({
      rail: "mpp",
      amountAtomic: "100000",
      recipient: treasury,
      reference: null,
    });
    expect(ctx.paid).toEqual([out.settlement]);
    expect(await ctx.journal.get(apiBase, "k-1")).toMatchObject({
      state: "settled",
      settlement: out.settlement,
    });
    expect(payment()).toEqual(["payment.settled"]);
  });

  test("behavior: the server's receipt names the transaction", async () => {
    const ctx = setup();
    const receipt = { success: true, transaction: "0xfeed", network: "eip155:84532", payer: account.address };
    const { out } = await settling(
      ctx,
      ok({
        "x-run402-settlement-rail": "x402",
        "payment-response": Buffer.from(JSON.stringify(receipt)).toString("base64"),
      }),
    );
    expect(out.settlement).toMatchObject({ rail: "x402", reference: "0xfeed" });
  });

  test("behavior: 'the allowance paid' while the chain shows our credential used: the credential's rail is recorded", async () => {
    const ctx = setup({
      rails: [stubRail("x402", { chainState: async () => ({ state: "used", reference: "0xabc" }) })],
    });
    const { out } = await settling(ctx, ok({ "x-run402-settlement-rail": "allowance" }));
    expect(out.settlement).toMatchObject({ rail: "x402", reference: "0xabc" });
    expect([...ctx.counted.values()]).toEqual([100_000n]);
  });

  test("behavior: 'the allowance paid' and the credential unused: recorded as the allowance, still counted", async () => {
    const ctx = setup();
    const { out } = await settling(ctx, ok({ "x-run402-settlement-rail": "allowance" }));
    expect(out.settlement).toMatchObject({ rail: "allowance", network: null, recipient: null });
    expect([...ctx.counted.values()]).toEqual([100_000n]);
  });
});

describe("Payer step refuse", () => {
  test("behavior: a policy refusal is reported once and recorded failed; a rail not offered is only recorded", async () => {
    const ctx = setup();
    const { t, refused } = fakeTransport();
    const a = await attempt(ctx, t);
    const policyError = new SpendPolicyError({
      limit: "asset",
      rail: "x402",
      reason: "r",
      asked: "a",
      allowed: "b",
    });
    expect(await thrown(refuse(ctx, a, url, policyError))).toBe(policyError);
    expect(refused()).toEqual([
      { type: "payment.refused", url, rail: "x402", code: "POLICY_ASSET", message: policyError.shortMessage },
    ]);
    expect(await ctx.journal.get(apiBase, "k-1")).toMatchObject({ state: "failed", error: "POLICY_ASSET" });
    const notOffered = new RailNotOfferedError({ wanted: ["mpp"], offered: [], url });
    expect(await thrown(refuse(ctx, a, url, notOffered))).toBe(notOffered);
    expect(refused()).toHaveLength(1);
  });

  test("behavior: through the whole payer, a refusal is reported exactly once (by approve, by the rail)", async () => {
    const noRpc = async (): Promise<Credential> => {
      throw new SpendPolicyError({ limit: "network", rail: "x402", reason: "r", asked: "a", allowed: "b" });
    };
    for (const rail of [
      stubRail("x402", { offered: [challenge({ asset: other })] }),
      stubRail("x402", { createCredential: noRpc }),
    ]) {
      const payer = create({
        rails: [rail],
        rail: "x402",
        policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
        journal: Journal.memory(),
        payer: account.address,
      });
      const { t, refused } = fakeTransport(paymentRequired);
      expect(await thrown(payer.fetch(t, spec, intent))).toBeInstanceOf(SpendPolicyError);
      expect(refused()).toHaveLength(1);
    }
  });
});
describe("Payer: concurrent purchases", () => {
  /**
   * Two purchases of different intents at once, $0.10 each, under a $0.15 run cap. `together`: the
   * rail's RPC answers both at the same moment, so both approvals are made in consecutive ticks.
   */
  async function twoAtOnce(budget?: CreateOptions["budget"], together = false) {
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    let asked = 0;
    const rail = stubRail(
      "x402",
      together
        ? {
            configuredNetwork: async () => {
              if (++asked === 2) open();
              await gate;
              return null;
            },
          }
        : {},
    );
    const payer = create({
      rails: [rail],
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 0.15 },
      journal: Journal.memory(),
      payer: account.address,
      ...(budget ? { budget } : {}),
    });
    const { t } = fakeTransport((_req, n) => (n <= 2 ? paymentRequired() : ok()));
    const results = await Promise.allSettled([
      payer.fetch(t, spec, { intentId: "a", idempotencyKey: "k-a" }),
      payer.fetch(t, spec, { intentId: "b", idempotencyKey: "k-b" }),
    ]);
    return { rail, results, spent: payer.spentAtomic() };
  }

  test("behavior: two purchases at once never jointly pass the run cap: one signs, one is refused", async () => {
    const { rail, results, spent } = await twoAtOnce();
    expect(rail.signing).toHaveLength(1);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(spent).toBe(100_000n);
  });

  test("behavior: two approvals made in consecutive ticks never jointly pass the run cap", async () => {
    const { rail, results, spent } = await twoAtOnce(undefined, true);
    expect(rail.signing).toHaveLength(1);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(spent).toBe(100_000n);
  });

  test("behavior: with a wallet budget too (its journal read awaited), they never jointly pass the run cap", async () => {
    const { rail, results, spent } = await twoAtOnce({ window: { seconds: 3600, maxUsd: 100 } });
    expect(rail.signing).toHaveLength(1);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(spent).toBe(100_000n);
  });
});
