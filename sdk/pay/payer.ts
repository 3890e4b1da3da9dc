import type { ApiError } from "../errors/http.js";
import {
  IntentAlreadyPaidError,
  PaymentAlreadyAttemptedError,
  PaymentCredentialError,
  PaymentOutcomeUnknownError,
  PaymentRejectedError,
  RailNotOfferedError,
  type SpendPolicyError,
} from "../errors/payment.js";
import {
  build,
  type Exchange,
  envelopeOf,
  type RequestSpec,
  retryAfterSeconds,
  send,
  sendOnce,
  type Transport,
  toApiError,
  urlFor,
} from "../internal/http.js";
import * as Receipt from "../Receipt.js";
import type { IntentRecord, Journal } from "./journal.js";
import * as Policy from "./policy.js";
import { carriedPayment, type PaymentChallenge, type Rail, type RailName } from "./rail.js";

/** Options for {@link create}. */
export type CreateOptions = {
  rails: Rail[];
  /** The rail to pay on. */
  rail: RailName;
  /** Used only when the server does not offer `rail`. */
  fallbackRail?: RailName | undefined;
  policy: Policy.SpendPolicy;
  /** Durable journal; null keeps intents and pinned recipients in memory only. */
  journal: Journal | null;
  /** The payer's address, recorded on settlements whose receipt names none. */
  payer: string;
  /** How long to keep repeating a keyed request the server reports as in flight. @default 120 */
  maxPendingWaitSeconds?: number | undefined;
};

/** The outcome of one paid (or replayed) request. */
export type PaidExchange = Exchange & { settlement: Receipt.Settlement | null; replayed: boolean };

/** Pays 402 challenges on one rail, under one spend policy, never twice for one intent. */
export type Payer = {
  /** Sends `spec` keyed by `idempotencyKey`; pays the 402 at most once. Throws {@link ApiError} on other statuses. */
  fetch(
    t: Transport,
    spec: RequestSpec,
    intent: {
      intentId: string;
      idempotencyKey: string;
      /** A tighter per-payment cap for this call (e.g. the amount a preview showed). */
      maxPaymentUsd?: number | undefined;
    },
  ): Promise<PaidExchange>;
  /**
   * Resolves an intent a previous run left `signing` by repeating its keyed request without paying:
   * `settled` when the server replays the stored result, `unpaid` when it asks for payment after the
   * signed credential expired (so it can never settle), `unknown` otherwise.
   */
  resolve(t: Transport, record: IntentRecord): Promise<"settled" | "unpaid" | "unknown">;
  /** Settlements paid in this payer's lifetime. */
  payments(): Receipt.Settlement[];
  /** Atomic units paid (or possibly paid: outcome unknown) in this lifetime. */
  spentAtomic(): bigint;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Creates the payer. Rail choice, the policy check and the single paid retry all happen here. */
export function create(options: CreateOptions): Payer {
  const { rails, rail, fallbackRail, policy, journal, payer, maxPendingWaitSeconds = 120 } = options;
  const paid: Receipt.Settlement[] = [];
  let spent = 0n;
  /** Reserved for payments in flight, so concurrent purchases cannot jointly pass the run cap. */
  let reserved = 0n;
  const memoryPins = new Map<string, string>();
  const memoryIntents = new Map<string, IntentRecord>();

  const pinned = (apiBase: string, r: RailName) =>
    journal ? journal.pinned(apiBase, r) : (memoryPins.get(`${apiBase} ${r}`) ?? null);
  const pin = (apiBase: string, r: RailName, recipient: string) => {
    if (journal) return journal.pin(apiBase, r, recipient);
    const key = `${apiBase} ${r}`;
    if (!memoryPins.has(key)) memoryPins.set(key, recipient);
    return memoryPins.get(key)!;
  };

  function settlementFrom(
    ex: Exchange,
    idempotencyKey: string,
    known: { rail: RailName; network: string; asset: string; amountAtomic: bigint; recipient: string } | null,
  ): Receipt.Settlement | null {
    let observed: Receipt.Observed | { rail: RailName; garbled: true };
    try {
      observed = Receipt.fromHeaders(ex.response.headers);
    } catch {
      // The resource was delivered and paid for; a garbled receipt must not lose that outcome.
      observed = known ? ({ rail: known.rail, garbled: true } as const) : null;
    }
    const now = new Date().toISOString();
    if (observed && "garbled" in observed) {
      const amount = known?.amountAtomic ?? 0n;
      return {
        rail: observed.rail,
        reference: null,
        network: known?.network ?? null,
        asset: known?.asset ?? null,
        amountAtomic: amount.toString(),
        amountUsd: Receipt.atomicToUsd(amount),
        payer,
        recipient: known?.recipient ?? null,
        settledAt: now,
        idempotencyKey,
      };
    }
    if (!observed) return null;
    if (observed.rail === "allowance") {
      return {
        rail: "allowance",
        reference: null,
        network: null,
        asset: null,
        amountAtomic: (known?.amountAtomic ?? 0n).toString(),
        amountUsd: Receipt.atomicToUsd(known?.amountAtomic ?? 0n),
        payer,
        recipient: null,
        settledAt: now,
        idempotencyKey,
      };
    }
    const amount = known?.amountAtomic ?? 0n;
    const base = {
      amountAtomic: amount.toString(),
      amountUsd: Receipt.atomicToUsd(amount),
      asset: known?.asset ?? null,
      recipient: known?.recipient ?? null,
      idempotencyKey,
    };
    if (observed.rail === "x402") {
      return {
        ...base,
        rail: "x402",
        reference: observed.receipt.transaction || null,
        network: observed.receipt.network.includes(":")
          ? observed.receipt.network
          : (known?.network ?? observed.receipt.network),
        payer: observed.receipt.payer ?? payer,
        settledAt: now,
      };
    }
    return {
      ...base,
      rail: "mpp",
      reference: observed.receipt.reference,
      network: known?.network ?? null,
      payer,
      settledAt: observed.receipt.timestamp,
    };
  }

  function recordIntent(
    t: Transport,
    spec: RequestSpec,
    intent: { intentId: string; idempotencyKey: string },
    state: "begun" | "signing" | "settled" | "failed",
    extra: {
      challenge?: PaymentChallenge;
      settlement?: Receipt.Settlement | null;
      error?: string;
      validUntil?: string;
    } = {},
  ) {
    const record: Omit<IntentRecord, "updatedAt"> = {
      intentId: intent.intentId,
      idempotencyKey: intent.idempotencyKey,
      method: spec.method,
      url: urlFor(t.apiBase, spec.path).href,
      ...(spec.body !== undefined ? { body: spec.body } : {}),
      state,
      ...(extra.challenge
        ? {
            rail: extra.challenge.rail,
            amountAtomic: extra.challenge.amountAtomic.toString(),
            recipient: extra.challenge.recipient,
            network: extra.challenge.network,
            asset: extra.challenge.asset,
          }
        : {}),
      ...(extra.settlement !== undefined ? { settlement: extra.settlement } : {}),
      ...(extra.error ? { error: extra.error } : {}),
      ...(extra.validUntil ? { validUntil: extra.validUntil } : {}),
    };
    if (journal) journal.record(record);
    else {
      const merged = {
        ...memoryIntents.get(intent.idempotencyKey),
        ...record,
        updatedAt: new Date().toISOString(),
      };
      memoryIntents.set(intent.idempotencyKey, merged);
    }
  }

  function previous(key: string): IntentRecord | undefined {
    return journal ? journal.intents().get(key) : memoryIntents.get(key);
  }

  /** Repeats the keyed, unpaid request while the server says a payment for this key is in flight. */
  async function sendKeyed(t: Transport, spec: RequestSpec, key: string): Promise<Exchange> {
    const deadline = Date.now() + maxPendingWaitSeconds * 1000;
    for (;;) {
      const ex = await send(t, spec);
      if (ex.response.status !== 409 || envelopeOf(ex.body)?.code !== "PAYMENT_INTENT_PENDING") return ex;
      const waitMs = Math.max(250, Math.round((retryAfterSeconds(ex.response, ex.body) ?? 1) * 1000));
      if (Date.now() + waitMs > deadline) return ex;
      t.emit({ type: "payment.pending", url: ex.url, idempotencyKey: key, waitMs });
      await sleep(waitMs);
    }
  }

  return {
    async resolve(t, record) {
      const spec: RequestSpec = {
        method: record.method as RequestSpec["method"],
        path: record.url,
        ...(record.body !== undefined ? { body: record.body } : {}),
        auth: { kind: "siwx" },
        headers: { "Idempotency-Key": record.idempotencyKey },
      };
      const intent = { intentId: record.intentId, idempotencyKey: record.idempotencyKey };
      const ex = await sendKeyed(t, spec, record.idempotencyKey);
      if (ex.response.ok) {
        const known =
          record.rail && record.amountAtomic
            ? {
                rail: record.rail,
                network: record.network ?? "",
                asset: record.asset ?? "",
                amountAtomic: BigInt(record.amountAtomic),
                recipient: record.recipient ?? "",
              }
            : null;
        const settlement = settlementFrom(ex, record.idempotencyKey, known);
        recordIntent(t, spec, intent, "settled", { settlement });
        t.emit({ type: "payment.replayed", url: ex.url, idempotencyKey: record.idempotencyKey, settlement });
        return "settled";
      }
      if (ex.response.status === 402) {
        // Until the signed credential expires it may still reach the server: not proof of non-payment.
        if (record.validUntil && Date.now() < Date.parse(record.validUntil)) return "unknown";
        recordIntent(t, spec, intent, "failed", { error: "NOT_PAID" });
        return "unpaid";
      }
      return "unknown";
    },
    payments: () => [...paid],
    spentAtomic: () => spent,
    async fetch(t, spec, intent) {
      const carried = carriedPayment(new Headers(spec.headers));
      if (carried) throw new PaymentAlreadyAttemptedError({ header: carried });
      const key = intent.idempotencyKey;
      // This call's policy: the client's, with the caller's tighter per-payment cap if any.
      const callPolicy: Policy.SpendPolicy =
        intent.maxPaymentUsd === undefined
          ? policy
          : { ...policy, maxPaymentUsd: Math.min(policy.maxPaymentUsd, intent.maxPaymentUsd) };
      const keyed: RequestSpec = { ...spec, headers: { ...spec.headers, "Idempotency-Key": key } };
      const before = previous(key);
      if (!before) recordIntent(t, spec, intent, "begun");

      let first = await sendKeyed(t, keyed, key);
      // A previous run signed for this key and died before learning the outcome. Its credential may
      // still be on its way to the server (which then knows nothing of it yet): while that credential
      // can still settle, paying again could pay twice, so ask again instead.
      const validUntil = before?.state === "signing" && before.validUntil ? Date.parse(before.validUntil) : 0;
      const waitUntil = Math.min(validUntil, Date.now() + maxPendingWaitSeconds * 1000);
      while (first.response.status === 402 && Date.now() < waitUntil) {
        t.emit({ type: "payment.pending", url: first.url, idempotencyKey: key, waitMs: 1000 });
        await sleep(1000);
        first = await sendKeyed(t, keyed, key);
      }
      if (first.response.status === 402 && Date.now() < validUntil) {
        throw new PaymentOutcomeUnknownError({
          idempotencyKey: key,
          url: first.url,
          validUntil: before!.validUntil!,
        });
      }
      const replayed = first.response.headers.get("x-run402-idempotent-replay") === "true";
      if (first.response.ok) {
        const known =
          before?.rail && before.amountAtomic
            ? {
                rail: before.rail,
                network: before.network ?? "",
                asset: before.asset ?? "",
                amountAtomic: BigInt(before.amountAtomic),
                recipient: before.recipient ?? "",
              }
            : null;
        const settlement = (replayed ? before?.settlement : null) ?? settlementFrom(first, key, known);
        if (replayed) t.emit({ type: "payment.replayed", url: first.url, idempotencyKey: key, settlement });
        if (!replayed && settlement) paid.push(settlement);
        if (before?.state !== "settled") recordIntent(t, spec, intent, "settled", { settlement });
        return { ...first, settlement, replayed };
      }
      if (first.response.status !== 402) {
        if (!before || before.state === "begun")
          recordIntent(t, spec, intent, "failed", {
            error: envelopeOf(first.body)?.code ?? `HTTP_${first.response.status}`,
          });
        throw toApiError(spec.method, first);
      }
      if (before?.state === "settled")
        throw new IntentAlreadyPaidError({ idempotencyKey: key, url: first.url });

      // A 402: read every rail's challenges, take the configured rail (or the named fallback only).
      const offered = new Map<RailName, PaymentChallenge[]>();
      for (const r of rails) {
        const challenges = r.getChallenges(first.response, first.body);
        if (challenges.length) offered.set(r.name, challenges);
      }
      const chosenRail = offered.has(rail)
        ? rail
        : fallbackRail && offered.has(fallbackRail)
          ? fallbackRail
          : null;
      if (!chosenRail) {
        recordIntent(t, spec, intent, "failed", { error: "RAIL_NOT_OFFERED" });
        throw new RailNotOfferedError({
          wanted: fallbackRail ? [rail, fallbackRail] : [rail],
          offered: [...offered.keys()],
          url: first.url,
        });
      }
      t.emit({ type: "payment.challenge", url: first.url, offered: [...offered.keys()], chosen: chosenRail });
      const railImpl = rails.find((r) => r.name === chosenRail)!;
      const apiBase = t.apiBase.origin + t.apiBase.pathname.replace(/\/$/, "");

      let approved: PaymentChallenge | null = null;
      let refusal: SpendPolicyError | null = null;
      for (const challenge of offered.get(chosenRail)!) {
        const err = Policy.check(callPolicy, challenge, {
          spentAtomic: spent + reserved,
          pinnedRecipient: policy.allowedRecipients ? null : pinned(apiBase, chosenRail),
        });
        if (!err) {
          approved = challenge;
          break;
        }
        refusal ??= err;
      }
      if (!approved) {
        const err = refusal!;
        t.emit({
          type: "payment.refused",
          url: first.url,
          rail: chosenRail,
          code: err.code,
          message: err.shortMessage,
        });
        recordIntent(t, spec, intent, "failed", { error: err.code });
        throw err;
      }
      if (!policy.allowedRecipients) {
        const pinnedNow = pin(apiBase, chosenRail, approved.recipient);
        // Another process may have pinned a different recipient between our read and our write.
        if (pinnedNow.toLowerCase() !== approved.recipient.toLowerCase()) {
          const err = Policy.check(callPolicy, approved, {
            spentAtomic: spent + reserved,
            pinnedRecipient: pinnedNow,
          })!;
          recordIntent(t, spec, intent, "failed", { error: err.code });
          throw err;
        }
      }

      // Durable before signing: a crash from here on is resolved by repeating the keyed request.
      reserved += approved.amountAtomic;
      // How long the credential we are about to sign could still settle (plus clock-skew margin).
      const lifetime = approved.lifetimeSeconds ?? 300;
      const signingValidUntil = new Date(Date.now() + (lifetime + 30) * 1000).toISOString();
      recordIntent(t, spec, intent, "signing", { challenge: approved, validUntil: signingValidUntil });
      t.emit({
        type: "payment.signing",
        url: first.url,
        rail: chosenRail,
        network: approved.network,
        amountUsd: Receipt.atomicToUsd(approved.amountAtomic),
        recipient: approved.recipient,
        idempotencyKey: key,
      });
      let credential: Record<string, string>;
      try {
        credential = await railImpl.createCredential(approved);
      } catch (cause) {
        reserved -= approved.amountAtomic;
        recordIntent(t, spec, intent, "failed", { error: "PAYMENT_CREDENTIAL_FAILED" });
        throw new PaymentCredentialError({ rail: chosenRail, cause });
      }

      // Exactly one paid attempt: no retry could be told apart from paying again.
      let second: Exchange;
      try {
        second = await sendOnce(t, await build(t, keyed, credential));
      } catch (err) {
        // Outcome unknown: keep it counted and journaled as `signing`; a rerun resolves it by key.
        reserved -= approved.amountAtomic;
        spent += approved.amountAtomic;
        throw err;
      }
      reserved -= approved.amountAtomic;
      if (second.response.status === 402) {
        const env = envelopeOf(second.body);
        recordIntent(t, spec, intent, "failed", { error: env?.code ?? "PAYMENT_REJECTED" });
        throw new PaymentRejectedError({
          rail: chosenRail,
          url: second.url,
          serverCode: env?.code,
          message: env?.message,
          body: second.body,
        });
      }
      if (!second.response.ok) {
        spent += approved.amountAtomic;
        throw toApiError(spec.method, second);
      }
      const settlement = settlementFrom(second, key, approved) ?? {
        // The server delivered without naming a rail or receipt: record what we paid from the challenge.
        rail: chosenRail,
        reference: null,
        network: approved.network,
        asset: approved.asset,
        amountAtomic: approved.amountAtomic.toString(),
        amountUsd: Receipt.atomicToUsd(approved.amountAtomic),
        payer,
        recipient: approved.recipient,
        settledAt: new Date().toISOString(),
        idempotencyKey: key,
      };
      if (settlement.rail !== "allowance") spent += approved.amountAtomic;
      paid.push(settlement);
      recordIntent(t, spec, intent, "settled", { settlement });
      t.emit({ type: "payment.settled", url: second.url, settlement });
      return {
        ...second,
        settlement,
        replayed: second.response.headers.get("x-run402-idempotent-replay") === "true",
      };
    },
  };
}
