/**
 * The payer: pays a 402 at most once per intent, within the spend policy, and never loses track of
 * a credential that left the process. Every state change goes through the journal's
 * compare-and-set; calls for one intent in one process run one at a time.
 *
 * A purchase is a chain of named steps ({@link pay}), each a function of the payer's
 * {@link PayerContext} and the call's {@link Attempt}: {@link open} (the intent's earlier record) →
 * {@link ask} (the keyed request, unpaid) → {@link choose} (the rail) → {@link approve} (the policy)
 * → {@link reserve} (budget, run cap, pin) → {@link sign} → {@link claim} (pending, in the journal)
 * → {@link send} (the one paid request) → {@link settle}; a step that refuses records the intent
 * as failed ({@link refuse}). {@link create} composes them.
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
  type Exchange,
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
  type Offers,
  type PaymentChallenge,
  type Proof,
  type Rail,
  type RailName,
  SignedThenFailed,
} from "./rail.js";
import {
  busyElsewhere,
  delivered,
  deliverPaid,
  fromRecord,
  markedReplay,
  move,
  type PaidExchange,
  type ResolutionContext,
  resolvePending,
  sendKeyed,
  settleEarlier,
  settlementFrom,
} from "./resolution.js";

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

/**
 * What every step of one payer shares: its options (rails, policy, journal, budget), the
 * resolution steps' context, and this lifetime's ledger (payments, what counts against the run cap,
 * what is reserved while being signed, pinned recipients read, the calls running per intent).
 */
export type PayerContext = ResolutionContext & {
  rails: Rail[];
  /** The rail to pay on. */
  rail: RailName;
  /** Used only when the server does not offer `rail`. */
  fallbackRail: RailName | undefined;
  /** The client's policy (each call may tighten its per-payment cap: {@link Attempt.policy}). */
  policy: Policy.SpendPolicy;
  /** The payer's address, lower case: what the wallet budget sums over. */
  wallet: string;
  budget: Budget | undefined;
  /** Settlements paid in this lifetime. */
  paid: Receipt.Settlement[];
  /** Being signed right now: reserved so concurrent purchases cannot jointly pass the run cap. */
  reserved: { atomic: bigint };
  /** Pinned recipients never change once pinned: each is read from the journal once. */
  pins: Map<string, string>;
  /** One call per intent at a time in this process. */
  running: Map<string, Promise<unknown>>;
};

/** The journal's {@link Budget} for the options' wallet budget, if any. */
export function budgetOf(wallet: string, budget: CreateOptions["budget"]): Budget | undefined {
  return budget?.run || budget?.window
    ? {
        wallet,
        ...(budget.run ? { run: { id: budget.run.id, maxAtomic: usdToAtomic(budget.run.maxUsd) } } : {}),
        ...(budget.window
          ? { window: { seconds: budget.window.seconds, maxAtomic: usdToAtomic(budget.window.maxUsd) } }
          : {}),
      }
    : undefined;
}

/** The payer's context for `options`, with an empty ledger. */
export function context(options: CreateOptions): PayerContext {
  const { rails, rail, fallbackRail, policy, journal, payer, maxPendingWaitSeconds = 120 } = options;
  const wallet = payer.toLowerCase();
  const ctx: PayerContext = {
    rails,
    rail,
    fallbackRail,
    policy,
    journal,
    payer,
    maxPendingWaitSeconds,
    wallet,
    budget: budgetOf(wallet, options.budget),
    paid: [],
    counted: new Map(),
    reserved: { atomic: 0n },
    pins: new Map(),
    running: new Map(),
    railOf: (name) => rails.find((r) => r.name === name),
    onRepurchase: (settlement) => {
      ctx.paid.push(settlement);
    },
    roomFor: (amountAtomic) =>
      spent(ctx) + ctx.reserved.atomic + amountAtomic <= usdToAtomic(policy.maxSpendUsd) &&
      amountAtomic <= usdToAtomic(policy.maxPaymentUsd),
  };
  return ctx;
}

/** Paid or pending in this lifetime: what counts against the run cap. */
export function spent(ctx: PayerContext): bigint {
  return [...ctx.counted.values()].reduce((a, b) => a + b, 0n);
}

/** Runs `fn` after every earlier call for `key` in this process has ended. */
export function exclusive<T>(ctx: PayerContext, key: string, fn: () => Promise<T>): Promise<T> {
  const previous = ctx.running.get(key) ?? Promise.resolve();
  const run = previous.then(fn, fn);
  const tail = run.catch(() => undefined);
  ctx.running.set(key, tail);
  void tail.then(() => {
    if (ctx.running.get(key) === tail) ctx.running.delete(key);
  });
  return run;
}

async function pinnedRecipient(ctx: PayerContext, scope: string, r: RailName): Promise<string | null> {
  const known = ctx.pins.get(`${scope} ${r}`);
  if (known) return known;
  const found = await ctx.journal.pinned(scope, r);
  if (found) ctx.pins.set(`${scope} ${r}`, found);
  return found;
}

async function pin(ctx: PayerContext, scope: string, r: RailName, recipient: string): Promise<string> {
  const pinned = await ctx.journal.pin(scope, r, recipient);
  ctx.pins.set(`${scope} ${r}`, pinned);
  return pinned;
}

/** The refusal of a claim over the wallet budget. */
export function budgetError(
  budget: Budget | undefined,
  refusal: BudgetRefusal,
  r: RailName,
  signed: boolean,
): SpendPolicyError {
  return new SpendPolicyError({
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
}

/**
 * The states a new attempt may start from (checked again, atomically, when the credential is
 * recorded as pending).
 */
const startable: readonly (IntentState | undefined)[] = [undefined, "failed", "begun"];

/** One call of {@link Payer.fetch}: its intent, its request, and the record it starts from. */
export type Attempt = {
  t: Transport;
  spec: RequestSpec;
  /** `spec` carrying the intent's `Idempotency-Key`. */
  keyed: RequestSpec;
  intentId: string;
  /** The idempotency key. */
  key: string;
  /** The API base ({@link scopeOf}). */
  scope: string;
  /** This call's policy: the client's, with the caller's tighter per-payment cap if any. */
  policy: Policy.SpendPolicy;
  /** The intent's settled record, or a fresh one (nothing is written until something could be paid). */
  record: IntentRecord;
};

/** The rail chosen for a 402 and its offers there. */
export type Choice = { url: string; rail: RailName; impl: Rail; offer: Offers };

/** The one challenge the policy approved, and what the check was made against. */
export type Approval = Choice & {
  challenge: PaymentChallenge;
  /** The recipient pinned for the API base and rail when the approval was made (null: none, or an allow-list). */
  pinned: string | null;
  /** The chain of the rail's configured RPC, when the policy names no networks. */
  configuredNetwork: string | null;
  /**
   * The amount held against the run cap, taken in the same synchronous step as the check (so
   * concurrent calls in this process see it at once); null only for an approval made by hand
   * ({@link reserve} takes it then).
   */
  held: Reservation | null;
};

/** An amount reserved against the run cap while it is signed; released once. */
export type Reservation = { atomic: bigint; release(): void };

/** What an intent's record says about the approved challenge. */
function fieldsOf(approval: Approval) {
  return {
    rail: approval.rail,
    amountAtomic: approval.challenge.amountAtomic.toString(),
    recipient: approval.challenge.recipient,
    network: approval.challenge.network,
    asset: approval.challenge.asset,
  };
}

/** Reports a policy refusal (`payment.refused`); other refusals are reported by their error alone. */
function reportRefused(t: Transport, url: string, err: BaseError): void {
  if (err instanceof SpendPolicyError)
    t.emit({ type: "payment.refused", url, rail: err.rail, code: err.code, message: err.shortMessage });
}

/** Refuses an attempt before anything was signed: reported, recorded as failed (unpaid), thrown. */
export async function refuse(
  ctx: PayerContext,
  a: Attempt,
  url: string,
  err: SpendPolicyError | RailNotOfferedError,
): Promise<never> {
  reportRefused(a.t, url, err);
  await move(ctx, a.record, { state: "failed", error: err.code }, startable);
  throw err;
}

/**
 * First step: the intent's earlier record, finished (its paid result delivered) or brought to a
 * state a new attempt can start from. Refuses an intent another live process is working on.
 */
export async function open(
  ctx: PayerContext,
  t: Transport,
  spec: RequestSpec,
  intent: { intentId: string; idempotencyKey: string; maxPaymentUsd?: number | undefined },
): Promise<{ done: PaidExchange } | { attempt: Attempt }> {
  const key = intent.idempotencyKey;
  const scope = scopeOf(t.apiBase);
  const base: Omit<IntentRecord, "updatedAt" | "state"> = {
    apiBase: scope,
    intentId: intent.intentId,
    idempotencyKey: key,
    method: spec.method,
    url: urlFor(t.apiBase, spec.path).href,
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    wallet: ctx.wallet,
    ...(ctx.budget?.run ? { runId: ctx.budget.run.id } : {}),
  };
  const callPolicy: Policy.SpendPolicy =
    intent.maxPaymentUsd === undefined
      ? ctx.policy
      : { ...ctx.policy, maxPaymentUsd: Math.min(ctx.policy.maxPaymentUsd, intent.maxPaymentUsd) };
  const keyed: RequestSpec = { ...spec, headers: { ...spec.headers, "Idempotency-Key": key } };

  let before = await ctx.journal.get(scope, key);
  if (before) {
    const earlier = await settleEarlier(ctx, t, before);
    if ("done" in earlier) return earlier;
    before = earlier.record;
  }
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
  return {
    attempt: {
      t,
      spec,
      keyed,
      intentId: intent.intentId,
      key,
      scope,
      policy: callPolicy,
      record,
    },
  };
}

/**
 * The keyed request, unpaid. A 2xx finishes the intent: the server's replay of an earlier payment,
 * or (for an intent settled before, unmarked) a second sale. A 402 is the challenge to pay, unless
 * the intent was settled before (refused: never pay twice). Any other status throws.
 */
export async function ask(
  ctx: PayerContext,
  a: Attempt,
): Promise<{ done: PaidExchange } | { challenge: Exchange }> {
  const { t, key, record } = a;
  const first = await sendKeyed(ctx, t, a.keyed, key);
  if (first.response.ok) {
    const replayed = markedReplay(first.response, first.body);
    // The intent was delivered before and this answer is no replay of it: a second sale.
    if (record.state === "settled" && !replayed)
      return { done: { ...first, ...(await delivered(ctx, t, record, first)) } };
    const settlement = replayed
      ? (record.settlement ?? settlementFrom(ctx, first, record))
      : settlementFrom(ctx, first, record);
    if (replayed) t.emit({ type: "payment.replayed", url: first.url, idempotencyKey: key, settlement });
    if (record.state !== "settled") await move(ctx, record, { state: "settled", settlement }, startable);
    return { done: { ...first, settlement, replayed } };
  }
  if (first.response.status !== 402) throw toApiError(a.spec.method, first);
  if (record.state === "settled") throw new IntentAlreadyPaidError({ idempotencyKey: key, url: first.url });
  return { challenge: first };
}

/**
 * Reads the 402's offers (strictly parsed) of the rails this payer may pay on and takes the
 * configured rail, else the named fallback. Only those rails' libraries are loaded; the others are
 * read only to name what the server offered when neither is (refused: RailNotOffered).
 */
export async function choose(ctx: PayerContext, a: Attempt, first: Exchange): Promise<Choice> {
  const { rail, fallbackRail } = ctx;
  const offers = new Map<RailName, Offers>();
  const read = async (readable: Rail[]) => {
    for (const r of readable) {
      await r.ready?.();
      const o = r.getChallenges(first.response, first.body);
      if (o.challenges.length || o.refused.length) offers.set(r.name, o);
    }
  };
  const payable = (r: Rail) => r.name === rail || r.name === fallbackRail;
  await read(ctx.rails.filter(payable));
  const chosenRail = offers.has(rail) ? rail : fallbackRail && offers.has(fallbackRail) ? fallbackRail : null;
  if (!chosenRail) {
    await read(ctx.rails.filter((r) => !payable(r)));
    return refuse(
      ctx,
      a,
      first.url,
      new RailNotOfferedError({
        wanted: fallbackRail ? [rail, fallbackRail] : [rail],
        offered: [...offers.keys()],
        url: first.url,
      }),
    );
  }
  a.t.emit({ type: "payment.challenge", url: first.url, offered: [...offers.keys()], chosen: chosenRail });
  return { url: first.url, rail: chosenRail, impl: ctx.railOf(chosenRail)!, offer: offers.get(chosenRail)! };
}

/**
 * The first of the chosen rail's challenges the call's policy allows (network, asset, recipient
 * or pin, expiry, the caps with what is spent and reserved), or a refusal: a policy refusal of a
 * well-formed offer before a malformed sibling's. Signs nothing. The approved amount is held
 * against the run cap in the very step that checked it: no other call of this process can be
 * checked in between (the wallet budget's journal read comes after, in {@link reserve}).
 */
export async function approve(ctx: PayerContext, a: Attempt, choice: Choice): Promise<Approval> {
  const { offer } = choice;
  let refusal: SpendPolicyError | null = offer.refused[0] ?? null;
  const pinned = ctx.policy.allowedRecipients ? null : await pinnedRecipient(ctx, a.scope, choice.rail);
  // The networks allowed by default are those of the rail's configured RPC (asked of it once).
  let configuredNetwork: string | null = null;
  if (!ctx.policy.allowedNetworks && offer.challenges.length > 0) {
    try {
      configuredNetwork = (await choice.impl.configuredNetwork?.()) ?? null;
    } catch (cause) {
      return refuse(
        ctx,
        a,
        choice.url,
        new SpendPolicyError({
          limit: "network",
          rail: choice.rail,
          reason: `the configured RPC did not say which chain it serves (${cause instanceof Error ? cause.message : String(cause)}), so no network is known to be allowed`,
          asked: offer.challenges.map((c) => c.network).join(", "),
          allowed: "the configured RPC's chain",
        }),
      );
    }
  }
  for (const challenge of offer.challenges) {
    const err = Policy.check(a.policy, challenge, {
      spentAtomic: spent(ctx) + ctx.reserved.atomic,
      pinnedRecipient: pinned,
      configuredNetwork,
    });
    if (!err)
      return {
        ...choice,
        challenge,
        pinned,
        configuredNetwork,
        held: hold(ctx, challenge.amountAtomic),
      };
    // A policy refusal of a well-formed offer says more than a malformed sibling's.
    if (!refusal || refusal.limit === "challenge") refusal = err;
  }
  return refuse(ctx, a, choice.url, refusal!);
}

/**
 * Before signing: the wallet budget as the journal sums it (every process sharing it, but this
 * intent's own record: another runner's claim of it is no second spend, the claim finds it and
 * waits), with the amount held against the run cap since {@link approve} (released on a refusal),
 * then the recipient pinned on first use. Refuses a budget overrun,
 * and a recipient another process pinned meanwhile. Signs nothing. The claim checks the budget
 * again, under its lock: this read only spares a signature bound to be refused.
 */
export async function reserve(ctx: PayerContext, a: Attempt, approval: Approval): Promise<Reservation> {
  const { challenge } = approval;
  let reservation = approval.held;
  try {
    if (ctx.budget) {
      const early = overBudget(
        ctx.budget,
        await ctx.journal.budgetUse(ctx.budget, { apiBase: a.scope, idempotencyKey: a.key }),
        challenge.amountAtomic,
      );
      if (early)
        return await refuse(ctx, a, approval.url, budgetError(ctx.budget, early, approval.rail, false));
    }
    // Released on every way out before the claim, which moves the amount into `counted`.
    reservation ??= hold(ctx, challenge.amountAtomic);
    if (!ctx.policy.allowedRecipients && approval.pinned === null) {
      const pinnedNow = await pin(ctx, a.scope, approval.rail, challenge.recipient);
      // Another process may have pinned a different recipient between our read and our write.
      if (pinnedNow.toLowerCase() !== challenge.recipient.toLowerCase()) {
        return await refuse(
          ctx,
          a,
          approval.url,
          Policy.check(a.policy, challenge, {
            spentAtomic: spent(ctx) + ctx.reserved.atomic,
            pinnedRecipient: pinnedNow,
            configuredNetwork: approval.configuredNetwork,
          })!,
        );
      }
    }
  } catch (error) {
    reservation?.release();
    throw error;
  }
  return reservation;
}

/** Holds `atomic` against the run cap (what {@link approve} checks with) until released, once. */
export function hold(ctx: PayerContext, atomic: bigint): Reservation {
  ctx.reserved.atomic += atomic;
  let held = true;
  return {
    atomic,
    release() {
      if (held) ctx.reserved.atomic -= atomic;
      held = false;
    },
  };
}

/**
 * The chosen rail signs the approved challenge (and checks what it signed). A rail that signed,
 * then failed (its library may have broadcast), leaves the intent pending: maybe paid, counted,
 * resolved on chain. Any other failure left nothing outside the process: the intent is failed.
 */
export async function sign(
  ctx: PayerContext,
  a: Attempt,
  approval: Approval,
  reservation: Reservation,
): Promise<Credential> {
  const { challenge } = approval;
  a.t.emit({
    type: "payment.signing",
    url: approval.url,
    rail: approval.rail,
    network: challenge.network,
    amountUsd: atomicToUsd(challenge.amountAtomic),
    recipient: challenge.recipient,
    idempotencyKey: a.key,
  });
  try {
    return await approval.impl.createCredential(challenge);
  } catch (thrown) {
    const cause = thrown instanceof SignedThenFailed ? thrown.cause : thrown;
    const err =
      cause instanceof BaseError ? cause : new PaymentCredentialError({ rail: approval.rail, cause });
    if (thrown instanceof SignedThenFailed) {
      await ctx.journal.transition(
        {
          ...a.record,
          ...fieldsOf(approval),
          state: "pending",
          proof: thrown.proof,
          validUntil: new Date((thrown.proof.validBefore + 30) * 1000).toISOString(),
          owner: self,
          error: err.code,
        },
        startable,
      );
      // What was signed may have been broadcast: it counts against the run cap for the rest of the
      // run, also when another runner's claim of the intent won the write (then only the journal
      // does not hold our proof; counting it can only refuse more, never pay more).
      ctx.counted.set(recordKey(a.scope, a.key), challenge.amountAtomic);
      reservation.release();
      throw err;
    }
    await move(ctx, a.record, { ...fieldsOf(approval), state: "failed", error: err.code }, startable);
    reportRefused(a.t, approval.url, err);
    throw err;
  }
}

/**
 * Durable before sending, and the one claim on the intent: the journal moves it to pending (from
 * here on the credential may reach the server, so it counts against the caps until the server
 * delivers or the chain says otherwise), checking the wallet budget again under the claim's lock.
 * Refuses a budget overrun and an intent another process claimed meanwhile: either way the
 * credential never leaves the process.
 */
export async function claim(
  ctx: PayerContext,
  a: Attempt,
  approval: Approval,
  credential: Credential,
  reservation: Reservation,
): Promise<IntentRecord> {
  const validUntil = new Date((credential.proof.validBefore + 30) * 1000).toISOString();
  const claimed = await ctx.journal.transition(
    {
      ...a.record,
      ...fieldsOf(approval),
      state: "pending",
      proof: credential.proof,
      validUntil,
      owner: self,
    },
    startable,
    { budget: ctx.budget },
  );
  if (!claimed.ok && claimed.overBudget) {
    // Another process claimed on the wallet meanwhile.
    const err = budgetError(ctx.budget, claimed.overBudget, approval.rail, true);
    await move(ctx, a.record, { ...fieldsOf(approval), state: "failed", error: err.code }, startable);
    reportRefused(a.t, approval.url, err);
    throw err;
  }
  if (!claimed.ok) {
    throw new IntentInProgressError({
      idempotencyKey: a.key,
      url: approval.url,
      owner: claimed.current?.owner ?? claimed.current?.state ?? "unknown",
    });
  }
  ctx.counted.set(recordKey(a.scope, a.key), approval.challenge.amountAtomic);
  reservation.release();
  return claimed.record;
}

/**
 * The one paid request: no retry could be told apart from paying again. Stopped with the
 * credential sent, the intent stays pending; a 402 to it is a rejection, any other failure status
 * an {@link ApiError}.
 */
export async function send(a: Attempt, approval: Approval, credential: Credential): Promise<Exchange> {
  const { t } = a;
  const second = await sendOnce(t, await build(t, a.keyed, credential.headers)).catch((error: unknown) => {
    // Stopped with the credential sent: maybe paid. The intent stays pending (never failed).
    if (error instanceof CancelledError)
      throw new CancelledError({
        while: `waiting for the answer to paid request ${a.intentId} (idempotency key ${a.key}); it may have been paid: it stays pending in the payment journal and the next run resolves it on chain without paying again`,
        cause: error,
      });
    throw error;
  });
  if (second.response.status === 402) {
    const env = envelopeOf(second.body);
    throw new PaymentRejectedError({
      rail: approval.rail,
      url: second.url,
      serverCode: env?.code,
      message: env?.message,
      body: second.body,
    });
  }
  if (!second.response.ok) throw toApiError(a.spec.method, second);
  return second;
}

/**
 * The paid request was answered: records the settlement (the receipt's, completed from what was
 * approved) with this lifetime's payments and moves the intent to settled. When the server says the
 * allowance paid although a credential was sent, the chain decides: a used credential is what paid.
 */
export async function settle(
  ctx: PayerContext,
  a: Attempt,
  approval: Approval,
  credential: Credential,
  pending: IntentRecord,
  second: Exchange,
): Promise<PaidExchange> {
  let settlement = settlementFrom(ctx, second, pending) ?? fromRecord(ctx, pending, null);
  if (settlement.rail === "allowance") {
    // The credential may still have moved money: it stays counted against the caps, and if the
    // chain shows it used, the settlement records what really paid.
    const state = await approval.impl.chainState(credential.proof).catch(() => null);
    if (state?.state === "used") settlement = fromRecord(ctx, pending, state.reference);
  }
  ctx.paid.push(settlement);
  await move(ctx, pending, { state: "settled", settlement }, ["pending"]);
  a.t.emit({ type: "payment.settled", url: second.url, settlement });
  return { ...second, settlement, replayed: markedReplay(second.response, second.body) };
}

/**
 * One purchase: open → ask → choose → approve → reserve → sign → claim → send → settle, any step
 * of which may refuse. Pays the 402 at most once.
 */
export async function pay(
  ctx: PayerContext,
  t: Transport,
  spec: RequestSpec,
  intent: { intentId: string; idempotencyKey: string; maxPaymentUsd?: number | undefined },
): Promise<PaidExchange> {
  const opened = await open(ctx, t, spec, intent);
  if ("done" in opened) return opened.done;
  const a = opened.attempt;
  const asked = await ask(ctx, a);
  if ("done" in asked) return asked.done;
  const choice = await choose(ctx, a, asked.challenge);
  const approval = await approve(ctx, a, choice);
  const reservation = await reserve(ctx, a, approval);
  try {
    const credential = await sign(ctx, a, approval, reservation);
    const pending = await claim(ctx, a, approval, credential, reservation);
    const second = await send(a, approval, credential);
    return await settle(ctx, a, approval, credential, pending, second);
  } finally {
    reservation.release();
  }
}

/** Resolves one unfinished intent without paying (see {@link Payer.recover}). */
export async function recoverOne(
  ctx: PayerContext,
  t: Transport,
  found: IntentRecord,
  options: { cancel?: boolean | undefined },
): Promise<Recovered> {
  const record = await ctx.journal.get(found.apiBase, found.idempotencyKey);
  const base = { intentId: found.intentId, idempotencyKey: found.idempotencyKey };
  if (!record || busyElsewhere(record)) return { ...base, outcome: "unknown", settlement: null };
  try {
    if (record.state === "paid") {
      const done = await deliverPaid(ctx, t, record).catch(() => null);
      return done
        ? { ...base, outcome: "settled", settlement: done.settlement }
        : { ...base, outcome: "paid", settlement: record.settlement ?? null };
    }
    if (record.state !== "pending") return { ...base, outcome: "unknown", settlement: null };
    const resolution = await resolvePending(ctx, t, record, { cancel: options.cancel === true, wait: false });
    if (resolution.kind === "delivered")
      return { ...base, outcome: "settled", settlement: resolution.settlement };
    if (resolution.kind === "paid") return { ...base, outcome: "paid", settlement: resolution.settlement };
    if (resolution.kind === "unpaid") return { ...base, outcome: "unpaid", settlement: null };
    return { ...base, outcome: "unknown", settlement: null };
  } catch {
    // The server or the chain did not answer: the intent stays as it was, for the next run.
    return { ...base, outcome: "unknown", settlement: null };
  }
}

/** Creates the payer: {@link pay} for each call, one call per intent at a time. */
export function create(options: CreateOptions): Payer {
  const ctx = context(options);
  return {
    payments: () => [...ctx.paid],
    spentAtomic: () => spent(ctx),
    fetch(t, spec, intent) {
      const carried = carriedPayment(new Headers(spec.headers));
      if (carried) return Promise.reject(new PaymentAlreadyAttemptedError({ header: carried }));
      return exclusive(ctx, recordKey(scopeOf(t.apiBase), intent.idempotencyKey), () =>
        pay(ctx, t, spec, intent),
      );
    },
    async unfinished(t) {
      return (await ctx.journal.unfinished(scopeOf(t.apiBase))).map((r) => ({
        intentId: r.intentId,
        idempotencyKey: r.idempotencyKey,
        state: r.state as "pending" | "paid",
        rail: r.rail ?? null,
        amountUsd: r.amountAtomic ? atomicToUsd(BigInt(r.amountAtomic)) : null,
      }));
    },
    async recover(t, options = {}) {
      const out: Recovered[] = [];
      for (const found of await ctx.journal.unfinished(scopeOf(t.apiBase))) {
        out.push(
          await exclusive(ctx, recordKey(found.apiBase, found.idempotencyKey), () =>
            recoverOne(ctx, t, found, options),
          ),
        );
      }
      return out;
    },
  };
}

export type { Proof };
