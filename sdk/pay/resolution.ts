import {
  IntentInProgressError,
  PaymentChainUnavailableError,
  PaymentOutcomeUnknownError,
  PaymentUndeliveredError,
} from "../errors/payment.js";
import {
  type Exchange,
  envelopeOf,
  pause,
  type RequestSpec,
  retryAfterSeconds,
  send,
  type Transport,
  toApiError,
} from "../internal/http.js";
import { atomicToUsd } from "../money.js";
import * as Receipt from "../Receipt.js";
import { type IntentRecord, type IntentState, type Journal, ownerAlive, recordKey } from "./journal.js";
import type { ChainState, Rail, RailName } from "./rail.js";

/** How long a payment the chain shows used may take to be delivered by the server that settled it. */
const deliveryGraceMs = 5_000;

/** How long a `pending` record may say a live process owns it (a reused pid must not block forever). */
const ownershipMs = 15 * 60_000;

/** Whether another live process is working on this record right now. */
export function busyElsewhere(record: IntentRecord): boolean {
  return (
    record.state === "pending" &&
    ownerAlive(record.owner) &&
    Date.now() - Date.parse(record.updatedAt) < ownershipMs
  );
}

/**
 * Whether a 2xx is the server's stored answer to an earlier paid request, marked the way Run402 marks
 * a replay: `x-run402-payment-deduplicated` (decisive when present, as Run402's client reads it),
 * else `x-run402-payment-delivery: replay`, else a JSON body with `deduplicated: true`. Behaviour
 * read in kychee-com/run402 sdk/src/namespaces/pay.ts (`responseSignalsReplay`,
 * `payResponseMetadata`) at 2d17de43d5981d65c30a10defe9c84596bfa1724. Any other 2xx to a repeated
 * keyed request is a new sale (Run402 sells from the org's allowance when a request carries no
 * payment and the allowance covers it), never the delivery of the earlier payment.
 */
export function markedReplay(response: Response, body: unknown): boolean {
  const deduplicated = response.headers.get("x-run402-payment-deduplicated")?.trim().toLowerCase();
  if (deduplicated === "true") return true;
  if (deduplicated !== undefined) return false;
  const delivery = response.headers.get("x-run402-payment-delivery")?.trim().toLowerCase();
  if (delivery !== undefined) return delivery === "replay";
  return (
    body !== null &&
    typeof body === "object" &&
    !Array.isArray(body) &&
    (body as Record<string, unknown>)["deduplicated"] === true
  );
}

/** The outcome of one paid (or replayed) request. */
export type PaidExchange = Exchange & { settlement: Receipt.Settlement | null; replayed: boolean };

export type Resolution =
  | { kind: "delivered"; exchange: Exchange; settlement: Receipt.Settlement | null; replayed: boolean }
  | { kind: "paid"; settlement: Receipt.Settlement; status: number; url: string }
  | { kind: "unpaid" }
  | { kind: "unknown"; validUntil: string; url: string };

/** What the resolution steps work with: the payer's journal, rails, address and run-cap ledger. */
export type ResolutionContext = {
  journal: Journal;
  railOf: (name: RailName | undefined) => Rail | undefined;
  /** The paying wallet's address. */
  payer: string;
  maxPendingWaitSeconds: number;
  /** Paid or pending in this lifetime, per intent (the payer's run-cap ledger); an unpaid intent leaves it. */
  counted: Map<string, bigint>;
  /**
   * Called when a repeated keyed request was answered by a new sale instead of a replay: the
   * payer records it with this run's payments.
   */
  onRepurchase: (settlement: Receipt.Settlement) => void;
  /**
   * Whether a possible new sale of `amountAtomic` still fits this run's caps. A repeated keyed request
   * may be answered by one (an allowance sale), so none is sent when it would not fit.
   */
  roomFor: (amountAtomic: bigint) => boolean;
};

export function fromRecord(
  ctx: ResolutionContext,
  record: IntentRecord,
  reference: string | null,
  settledAt?: string,
): Receipt.Settlement {
  const amount = BigInt(record.amountAtomic ?? "0");
  return {
    rail: record.rail ?? "x402",
    reference,
    network: record.network ?? null,
    asset: record.asset ?? null,
    amountAtomic: amount.toString(),
    amountUsd: atomicToUsd(amount),
    payer: ctx.payer,
    recipient: record.recipient ?? null,
    settledAt: settledAt ?? new Date().toISOString(),
    idempotencyKey: record.idempotencyKey,
  };
}

/** The settlement a delivered response shows, completed from what was approved. */
export function settlementFrom(
  ctx: ResolutionContext,
  ex: Exchange,
  record: IntentRecord,
): Receipt.Settlement | null {
  let observed: Receipt.Observed | "garbled";
  try {
    observed = Receipt.fromHeaders(ex.response.headers);
  } catch {
    // The resource was delivered and paid for; a garbled receipt must not lose that outcome.
    observed = "garbled";
  }
  if (observed === null) return record.rail ? fromRecord(ctx, record, null) : null;
  if (observed === "garbled") return fromRecord(ctx, record, null);
  if (observed.rail === "allowance") {
    return {
      ...fromRecord(ctx, record, null),
      rail: "allowance",
      network: null,
      asset: null,
      recipient: null,
    };
  }
  if (observed.rail === "x402") {
    const r = observed.receipt;
    return {
      ...fromRecord(ctx, record, r.transaction || null),
      rail: "x402",
      network: r.network.includes(":") ? r.network : (record.network ?? r.network),
      payer: r.payer ?? ctx.payer,
    };
  }
  return { ...fromRecord(ctx, record, observed.receipt.reference, observed.receipt.timestamp), rail: "mpp" };
}

export async function move(
  ctx: ResolutionContext,
  record: IntentRecord | Omit<IntentRecord, "updatedAt">,
  next: Partial<Omit<IntentRecord, "updatedAt">>,
  from: readonly (IntentState | undefined)[],
): Promise<IntentRecord | null> {
  const result = await ctx.journal.transition(
    { ...record, ...next } as Omit<IntentRecord, "updatedAt">,
    from,
  );
  return result.ok ? result.record : null;
}

/** Repeats the keyed, unpaid request while the server says a payment for this key is in flight. */
export async function sendKeyed(
  ctx: ResolutionContext,
  t: Transport,
  spec: RequestSpec,
  key: string,
): Promise<Exchange> {
  const deadline = Date.now() + ctx.maxPendingWaitSeconds * 1000;
  for (;;) {
    const ex = await send(t, spec);
    if (ex.response.status !== 409 || envelopeOf(ex.body)?.code !== "PAYMENT_INTENT_PENDING") return ex;
    const waitMs = Math.max(250, Math.round((retryAfterSeconds(ex.response, ex.body) ?? 1) * 1000));
    if (Date.now() + waitMs > deadline) return ex;
    t.emit({ type: "payment.pending", url: ex.url, idempotencyKey: key, waitMs });
    await pause(waitMs, t.signal, "waiting for a payment to resolve");
  }
}

export function keyedSpec(record: IntentRecord): RequestSpec {
  return {
    method: record.method as RequestSpec["method"],
    path: record.url,
    ...(record.body !== undefined ? { body: record.body } : {}),
    auth: { kind: "siwx" },
    headers: { "Idempotency-Key": record.idempotencyKey },
  };
}

/** A pending record's credential became unusable: the intent is unpaid, and no longer counts. */
export async function markUnpaid(
  ctx: ResolutionContext,
  t: Transport,
  record: IntentRecord,
  how: "expired" | "cancelled",
): Promise<void> {
  await move(ctx, record, { state: "failed", error: how === "cancelled" ? "CANCELLED" : "EXPIRED_UNUSED" }, [
    "pending",
  ]);
  ctx.counted.delete(recordKey(record.apiBase, record.idempotencyKey));
  t.emit({
    type: "payment.resolved",
    url: record.url,
    idempotencyKey: record.idempotencyKey,
    outcome: "unpaid",
    how,
    reference: null,
  });
}

export async function markPaid(
  ctx: ResolutionContext,
  t: Transport,
  record: IntentRecord,
  reference: string | null,
): Promise<Receipt.Settlement> {
  const settlement = fromRecord(ctx, record, reference);
  await move(ctx, record, { state: "paid", settlement }, ["pending"]);
  t.emit({
    type: "payment.resolved",
    url: record.url,
    idempotencyKey: record.idempotencyKey,
    outcome: "paid",
    how: "used",
    reference,
  });
  return settlement;
}

/**
 * A repeated keyed request got a 2xx that is not marked as a replay: the server sold the result
 * again (from the org's allowance, or for nothing it verified). It is a second purchase: recorded
 * on the intent, counted against this run's caps, reported with this run's payments. The earlier
 * credential keeps its own outcome (`pending`/`paid` settlement) in the record.
 */
export async function markRepurchased(
  ctx: ResolutionContext,
  t: Transport,
  record: IntentRecord,
  ex: Exchange,
): Promise<Receipt.Settlement> {
  const observed = settlementFrom(ctx, ex, { ...record, rail: undefined, settlement: undefined });
  const settlement: Receipt.Settlement = observed ?? {
    ...fromRecord(ctx, record, null),
    rail: "allowance",
    network: null,
    asset: null,
    recipient: null,
  };
  ctx.counted.set(
    `${recordKey(record.apiBase, record.idempotencyKey)}#repurchase`,
    BigInt(settlement.amountAtomic),
  );
  // The earlier credential may have moved money too (a pending one still may): it stays counted.
  if (record.state === "pending" || record.state === "paid")
    ctx.counted.set(recordKey(record.apiBase, record.idempotencyKey), BigInt(record.amountAtomic ?? "0"));
  ctx.onRepurchase(settlement);
  await move(ctx, record, { state: "settled", secondPurchase: settlement, error: "SECOND_PURCHASE" }, [
    "pending",
    "paid",
    "begun",
    "settled",
  ]);
  t.emit({ type: "payment.repurchased", url: ex.url, idempotencyKey: record.idempotencyKey, settlement });
  return settlement;
}

/**
 * A 2xx to a repeated keyed request: the earlier payment's delivery when the server marks it as a
 * replay, else a second purchase ({@link markRepurchased}).
 */
export async function delivered(
  ctx: ResolutionContext,
  t: Transport,
  record: IntentRecord,
  ex: Exchange,
): Promise<{ settlement: Receipt.Settlement | null; replayed: boolean }> {
  if (markedReplay(ex.response, ex.body))
    return { settlement: await markDelivered(ctx, t, record, ex), replayed: true };
  return { settlement: await markRepurchased(ctx, t, record, ex), replayed: false };
}

/**
 * Repeats the keyed request of an earlier attempt, unpaid, to ask for its stored result; refused
 * unsent when a possible new sale under the key would not fit this run's caps.
 */
export async function askStored(
  ctx: ResolutionContext,
  t: Transport,
  record: IntentRecord,
): Promise<Exchange> {
  if (!ctx.roomFor(BigInt(record.amountAtomic ?? "0"))) {
    throw new PaymentOutcomeUnknownError({
      idempotencyKey: record.idempotencyKey,
      url: record.url,
      validUntil: record.validUntil ?? new Date().toISOString(),
    });
  }
  return sendKeyed(ctx, t, keyedSpec(record), record.idempotencyKey);
}

/** Delivered: record `settled` with the best settlement known (the chain's transaction if the server names none). */
export async function markDelivered(
  ctx: ResolutionContext,
  t: Transport,
  record: IntentRecord,
  ex: Exchange,
): Promise<Receipt.Settlement | null> {
  let settlement = record.settlement ?? settlementFrom(ctx, ex, record);
  if (settlement && !settlement.reference && record.proof) {
    const state = await ctx
      .railOf(record.rail)
      ?.chainState(record.proof)
      .catch(() => null);
    if (state?.state === "used") settlement = { ...settlement, reference: state.reference };
  }
  await move(ctx, record, { state: "settled", settlement }, ["pending", "paid", "begun"]);
  t.emit({ type: "payment.replayed", url: ex.url, idempotencyKey: record.idempotencyKey, settlement });
  return settlement;
}

/**
 * Resolves a `pending` intent (a credential that may have reached the server): first the server
 * (does it replay a stored result?), then the chain (was the credential used?). A valid, unused
 * credential is cancelled on chain when allowed and possible, else waited out (with progress
 * events) for up to `maxPendingWaitSeconds`.
 */
export async function resolvePending(
  ctx: ResolutionContext,
  t: Transport,
  record: IntentRecord,
  how: { cancel: boolean; wait: boolean },
): Promise<Resolution> {
  const key = record.idempotencyKey;
  const deadline = Date.now() + (how.wait ? ctx.maxPendingWaitSeconds * 1000 : 0);
  for (;;) {
    const ex = await askStored(ctx, t, record);
    if (ex.response.ok) {
      const done = await delivered(ctx, t, record, ex);
      // A second sale: the earlier credential must not move money as well. Cancel it on chain
      // when it is still unused and the caller allows a transaction (x402).
      if (!done.replayed && how.cancel && record.proof) {
        const r = ctx.railOf(record.proof.rail);
        const state = await r?.chainState(record.proof).catch(() => null);
        if (state?.state === "unused" && r?.cancel) {
          t.emit({
            type: "payment.cancelling",
            url: ex.url,
            idempotencyKey: key,
            network: record.proof.network,
          });
          await r.cancel(record.proof).catch(() => null);
        }
      }
      return { kind: "delivered", exchange: ex, ...done };
    }
    if (ex.response.status !== 402) throw toApiError(record.method, ex);
    const proof = record.proof;
    let state: ChainState;
    if (!proof) {
      // An older journal's record: no proof to ask the chain about, only how long it could settle.
      const until = record.validUntil ? Date.parse(record.validUntil) : 0;
      if (Date.now() >= until) {
        await markUnpaid(ctx, t, record, "expired");
        return { kind: "unpaid" };
      }
      state = {
        state: "unused",
        validBefore: Math.ceil(until / 1000),
        chainTime: Math.floor(Date.now() / 1000),
      };
    } else {
      const r = ctx.railOf(proof.rail);
      if (!r)
        return {
          kind: "unknown",
          validUntil: new Date(proof.validBefore * 1000).toISOString(),
          url: ex.url,
        };
      state = await r.chainState(proof).catch((cause: unknown) => {
        throw new PaymentChainUnavailableError({
          idempotencyKey: key,
          url: ex.url,
          network: proof.network,
          cause,
        });
      });
      if (state.state === "unused" && how.cancel && r.cancel) {
        t.emit({ type: "payment.cancelling", url: ex.url, idempotencyKey: key, network: proof.network });
        const after = await r.cancel(proof).catch(() => null);
        if (after?.state === "void") {
          await markUnpaid(ctx, t, record, "cancelled");
          return { kind: "unpaid" };
        }
        if (after) state = after;
      }
    }
    if (state.state === "used") {
      const settlement = await markPaid(ctx, t, record, state.reference);
      if (!how.wait) return { kind: "paid", settlement, status: ex.response.status, url: ex.url };
      return await awaitDelivery(ctx, t, { ...record, state: "paid", settlement }, ex, deadline);
    }
    if (state.state === "void") {
      await markUnpaid(ctx, t, record, "expired");
      return { kind: "unpaid" };
    }
    const validUntil = new Date(state.validBefore * 1000).toISOString();
    // Ask again each second until the credential is used or can no longer be (chain time).
    const waitMs = Math.min(1000, (state.validBefore - state.chainTime + 1) * 1000);
    if (Date.now() + waitMs > deadline) return { kind: "unknown", validUntil, url: ex.url };
    t.emit({ type: "payment.pending", url: ex.url, idempotencyKey: key, waitMs, validUntil });
    await pause(waitMs, t.signal, "waiting for a payment to resolve");
  }
}

/**
 * The chain shows the credential used, but the server answered 402 when asked: it may still be
 * between settling and storing its answer (a request held up, or from a killed run). Asking again
 * signs nothing; ask each second for a short grace (within the caller's deadline), then report
 * the payment as undelivered.
 */
export async function awaitDelivery(
  ctx: ResolutionContext,
  t: Transport,
  paid: IntentRecord,
  first: Exchange,
  deadline: number,
): Promise<Resolution> {
  const key = paid.idempotencyKey;
  const until = Math.min(deadline, Date.now() + deliveryGraceMs);
  let ex = first;
  while (Date.now() + 1000 <= until) {
    t.emit({ type: "payment.pending", url: ex.url, idempotencyKey: key, waitMs: 1000 });
    await pause(1000, t.signal, "waiting for a paid answer to be delivered");
    ex = await askStored(ctx, t, paid);
    if (ex.response.ok) return { kind: "delivered", exchange: ex, ...(await delivered(ctx, t, paid, ex)) };
    if (ex.response.status !== 402) throw toApiError(paid.method, ex);
  }
  return { kind: "paid", settlement: paid.settlement!, status: ex.response.status, url: ex.url };
}

/** A `paid` intent: repeat the keyed request so the server delivers; never pay it again. */
export async function deliverPaid(
  ctx: ResolutionContext,
  t: Transport,
  record: IntentRecord,
): Promise<PaidExchange> {
  const ex = await askStored(ctx, t, record);
  if (ex.response.ok) return { ...ex, ...(await delivered(ctx, t, record, ex)) };
  if (ex.response.status === 402 && record.settlement) {
    throw new PaymentUndeliveredError({
      idempotencyKey: record.idempotencyKey,
      url: ex.url,
      settlement: record.settlement,
      status: ex.response.status,
    });
  }
  throw toApiError(record.method, ex);
}

/** Brings an earlier attempt's record to a state a new attempt can start from, or finishes it. */
export async function settleEarlier(
  ctx: ResolutionContext,
  t: Transport,
  before: IntentRecord,
): Promise<{ done: PaidExchange } | { record: IntentRecord | undefined }> {
  if (busyElsewhere(before)) {
    throw new IntentInProgressError({
      idempotencyKey: before.idempotencyKey,
      url: before.url,
      owner: before.owner!,
    });
  }
  if (before.state === "pending") {
    const resolution = await resolvePending(ctx, t, before, { cancel: true, wait: true });
    if (resolution.kind === "delivered") {
      return {
        done: {
          ...resolution.exchange,
          settlement: resolution.settlement,
          replayed: resolution.replayed,
        },
      };
    }
    if (resolution.kind === "paid") {
      throw new PaymentUndeliveredError({
        idempotencyKey: before.idempotencyKey,
        url: resolution.url,
        settlement: resolution.settlement,
        status: resolution.status,
      });
    }
    if (resolution.kind === "unknown") {
      throw new PaymentOutcomeUnknownError({
        idempotencyKey: before.idempotencyKey,
        url: resolution.url,
        validUntil: resolution.validUntil,
      });
    }
    return { record: await ctx.journal.get(before.apiBase, before.idempotencyKey) };
  }
  if (before.state === "paid") return { done: await deliverPaid(ctx, t, before) };
  return { record: before };
}
