/**
 * The resolution steps, each on its own: what an earlier attempt left (a pending credential, a
 * paid intent) is resolved by asking the server, then the chain, never by paying again. A memory
 * journal, a stub rail whose chain answers from here, a transport whose fetch answers from here.
 */
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, test } from "vitest";
import {
  IntentInProgressError,
  PaymentChainUnavailableError,
  PaymentOutcomeUnknownError,
  PaymentUndeliveredError,
} from "../errors/payment.js";
import type { Run402Event } from "../internal/events.js";
import type { Transport } from "../internal/http.js";
import type * as Receipt from "../Receipt.js";
import * as Journal from "./journal.js";
import type { ChainState, Proof, Rail } from "./rail.js";
import {
  askStored,
  markedReplay,
  type ResolutionContext,
  resolvePending,
  settleEarlier,
  settlementFrom,
} from "./resolution.js";

const account = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const apiBase = "https://api.run402.test";
const url = `${apiBase}/tiers/v1/prototype`;
const treasury = "0x90F79bf6EB2c4f870365E785982E1f101E93b906";
const key = "k-1";
const proof: Proof = {
  rail: "x402",
  network: "eip155:84532",
  asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
  from: account.address,
  nonce: `0x${"11".repeat(32)}`,
  validBefore: Math.floor(Date.now() / 1000) + 60,
  domain: { name: "USDC", version: "2" },
};

/** A rail whose chain says `state` (or throws it), and which may cancel. */
function chain(state: ChainState | Error, cancel?: () => Promise<ChainState | null>) {
  const cancelled: Proof[] = [];
  const rail: Rail = {
    name: "x402",
    getChallenges: () => ({ challenges: [], refused: [] }),
    createCredential: async () => {
      throw new Error("resolution never signs");
    },
    chainState: async () => {
      if (state instanceof Error) throw state;
      return state;
    },
    ...(cancel
      ? {
          cancel: async (p: Proof) => {
            cancelled.push(p);
            return cancel();
          },
        }
      : {}),
  };
  return { rail, cancelled };
}

function setup(rail: Rail, roomFor = true) {
  const journal = Journal.memory();
  const repurchased: Receipt.Settlement[] = [];
  const ctx: ResolutionContext = {
    journal,
    railOf: (name) => (name === rail.name ? rail : undefined),
    payer: account.address,
    maxPendingWaitSeconds: 0,
    counted: new Map([[Journal.recordKey(apiBase, key), 100_000n]]),
    onRepurchase: (s) => repurchased.push(s),
    roomFor: () => roomFor,
  };
  return { ctx, journal, repurchased };
}

function fakeTransport(answer: () => Response) {
  const requests: Request[] = [];
  const events: Run402Event[] = [];
  const t: Transport = {
    apiBase: new URL(apiBase),
    fetch: (async (input: string | URL | Request, init?: RequestInit) => {
      requests.push(new Request(input, init));
      return answer();
    }) as typeof fetch,
    timeoutMs: 1000,
    account,
    emit: (e) => events.push(e),
  };
  return { t, requests, events };
}

const paymentRequired = () =>
  new Response(JSON.stringify({ code: "PAYMENT_REQUIRED", message: "Payment required" }), {
    status: 402,
    headers: { "content-type": "application/json" },
  });
const ok = (headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ ok: true }), { headers: { "content-type": "application/json", ...headers } });

/** A pending intent, as a run that sent its credential left it. */
async function pending(journal: Journal.Journal, change: Partial<Journal.IntentRecord> = {}) {
  const result = await journal.transition(
    {
      apiBase,
      intentId: "lease-1",
      idempotencyKey: key,
      method: "POST",
      url,
      body: {},
      state: "pending",
      rail: "x402",
      amountAtomic: "100000",
      recipient: treasury,
      proof,
      ...change,
    },
    [undefined],
  );
  if (!result.ok) throw new Error("not written");
  return result.record;
}

describe("markedReplay", () => {
  test("behavior: the deduplicated header decides when present, then the delivery header, then the body", () => {
    const r = (headers: Record<string, string>) => new Response(null, { headers });
    expect(markedReplay(r({ "x-run402-payment-deduplicated": "true" }), null)).toBe(true);
    expect(
      markedReplay(r({ "x-run402-payment-deduplicated": "false", "x-run402-payment-delivery": "replay" }), {
        deduplicated: true,
      }),
    ).toBe(false);
    expect(markedReplay(r({ "x-run402-payment-delivery": "replay" }), null)).toBe(true);
    expect(markedReplay(r({}), { deduplicated: true })).toBe(true);
    expect(markedReplay(r({}), { ok: true })).toBe(false);
  });
});

describe("settlementFrom", () => {
  test("behavior: a garbled receipt still records the approved payment", async () => {
    const { ctx, journal } = setup(chain({ state: "void" }).rail);
    const record = await pending(journal);
    const garbled = ok({ "x-run402-settlement-rail": "x402", "payment-response": "%%%" });
    expect(settlementFrom(ctx, { response: garbled, body: null, url }, record)).toMatchObject({
      rail: "x402",
      reference: null,
      amountAtomic: "100000",
      recipient: treasury,
    });
  });
});

describe("askStored", () => {
  test("error: no room under the caps for a possible new sale: not asked, outcome unknown", async () => {
    const { ctx, journal } = setup(chain({ state: "void" }).rail, false);
    const { t, requests } = fakeTransport(ok);
    const err = await askStored(ctx, t, await pending(journal)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentOutcomeUnknownError);
    expect(requests).toHaveLength(0);
  });
});

describe("resolvePending", () => {
  test("behavior: the chain shows the credential used: paid, never unpaid, still counted", async () => {
    const { ctx, journal } = setup(chain({ state: "used", reference: "0xabc" }).rail);
    const { t } = fakeTransport(paymentRequired);
    const out = await resolvePending(ctx, t, await pending(journal), { cancel: false, wait: false });
    expect(out).toMatchObject({ kind: "paid", settlement: { reference: "0xabc" } });
    expect((await journal.get(apiBase, key))?.state).toBe("paid");
    expect(ctx.counted.get(Journal.recordKey(apiBase, key))).toBe(100_000n);
  });

  test("behavior: a credential that can never be used is unpaid, and no longer counts", async () => {
    const { ctx, journal } = setup(chain({ state: "void" }).rail);
    const { t, events } = fakeTransport(paymentRequired);
    const out = await resolvePending(ctx, t, await pending(journal), { cancel: false, wait: false });
    expect(out).toEqual({ kind: "unpaid" });
    expect(await journal.get(apiBase, key)).toMatchObject({ state: "failed", error: "EXPIRED_UNUSED" });
    expect(ctx.counted.size).toBe(0);
    expect(events.filter((e) => e.type === "payment.resolved")).toHaveLength(1);
  });

  test("behavior: a valid unused credential is cancelled when allowed; unknown (still counted) when not", async () => {
    const unused: ChainState = {
      state: "unused",
      validBefore: proof.validBefore,
      chainTime: proof.validBefore - 30,
    };
    const cancelling = chain(unused, async () => ({ state: "void" }));
    const { ctx, journal } = setup(cancelling.rail);
    const { t } = fakeTransport(paymentRequired);
    expect(
      await resolvePending(ctx, t, await pending(journal), { cancel: false, wait: false }),
    ).toMatchObject({
      kind: "unknown",
    });
    expect(cancelling.cancelled).toEqual([]);
    expect(ctx.counted.size).toBe(1);
    expect(
      await resolvePending(ctx, t, (await journal.get(apiBase, key))!, { cancel: true, wait: false }),
    ).toEqual({
      kind: "unpaid",
    });
    expect(cancelling.cancelled).toEqual([proof]);
    expect(await journal.get(apiBase, key)).toMatchObject({ state: "failed", error: "CANCELLED" });
  });

  test("error: a chain that does not answer leaves the intent pending", async () => {
    const { ctx, journal } = setup(chain(new Error("RPC down")).rail);
    const { t } = fakeTransport(paymentRequired);
    const err = await resolvePending(ctx, t, await pending(journal), { cancel: true, wait: false }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PaymentChainUnavailableError);
    expect((await journal.get(apiBase, key))?.state).toBe("pending");
    expect(ctx.counted.size).toBe(1);
  });

  test("behavior: a 2xx not marked as a replay is a second purchase: counted as well, reported", async () => {
    const { ctx, journal, repurchased } = setup(chain({ state: "void" }).rail);
    const { t } = fakeTransport(() => ok({ "x-run402-settlement-rail": "allowance" }));
    const out = await resolvePending(ctx, t, await pending(journal), { cancel: false, wait: false });
    expect(out).toMatchObject({ kind: "delivered", replayed: false, settlement: { rail: "allowance" } });
    expect(repurchased).toHaveLength(1);
    expect([...ctx.counted.values()]).toEqual([100_000n, 100_000n]);
    expect(await journal.get(apiBase, key)).toMatchObject({ state: "settled", error: "SECOND_PURCHASE" });
  });
});

describe("settleEarlier", () => {
  test("error: an intent another live process holds is refused, nothing sent", async () => {
    const { ctx, journal } = setup(chain({ state: "void" }).rail);
    const { t, requests } = fakeTransport(ok);
    const err = await settleEarlier(ctx, t, await pending(journal, { owner: "4242@another-host" })).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IntentInProgressError);
    expect(requests).toHaveLength(0);
  });

  test("error: a paid intent the server does not deliver is reported undelivered, never paid again", async () => {
    const { ctx, journal } = setup(chain({ state: "used", reference: "0xabc" }).rail);
    const { t, requests } = fakeTransport(paymentRequired);
    await resolvePending(ctx, t, await pending(journal), { cancel: false, wait: false });
    const paid = (await journal.get(apiBase, key))!;
    expect(paid.state).toBe("paid");
    const err = await settleEarlier(ctx, t, paid).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentUndeliveredError);
    expect(requests.every((r) => !r.headers.has("payment-signature"))).toBe(true);
  });

  test("behavior: a pending credential that can never be used frees the intent for a new attempt", async () => {
    const { ctx, journal } = setup(chain({ state: "void" }).rail);
    const { t } = fakeTransport(paymentRequired);
    const out = await settleEarlier(ctx, t, await pending(journal));
    expect(out).toMatchObject({ record: { state: "failed" } });
  });
});
