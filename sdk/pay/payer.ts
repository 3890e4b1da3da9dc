/**
 * The payer: pays a 402 at most once per intent, within the spend policy, and never loses track of
 * a credential that left the process. Every state change goes through the journal's
 * compare-and-set; calls for one intent in one process run one at a time.
 */
import { BaseError } from "../../core/errors.js";
import { CancelledError } from "../errors/http.js";
import {
  IntentAlreadyPaidError,
  IntentInProgressError,
  PaymentAlreadyAttemptedError,
  PaymentCredentialError,
  PaymentRejectedError,
  RailNotOfferedError,
  SpendPolicyError,
} from "../errors/payment.js";
import {
  build,
  envelopeOf,
  type RequestSpec,
  sendOnce,
  type Transport,
  toApiError,
  urlFor,
} from "../internal/http.js";
import { atomicToUsd, usdToAtomic } from "../money.js";
import type * as Receipt from "../Receipt.js";
import {
  type Budget,
  type BudgetRefusal,
  type IntentRecord,
  type IntentState,
  type Journal,
  overBudget,
  recordKey,
  self,
} from "./journal.js";
import * as Policy from "./policy.js";
import {
  type Credential,
  carriedPayment,
  type PaymentChallenge,
  type Proof,
  type Rail,
  type RailName,
  SignedThenFailed,
} from "./rail.js";
import { busyElsewhere, markedReplay, type PaidExchange, resolution } from "./resolution.js";

export type { PaidExchange };

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
   * The wallet budget, enforced by the journal at claim time under the claim's lock, across every
   * process that shares the journal: at most `run.maxUsd` over the claims of run `run.id`, and at
   * most `window.maxUsd` over the wallet's claims of the last `window.seconds`. Pending credentials
   * count. @default none (only this payer's own `policy.maxSpendUsd`)
   */
  budget?:
    | {
        run?: { id: string; maxUsd: number } | undefined;
        window?: { seconds: number; maxUsd: number } | undefined;
      }
    | undefined;
  /**
   * How long to wait, with `payment.pending` events, for a payment the server reports in flight or
   * for an earlier credential to expire unused. @default 120
   */
  maxPendingWaitSeconds?: number | undefined;
};

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

/** An unfinished intent as the journal holds it. */
export type Unfinished = {
  intentId: string;
  idempotencyKey: string;
  /** `pending`: a credential may have been used; `paid`: the chain showed it used, the server did not deliver. */
  state: "pending" | "paid";
  rail: RailName | null;
  amountUsd: string | null;
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
  /**
   * What earlier runs left unfinished against this API, read from the journal only: no request, no
   * chain read (for previews and plans, which must not ask a server that could answer by selling).
   */
  unfinished(t: Transport): Promise<Unfinished[]>;
  /** Settlements paid in this payer's lifetime. */
  payments(): Receipt.Settlement[];
  /** Atomic units paid, or possibly paid (pending), in this lifetime. */
  spentAtomic(): bigint;
};

/** The API base an intent is scoped by: origin plus path prefix, no trailing slash. */
export function scopeOf(apiBase: URL): string {
  return apiBase.origin + apiBase.pathname.replace(/\/$/, "");
}

/** Creates the payer. Rail choice, the policy check and the single paid retry all happen here. */
export function create(options: CreateOptions): Payer {
  const { rails, rail, fallbackRail, policy, journal, payer, maxPendingWaitSeconds = 120 } = options;
  const wallet = payer.toLowerCase();
  const budget: Budget | undefined =
    options.budget?.run || options.budget?.window
      ? {
          wallet,
          ...(options.budget.run
            ? { run: { id: options.budget.run.id, maxAtomic: usdToAtomic(options.budget.run.maxUsd) } }
            : {}),
          ...(options.budget.window
            ? {
                window: {
                  seconds: options.budget.window.seconds,
                  maxAtomic: usdToAtomic(options.budget.window.maxUsd),
                },
              }
            : {}),
        }
      : undefined;
  const budgetError = (refusal: BudgetRefusal, r: RailName, signed: boolean) =>
    new SpendPolicyError({
      limit: refusal.limit === "run" ? "budget_run" : "budget_window",
      rail: r,
      signed,
      reason:
        refusal.limit === "run"
          ? `${atomicToUsd(refusal.askedAtomic)} USD on top of ${atomicToUsd(refusal.usedAtomic)} USD this run already claimed on the wallet is over its budget of ${atomicToUsd(refusal.maxAtomic)} USD (every process of the run counts, through the journal)`
          : `${atomicToUsd(refusal.askedAtomic)} USD on top of ${atomicToUsd(refusal.usedAtomic)} USD the wallet claimed in the last ${budget?.window?.seconds ?? 0} s (pending credentials included, from every runner sharing the journal) is over its rolling budget of ${atomicToUsd(refusal.maxAtomic)} USD`,
      asked: `${atomicToUsd(refusal.usedAtomic + refusal.askedAtomic)} USD`,
      allowed: `${atomicToUsd(refusal.maxAtomic)} USD`,
    });
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

  const {
    fromRecord,
    settlementFrom,
    move,
    sendKeyed,
    resolvePending,
    deliverPaid,
    settleEarlier,
    delivered,
  } = resolution({
    journal,
    railOf,
    payer,
    maxPendingWaitSeconds,
    counted,
    onRepurchase: (settlement) => paid.push(settlement),
    roomFor: (amountAtomic) =>
      spent() + reserved + amountAtomic <= usdToAtomic(policy.maxSpendUsd) &&
      amountAtomic <= usdToAtomic(policy.maxPaymentUsd),
  });

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
      wallet,
      ...(budget?.run ? { runId: budget.run.id } : {}),
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
      claimedAt: undefined,
    };
    const record: IntentRecord =
      before?.state === "settled" ? before : { ...fresh, updatedAt: new Date().toISOString() };

    const first = await sendKeyed(t, keyed, key);
    if (first.response.ok) {
      const replayed = markedReplay(first.response, first.body);
      // The intent was delivered before and this answer is no replay of it: a second sale.
      if (record.state === "settled" && !replayed)
        return { ...first, ...(await delivered(t, record, first)) };
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
    // The networks allowed by default are those of the rail's configured RPC (asked of it once).
    let configuredNetwork: string | null = null;
    if (!policy.allowedNetworks && offer.challenges.length > 0) {
      try {
        configuredNetwork = (await railImpl.configuredNetwork?.()) ?? null;
      } catch (cause) {
        return refuse(
          new SpendPolicyError({
            limit: "network",
            rail: chosenRail,
            reason: `the configured RPC did not say which chain it serves (${cause instanceof Error ? cause.message : String(cause)}), so no network is known to be allowed`,
            asked: offer.challenges.map((c) => c.network).join(", "),
            allowed: "the configured RPC's chain",
          }),
        );
      }
    }
    for (const challenge of offer.challenges) {
      const err = Policy.check(callPolicy, challenge, {
        spentAtomic: spent() + reserved,
        pinnedRecipient: pinned,
        configuredNetwork,
      });
      if (!err) {
        approved = challenge;
        break;
      }
      // A policy refusal of a well-formed offer says more than a malformed sibling's.
      if (!refusal || refusal.limit === "challenge") refusal = err;
    }
    if (!approved) return refuse(refusal!);
    if (budget) {
      // Before signing: what the wallet claimed so far, every process sharing the journal included,
      // but this intent's own record: another runner's claim of it is no second spend (our claim
      // below finds it pending and waits for it). The claim checks again, under its lock; this read
      // only spares a signature bound to be refused.
      const early = overBudget(
        budget,
        await journal.budgetUse(budget, { apiBase: scope, idempotencyKey: key }),
        approved.amountAtomic,
      );
      if (early) return refuse(budgetError(early, chosenRail, false));
    }
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
              configuredNetwork,
            })!,
          );
        }
      }

      t.emit({
        type: "payment.signing",
        url: first.url,
        rail: chosenRail,
        network: approved.network,
        amountUsd: atomicToUsd(approved.amountAtomic),
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
        { budget },
      );
      if (!claimed.ok && claimed.overBudget) {
        // Another process claimed on the wallet meanwhile: this credential never leaves the process.
        const err = budgetError(claimed.overBudget, chosenRail, true);
        await move(record, { ...challengeFields, state: "failed", error: err.code }, startable);
        t.emit({
          type: "payment.refused",
          url: first.url,
          rail: chosenRail,
          code: err.code,
          message: err.shortMessage,
        });
        throw err;
      }
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
      const second = await sendOnce(t, await build(t, keyed, credential.headers)).catch((error: unknown) => {
        // Stopped with the credential sent: maybe paid. The intent stays pending (never failed).
        if (error instanceof CancelledError)
          throw new CancelledError({
            while: `waiting for the answer to paid request ${intent.intentId} (idempotency key ${key}); it may have been paid: it stays pending in the payment journal and the next run resolves it on chain without paying again`,
            cause: error,
          });
        throw error;
      });
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
        replayed: markedReplay(second.response, second.body),
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
    async unfinished(t) {
      return (await journal.unfinished(scopeOf(t.apiBase))).map((r) => ({
        intentId: r.intentId,
        idempotencyKey: r.idempotencyKey,
        state: r.state as "pending" | "paid",
        rail: r.rail ?? null,
        amountUsd: r.amountAtomic ? atomicToUsd(BigInt(r.amountAtomic)) : null,
      }));
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
