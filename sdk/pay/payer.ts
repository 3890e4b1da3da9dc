/**
 * The payer: pays a 402 at most once per intent, within the spend policy, and never loses track of
 * a credential that left the process. Every state change goes through the journal's
 * compare-and-set; calls for one intent in one process run one at a time.
 */
import { BaseError } from "../errors/base.js";
import {
  IntentAlreadyPaidError,
  IntentInProgressError,
  PaymentAlreadyAttemptedError,
  PaymentChainUnavailableError,
  PaymentCredentialError,
  PaymentOutcomeUnknownError,
  PaymentRejectedError,
  PaymentUndeliveredError,
  RailNotOfferedError,
  SpendPolicyError,
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
import { type IntentRecord, type IntentState, type Journal, ownerAlive, recordKey, self } from "./journal.js";
import * as Policy from "./policy.js";
import {
  type ChainState,
  type Credential,
  carriedPayment,
  type PaymentChallenge,
  type Proof,
  type Rail,
  type RailName,
  SignedThenFailed,
} from "./rail.js";

/** Options for {@link create}. */
export type CreateOptions = {
  rails: Rail[];
  /** The rail to pay on. */
  rail: RailName;
  /** Used only when the server does not offer `rail`. */
  fallbackRail?: RailName | undefined;
  policy: Policy.SpendPolicy;
  /** The journal (a file, or `Journal.memory()`). */
  journal: Journal;
  /** The payer's address, recorded on settlements whose receipt names none. */
  payer: string;
  /**
   * How long to wait, with `payment.pending` events, for a payment the server reports in flight or
   * for an earlier credential to expire unused. @default 120
   */
  maxPendingWaitSeconds?: number | undefined;
};

/** The outcome of one paid (or replayed) request. */
export type PaidExchange = Exchange & { settlement: Receipt.Settlement | null; replayed: boolean };

/** What {@link Payer.recover} found for one unfinished intent. */
export type Recovered = {
  intentId: string;
  idempotencyKey: string;
  /**
   * `settled`: the server delivered (replayed) the paid result. `paid`: the chain shows the payment
   * but the server did not deliver. `unpaid`: the credential can never be used. `unknown`: still
   * undecided (valid and unused, or the chain or server did not answer).
   */
  outcome: "settled" | "paid" | "unpaid" | "unknown";
  settlement: Receipt.Settlement | null;
};

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
   * Resolves what earlier runs left unfinished against this API, without paying: asks the server
   * (the keyed request, replayed) and the chain (was the credential used?). With `cancel`, a valid
   * unused x402 authorization is cancelled on chain (a transaction from the wallet).
   */
  recover(t: Transport, options?: { cancel?: boolean | undefined }): Promise<Recovered[]>;
  /** Settlements paid in this payer's lifetime. */
  payments(): Receipt.Settlement[];
  /** Atomic units paid, or possibly paid (pending), in this lifetime. */
  spentAtomic(): bigint;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a `pending` record may say a live process owns it (a reused pid must not block forever). */
const ownershipMs = 15 * 60_000;

/** Whether another live process is working on this record right now. */
function busyElsewhere(record: IntentRecord): boolean {
  return (
    record.state === "pending" &&
    ownerAlive(record.owner) &&
    Date.now() - Date.parse(record.updatedAt) < ownershipMs
  );
}

/** The API base an intent is scoped by: origin plus path prefix, no trailing slash. */
export function scopeOf(apiBase: URL): string {
  return apiBase.origin + apiBase.pathname.replace(/\/$/, "");
}

type Resolution =
  | { kind: "delivered"; exchange: Exchange; settlement: Receipt.Settlement | null }
  | { kind: "paid"; settlement: Receipt.Settlement; status: number; url: string }
  | { kind: "unpaid" }
  | { kind: "unknown"; validUntil: string; url: string };

/** How long a payment the chain shows used may take to be delivered by the server that settled it. */
const deliveryGraceMs = 5_000;

/** Creates the payer. Rail choice, the policy check and the single paid retry all happen here. */
export function create(options: CreateOptions): Payer {
  const { rails, rail, fallbackRail, policy, journal, payer, maxPendingWaitSeconds = 120 } = options;
  const paid: Receipt.Settlement[] = [];
  /** Paid or pending in this lifetime, per intent: what counts against the run cap. */
  const counted = new Map<string, bigint>();
  /** Being signed right now: reserved so concurrent purchases cannot jointly pass the run cap. */
  let reserved = 0n;
  const spent = () => [...counted.values()].reduce((a, b) => a + b, 0n);
  /** One call per intent at a time in this process. */
  const running = new Map<string, Promise<unknown>>();

  function exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = running.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    running.set(key, tail);
    void tail.then(() => {
      if (running.get(key) === tail) running.delete(key);
    });
    return run;
  }

  const railOf = (name: RailName | undefined) => rails.find((r) => r.name === name);

  /** Pinned recipients never change once pinned: read each from the journal once. */
  const pins = new Map<string, string>();
  async function pinnedRecipient(scope: string, r: RailName): Promise<string | null> {
    const known = pins.get(`${scope} ${r}`);
    if (known) return known;
    const found = await journal.pinned(scope, r);
    if (found) pins.set(`${scope} ${r}`, found);
    return found;
  }
  async function pin(scope: string, r: RailName, recipient: string): Promise<string> {
    const pinned = await journal.pin(scope, r, recipient);
    pins.set(`${scope} ${r}`, pinned);
    return pinned;
  }

  function fromRecord(
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
      amountUsd: Receipt.atomicToUsd(amount),
      payer,
      recipient: record.recipient ?? null,
      settledAt: settledAt ?? new Date().toISOString(),
      idempotencyKey: record.idempotencyKey,
    };
  }

  /** The settlement a delivered response shows, completed from what was approved. */
  function settlementFrom(ex: Exchange, record: IntentRecord): Receipt.Settlement | null {
    let observed: Receipt.Observed | "garbled";
    try {
      observed = Receipt.fromHeaders(ex.response.headers);
    } catch {
      // The resource was delivered and paid for; a garbled receipt must not lose that outcome.
      observed = "garbled";
    }
    if (observed === null) return record.rail ? fromRecord(record, null) : null;
    if (observed === "garbled") return fromRecord(record, null);
    if (observed.rail === "allowance") {
      return { ...fromRecord(record, null), rail: "allowance", network: null, asset: null, recipient: null };
    }
    if (observed.rail === "x402") {
      const r = observed.receipt;
      return {
        ...fromRecord(record, r.transaction || null),
        rail: "x402",
        network: r.network.includes(":") ? r.network : (record.network ?? r.network),
        payer: r.payer ?? payer,
      };
    }
    return { ...fromRecord(record, observed.receipt.reference, observed.receipt.timestamp), rail: "mpp" };
  }

  async function move(
    record: IntentRecord | Omit<IntentRecord, "updatedAt">,
    next: Partial<Omit<IntentRecord, "updatedAt">>,
    from: readonly (IntentState | undefined)[],
  ): Promise<IntentRecord | null> {
    const result = await journal.transition({ ...record, ...next } as Omit<IntentRecord, "updatedAt">, from);
    return result.ok ? result.record : null;
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

  function keyedSpec(record: IntentRecord): RequestSpec {
    return {
      method: record.method as RequestSpec["method"],
      path: record.url,
      ...(record.body !== undefined ? { body: record.body } : {}),
      auth: { kind: "siwx" },
      headers: { "Idempotency-Key": record.idempotencyKey },
    };
  }

  /** A pending record's credential became unusable: the intent is unpaid, and no longer counts. */
  async function markUnpaid(t: Transport, record: IntentRecord, how: "expired" | "cancelled"): Promise<void> {
    await move(record, { state: "failed", error: how === "cancelled" ? "CANCELLED" : "EXPIRED_UNUSED" }, [
      "pending",
    ]);
    counted.delete(recordKey(record.apiBase, record.idempotencyKey));
    t.emit({
      type: "payment.resolved",
      url: record.url,
      idempotencyKey: record.idempotencyKey,
      outcome: "unpaid",
      how,
      reference: null,
    });
  }

  async function markPaid(
    t: Transport,
    record: IntentRecord,
    reference: string | null,
  ): Promise<Receipt.Settlement> {
    const settlement = fromRecord(record, reference);
    await move(record, { state: "paid", settlement }, ["pending"]);
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

  /** Delivered: record `settled` with the best settlement known (the chain's transaction if the server names none). */
  async function markDelivered(
    t: Transport,
    record: IntentRecord,
    ex: Exchange,
  ): Promise<Receipt.Settlement | null> {
    let settlement = record.settlement ?? settlementFrom(ex, record);
    if (settlement && !settlement.reference && record.proof) {
      const state = await railOf(record.rail)
        ?.chainState(record.proof)
        .catch(() => null);
      if (state?.state === "used") settlement = { ...settlement, reference: state.reference };
    }
    await move(record, { state: "settled", settlement }, ["pending", "paid", "begun"]);
    t.emit({ type: "payment.replayed", url: ex.url, idempotencyKey: record.idempotencyKey, settlement });
    return settlement;
  }

  /**
   * Resolves a `pending` intent (a credential that may have reached the server): first the server
   * (does it replay a stored result?), then the chain (was the credential used?). A valid, unused
   * credential is cancelled on chain when allowed and possible, else waited out (with progress
   * events) for up to `maxPendingWaitSeconds`.
   */
  async function resolvePending(
    t: Transport,
    record: IntentRecord,
    how: { cancel: boolean; wait: boolean },
  ): Promise<Resolution> {
    const key = record.idempotencyKey;
    const deadline = Date.now() + (how.wait ? maxPendingWaitSeconds * 1000 : 0);
    for (;;) {
      const ex = await sendKeyed(t, keyedSpec(record), key);
      if (ex.response.ok)
        return { kind: "delivered", exchange: ex, settlement: await markDelivered(t, record, ex) };
      if (ex.response.status !== 402) throw toApiError(record.method, ex);
      const proof = record.proof;
      let state: ChainState;
      if (!proof) {
        // An older journal's record: no proof to ask the chain about, only how long it could settle.
        const until = record.validUntil ? Date.parse(record.validUntil) : 0;
        if (Date.now() >= until) {
          await markUnpaid(t, record, "expired");
          return { kind: "unpaid" };
        }
        state = {
          state: "unused",
          validBefore: Math.ceil(until / 1000),
          chainTime: Math.floor(Date.now() / 1000),
        };
      } else {
        const r = railOf(proof.rail);
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
            await markUnpaid(t, record, "cancelled");
            return { kind: "unpaid" };
          }
          if (after) state = after;
        }
      }
      if (state.state === "used") {
        const settlement = await markPaid(t, record, state.reference);
        if (!how.wait) return { kind: "paid", settlement, status: ex.response.status, url: ex.url };
        return await awaitDelivery(t, { ...record, state: "paid", settlement }, ex, deadline);
      }
      if (state.state === "void") {
        await markUnpaid(t, record, "expired");
        return { kind: "unpaid" };
      }
      const validUntil = new Date(state.validBefore * 1000).toISOString();
      // Ask again each second until the credential is used or can no longer be (chain time).
      const waitMs = Math.min(1000, (state.validBefore - state.chainTime + 1) * 1000);
      if (Date.now() + waitMs > deadline) return { kind: "unknown", validUntil, url: ex.url };
      t.emit({ type: "payment.pending", url: ex.url, idempotencyKey: key, waitMs, validUntil });
      await sleep(waitMs);
    }
  }

  /**
   * The chain shows the credential used, but the server answered 402 when asked: it may still be
   * between settling and storing its answer (a request held up, or from a killed run). Asking again
   * signs nothing; ask each second for a short grace (within the caller's deadline), then report
   * the payment as undelivered.
   */
  async function awaitDelivery(
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
      await sleep(1000);
      ex = await sendKeyed(t, keyedSpec(paid), key);
      if (ex.response.ok)
        return { kind: "delivered", exchange: ex, settlement: await markDelivered(t, paid, ex) };
      if (ex.response.status !== 402) throw toApiError(paid.method, ex);
    }
    return { kind: "paid", settlement: paid.settlement!, status: ex.response.status, url: ex.url };
  }

  /** A `paid` intent: repeat the keyed request so the server delivers; never pay it again. */
  async function deliverPaid(t: Transport, record: IntentRecord): Promise<PaidExchange> {
    const ex = await sendKeyed(t, keyedSpec(record), record.idempotencyKey);
    if (ex.response.ok) {
      const settlement = await markDelivered(t, record, ex);
      return { ...ex, settlement, replayed: true };
    }
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
  async function settleEarlier(
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
      const resolution = await resolvePending(t, before, { cancel: true, wait: true });
      if (resolution.kind === "delivered") {
        return { done: { ...resolution.exchange, settlement: resolution.settlement, replayed: true } };
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
      return { record: await journal.get(before.apiBase, before.idempotencyKey) };
    }
    if (before.state === "paid") return { done: await deliverPaid(t, before) };
    return { record: before };
  }

  async function pay(
    t: Transport,
    spec: RequestSpec,
    intent: { intentId: string; idempotencyKey: string; maxPaymentUsd?: number | undefined },
  ): Promise<PaidExchange> {
    const key = intent.idempotencyKey;
    const scope = scopeOf(t.apiBase);
    const base: Omit<IntentRecord, "updatedAt" | "state"> = {
      apiBase: scope,
      intentId: intent.intentId,
      idempotencyKey: key,
      method: spec.method,
      url: urlFor(t.apiBase, spec.path).href,
      ...(spec.body !== undefined ? { body: spec.body } : {}),
    };
    // This call's policy: the client's, with the caller's tighter per-payment cap if any.
    const callPolicy: Policy.SpendPolicy =
      intent.maxPaymentUsd === undefined
        ? policy
        : { ...policy, maxPaymentUsd: Math.min(policy.maxPaymentUsd, intent.maxPaymentUsd) };
    const keyed: RequestSpec = { ...spec, headers: { ...spec.headers, "Idempotency-Key": key } };

    let before = await journal.get(scope, key);
    if (before) {
      const earlier = await settleEarlier(t, before);
      if ("done" in earlier) return earlier.done;
      before = earlier.record;
    }
    // A fresh attempt: nothing is written until something could be paid. The states a new attempt
    // may start from (checked again, atomically, when the credential is recorded as pending):
    const startable: (IntentState | undefined)[] = [undefined, "failed", "begun"];
    const fresh: Omit<IntentRecord, "updatedAt"> = {
      ...base,
      state: "begun",
      proof: undefined,
      validUntil: undefined,
      settlement: undefined,
      error: undefined,
      owner: undefined,
    };
    const record: IntentRecord =
      before?.state === "settled" ? before : { ...fresh, updatedAt: new Date().toISOString() };

    const first = await sendKeyed(t, keyed, key);
    if (first.response.ok) {
      const replayed = first.response.headers.get("x-run402-idempotent-replay") === "true";
      const settlement = replayed
        ? (record.settlement ?? settlementFrom(first, record))
        : settlementFrom(first, record);
      if (replayed) t.emit({ type: "payment.replayed", url: first.url, idempotencyKey: key, settlement });
      if (record.state !== "settled") await move(record, { state: "settled", settlement }, startable);
      return { ...first, settlement, replayed };
    }
    if (first.response.status !== 402) throw toApiError(spec.method, first);
    if (record.state === "settled") throw new IntentAlreadyPaidError({ idempotencyKey: key, url: first.url });

    const refuse = async (err: SpendPolicyError | RailNotOfferedError): Promise<never> => {
      if (err instanceof SpendPolicyError)
        t.emit({
          type: "payment.refused",
          url: first.url,
          rail: err.rail,
          code: err.code,
          message: err.shortMessage,
        });
      await move(record, { state: "failed", error: err.code }, startable);
      throw err;
    };

    // A 402: read the offers (strictly parsed) of the rails this payer may pay on, take the configured
    // rail or the named fallback. Only those rails' libraries are loaded; the others are read only to
    // name what the server offered when neither is.
    const offers = new Map<RailName, { challenges: PaymentChallenge[]; refused: SpendPolicyError[] }>();
    const read = async (readable: Rail[]) => {
      for (const r of readable) {
        await r.ready?.();
        const o = r.getChallenges(first.response, first.body);
        if (o.challenges.length || o.refused.length) offers.set(r.name, o);
      }
    };
    const payable = (r: Rail) => r.name === rail || r.name === fallbackRail;
    await read(rails.filter(payable));
    const chosenRail = offers.has(rail)
      ? rail
      : fallbackRail && offers.has(fallbackRail)
        ? fallbackRail
        : null;
    if (!chosenRail) {
      await read(rails.filter((r) => !payable(r)));
      return refuse(
        new RailNotOfferedError({
          wanted: fallbackRail ? [rail, fallbackRail] : [rail],
          offered: [...offers.keys()],
          url: first.url,
        }),
      );
    }
    t.emit({ type: "payment.challenge", url: first.url, offered: [...offers.keys()], chosen: chosenRail });
    const railImpl = railOf(chosenRail)!;
    const offer = offers.get(chosenRail)!;

    let approved: PaymentChallenge | null = null;
    let refusal: SpendPolicyError | null = offer.refused[0] ?? null;
    const pinned = policy.allowedRecipients ? null : await pinnedRecipient(scope, chosenRail);
    for (const challenge of offer.challenges) {
      const err = Policy.check(callPolicy, challenge, {
        spentAtomic: spent() + reserved,
        pinnedRecipient: pinned,
      });
      if (!err) {
        approved = challenge;
        break;
      }
      // A policy refusal of a well-formed offer says more than a malformed sibling's.
      if (!refusal || refusal.limit === "challenge") refusal = err;
    }
    if (!approved) return refuse(refusal!);
    // Reserved from approval on, before any await: concurrent calls in this process see it at once
    // and cannot jointly pass the run cap. Released on every way out before the claim, which moves
    // the amount into `counted`.
    const reservation = approved.amountAtomic;
    reserved += reservation;
    let reservedNow = true;
    const release = () => {
      if (reservedNow) reserved -= reservation;
      reservedNow = false;
    };
    try {
      if (!policy.allowedRecipients && pinned === null) {
        const pinnedNow = await pin(scope, chosenRail, approved.recipient);
        // Another process may have pinned a different recipient between our read and our write.
        if (pinnedNow.toLowerCase() !== approved.recipient.toLowerCase()) {
          return refuse(
            Policy.check(callPolicy, approved, {
              spentAtomic: spent() + reserved,
              pinnedRecipient: pinnedNow,
            })!,
          );
        }
      }

      t.emit({
        type: "payment.signing",
        url: first.url,
        rail: chosenRail,
        network: approved.network,
        amountUsd: Receipt.atomicToUsd(approved.amountAtomic),
        recipient: approved.recipient,
        idempotencyKey: key,
      });
      const challengeFields = {
        rail: chosenRail,
        amountAtomic: approved.amountAtomic.toString(),
        recipient: approved.recipient,
        network: approved.network,
        asset: approved.asset,
      };
      let credential: Credential;
      try {
        credential = await railImpl.createCredential(approved);
      } catch (thrown) {
        const cause = thrown instanceof SignedThenFailed ? thrown.cause : thrown;
        const err =
          cause instanceof BaseError ? cause : new PaymentCredentialError({ rail: chosenRail, cause });
        if (thrown instanceof SignedThenFailed) {
          // Signed, and the library may have broadcast it: maybe paid, counted, resolved on chain.
          const claimed = await journal.transition(
            {
              ...record,
              ...challengeFields,
              state: "pending",
              proof: thrown.proof,
              validUntil: new Date((thrown.proof.validBefore + 30) * 1000).toISOString(),
              owner: self,
              error: err.code,
            },
            startable,
          );
          if (claimed.ok) {
            counted.set(recordKey(scope, key), approved.amountAtomic);
            release();
          }
          throw err;
        }
        // Nothing left the process: the intent is unpaid.
        await move(record, { ...challengeFields, state: "failed", error: err.code }, startable);
        if (err instanceof SpendPolicyError)
          t.emit({
            type: "payment.refused",
            url: first.url,
            rail: err.rail,
            code: err.code,
            message: err.shortMessage,
          });
        throw err;
      }

      // Durable before sending, and the one claim on the intent: from here on the credential may reach
      // the server, so the intent is pending (counted against the caps) until the server delivers or
      // the chain says otherwise. If another process claimed it meanwhile, this credential is dropped
      // unsent.
      const validUntil = new Date((credential.proof.validBefore + 30) * 1000).toISOString();
      const claimed = await journal.transition(
        { ...record, ...challengeFields, state: "pending", proof: credential.proof, validUntil, owner: self },
        startable,
      );
      if (!claimed.ok) {
        throw new IntentInProgressError({
          idempotencyKey: key,
          url: first.url,
          owner: claimed.current?.owner ?? claimed.current?.state ?? "unknown",
        });
      }
      const pending = claimed.record;
      counted.set(recordKey(scope, key), approved.amountAtomic);
      release();

      // Exactly one paid attempt: no retry could be told apart from paying again.
      const second = await sendOnce(t, await build(t, keyed, credential.headers));
      if (second.response.status === 402) {
        const env = envelopeOf(second.body);
        throw new PaymentRejectedError({
          rail: chosenRail,
          url: second.url,
          serverCode: env?.code,
          message: env?.message,
          body: second.body,
        });
      }
      if (!second.response.ok) throw toApiError(spec.method, second);
      let settlement = settlementFrom(second, pending) ?? fromRecord(pending, null);
      if (settlement.rail === "allowance") {
        // We sent a credential, yet the server says the allowance paid. The credential may still have
        // moved money: it stays counted against the caps, and if the chain shows it used, the
        // settlement records what really paid.
        const state = await railImpl.chainState(credential.proof).catch(() => null);
        if (state?.state === "used") settlement = fromRecord(pending, state.reference);
      }
      paid.push(settlement);
      await move(pending, { state: "settled", settlement }, ["pending"]);
      t.emit({ type: "payment.settled", url: second.url, settlement });
      return {
        ...second,
        settlement,
        replayed: second.response.headers.get("x-run402-idempotent-replay") === "true",
      };
    } finally {
      release();
    }
  }

  return {
    payments: () => [...paid],
    spentAtomic: () => spent(),
    fetch(t, spec, intent) {
      const carried = carriedPayment(new Headers(spec.headers));
      if (carried) return Promise.reject(new PaymentAlreadyAttemptedError({ header: carried }));
      return exclusive(recordKey(scopeOf(t.apiBase), intent.idempotencyKey), () => pay(t, spec, intent));
    },
    async recover(t, options = {}) {
      const out: Recovered[] = [];
      for (const found of await journal.unfinished(scopeOf(t.apiBase))) {
        const result = await exclusive(
          recordKey(found.apiBase, found.idempotencyKey),
          async (): Promise<Recovered> => {
            const record = await journal.get(found.apiBase, found.idempotencyKey);
            const base = { intentId: found.intentId, idempotencyKey: found.idempotencyKey };
            if (!record || busyElsewhere(record)) return { ...base, outcome: "unknown", settlement: null };
            try {
              if (record.state === "paid") {
                const done = await deliverPaid(t, record).catch(() => null);
                return done
                  ? { ...base, outcome: "settled", settlement: done.settlement }
                  : { ...base, outcome: "paid", settlement: record.settlement ?? null };
              }
              if (record.state !== "pending") return { ...base, outcome: "unknown", settlement: null };
              const resolution = await resolvePending(t, record, {
                cancel: options.cancel === true,
                wait: false,
              });
              if (resolution.kind === "delivered")
                return { ...base, outcome: "settled", settlement: resolution.settlement };
              if (resolution.kind === "paid")
                return { ...base, outcome: "paid", settlement: resolution.settlement };
              if (resolution.kind === "unpaid") return { ...base, outcome: "unpaid", settlement: null };
              return { ...base, outcome: "unknown", settlement: null };
            } catch {
              // The server or the chain did not answer: the intent stays as it was, for the next run.
              return { ...base, outcome: "unknown", settlement: null };
            }
          },
        );
        out.push(result);
      }
      return out;
    },
  };
}

export type { Proof };
