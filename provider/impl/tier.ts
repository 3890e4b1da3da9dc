/** Tier: plans payments in check (read-only), pays them in create/update. */
import type * as pulumi from "@pulumi/pulumi";
import type { Settlement } from "../../sdk/index.js";
import { howToSet } from "../settings.js";
import type { ImplInputs, ImplOutputs, tierShape } from "../shapes.js";
import type { PlannedPayment, SettlementOutput, TierDecision, TierName } from "../types.js";
import { type Context, getContext } from "./context.js";
import { ActionNotAllowedError, ConflictError } from "./errors.js";
import { log } from "./progress.js";
import { containsUnknown, recorded } from "./values.js";

const tiers: readonly TierName[] = ["prototype", "hobby", "team"];
const day = 24 * 60 * 60 * 1000;

/** What check returns and create/update receive (provider/shapes.ts). */
export type Inputs = ImplInputs<typeof tierShape>;

/** What create/update/read record (provider/shapes.ts). */
export type Outputs = ImplOutputs<typeof tierShape>;

type Action = TierDecision["action"];
type Lease = Pick<Outputs, "leaseStartedAt" | "leaseExpiresAt" | "lifecycleState">;

interface Plan {
  action: Action;
  reason: string;
  /** Lease expiry the plan was made against: part of the purchase's idempotency intent. */
  baseExpiry: string | null;
  /** The status the plan was made from, and the server's time then. */
  status: TierStatus;
  now: number;
}

type TierStatus = Awaited<ReturnType<Context["client"]["tiers"]["status"]>>;
type TierQuote = Awaited<ReturnType<Context["client"]["tiers"]["quote"]>>;

/** The lease fields of the outputs, as `status` reports them. */
function leaseOf(status: TierStatus): Lease {
  return {
    leaseStartedAt: status.lease_started_at ?? null,
    leaseExpiresAt: status.lease_expires_at ?? null,
    lifecycleState: status.organization_lifecycle_state ?? (status.active ? "active" : "past_due"),
  };
}

/** True when the recorded lease is not the one the server holds (a lost response, an outside change). */
function drifted(recorded: Partial<Lease>, server: Lease): boolean {
  return (
    (recorded.leaseExpiresAt ?? null) !== server.leaseExpiresAt ||
    (recorded.leaseStartedAt ?? null) !== server.leaseStartedAt ||
    (recorded.lifecycleState ?? null) !== server.lifecycleState
  );
}

/**
 * Decides what convergence needs, from the org's tier status on the server's clock. A Tier being
 * created buys what it declares; once it exists, only a changed `tier` or, with `autoRenew`, a due
 * or lapsed lease costs money: with `autoRenew: false` a lease is never extended or bought back.
 */
async function plan(ctx: Context, inputs: Inputs, creating: boolean): Promise<Plan> {
  // One read: the status response's Date is the server's clock.
  const status = await ctx.client.tiers.status();
  const now = await ctx.serverNow();
  return {
    ...decide(status, now, inputs, creating),
    baseExpiry: status.lease_expires_at ?? null,
    status,
    now,
  };
}

/**
 * The organization's lease as an existing Tier of `tier` would record it, for `pulumi import`
 * (provider/native/imports.ts): the tier held, its lease, and the decision an existing Tier's check
 * makes (the same action and reason), so an import followed by an up of the same declaration has
 * nothing to change. Undefined when the organization holds no tier.
 */
export async function liveTier(
  resourceKey: string,
): Promise<Pick<Outputs, "tier" | "renewBeforeDays" | "autoRenew" | "plan"> | undefined> {
  const ctx = await getContext();
  const status = await ctx.client.tiers.status();
  if (!status.tier) return undefined;
  const inputs: Inputs = {
    tier: status.tier as TierName,
    renewBeforeDays: ctx.config.renewBeforeDays,
    autoRenew: true,
    resourceKey,
    plan: null,
    plannedPayment: null,
  };
  const planned = decide(status, await ctx.serverNow(), inputs, false);
  return { ...inputs, plan: { action: planned.action, reason: planned.reason, ...leaseOf(status) } };
}

/** The decision for a tier status at `now` (server clock). */
function decide(
  status: TierStatus,
  now: number,
  inputs: Inputs,
  creating: boolean,
): { action: Action; reason: string } {
  const expiry = status.lease_expires_at ?? null;
  const expires = expiry ? Date.parse(expiry) : Number.NaN;
  const current = status.tier as TierName | null;
  const decision = (action: Action, reason: string) => ({ action, reason });
  if (!current || !status.active || !(expires > now)) {
    const why = current ? `the ${current} lease lapsed at ${expiry}` : "the organization holds no tier";
    if (!creating && !inputs.autoRenew)
      return decision("none", `${why}; autoRenew is off, so nothing is paid`);
    return decision("subscribe", why);
  }
  if (current === inputs.tier) {
    const left = (expires - now) / day;
    if (left <= inputs.renewBeforeDays) {
      const due = `the lease expires at ${expiry}, within ${inputs.renewBeforeDays} days`;
      if (inputs.autoRenew) return decision("renew", due);
      if (!creating) return decision("none", `${due}; autoRenew is off, so it is not renewed`);
    }
    return creating
      ? decision(
          "adopt",
          `the organization already holds an active ${current} lease until ${expiry}: adopted, nothing to pay`,
        )
      : decision("none", `the lease is active until ${expiry}`);
  }
  const up = tiers.indexOf(inputs.tier) > tiers.indexOf(current);
  return decision(up ? "upgrade" : "downgrade", `the organization holds ${current}`);
}

function isPaid(action: Action): action is PlannedPayment["action"] {
  return action === "subscribe" || action === "renew" || action === "upgrade" || action === "downgrade";
}

function priceUsd(ctx: Context, quote: TierQuote, tier: TierName): string {
  // Parsed strictly by getTierQuote ("$0.10" → "0.10"): never NaN, so never a cap that lets anything through.
  const price = quote.tiers[tier]?.price.usd;
  if (!price)
    throw new ConflictError(
      "PLAN_CHANGED",
      `The Run402 API at ${ctx.config.apiBase} quoted no price for tier "${tier}"; nothing was paid.`,
    );
  return price;
}

/** Why the spend policy would refuse this payment at `up` (so preview says it now), if it would. */
function refusal(ctx: Context, payment: PlannedPayment): string | undefined {
  const amount = Number(payment.amountUsd);
  const what = `The ${payment.tier} tier's ${payment.action} costs $${payment.amountUsd}`;
  if (amount > ctx.config.maxPaymentUsd) {
    return `[POLICY_MAX_PAYMENT] ${what}, above run402:maxPaymentUsd ($${ctx.config.maxPaymentUsd}); up would refuse to pay it. To allow it, raise it to at least ${payment.amountUsd}: ${howToSet("maxPaymentUsd", payment.amountUsd)}.`;
  }
  if (amount > ctx.config.maxSpendUsd) {
    return `[POLICY_MAX_SPEND] ${what}, above this run's cap run402:maxSpendUsd ($${ctx.config.maxSpendUsd}); up would refuse to pay it. To allow it, raise the cap to at least ${payment.amountUsd}: ${howToSet("maxSpendUsd", payment.amountUsd)}, or --max-spend ${payment.amountUsd}.`;
  }
  return undefined;
}

/** What a Tier's action buys, in words: "upgrade to team", "renew prototype". */
function purchase(action: PlannedPayment["action"], tier: TierName): string {
  if (action === "renew") return `renew ${tier}`;
  return `${action} to ${tier}`;
}

/**
 * The line `pulumi preview` and `pulumi up` print on the Tier's row by default (their
 * "Diagnostics"): what this Tier pays when applied, from the provider's own plan against the
 * server's state, or that it adopts a held lease and pays nothing. A converged Tier says nothing.
 */
function screenLine(ctx: Context, inputs: Inputs, planned: Plan): string | undefined {
  const payment = inputs.plannedPayment;
  if (payment) {
    const what = `$${payment.amountUsd} on ${payment.rail} to ${purchase(payment.action, payment.tier)} (${payment.reason})`;
    return ctx.config.allowedActions.includes(payment.action)
      ? `will pay ${what}`
      : `needs ${what}, which run402:allowedActions does not allow in this run: nothing will be paid`;
  }
  if (planned.action === "adopt") {
    return `adopts the organization's active ${inputs.tier} lease until ${planned.baseExpiry}: nothing to pay`;
  }
  return undefined;
}

function validate(news: Record<string, unknown>): pulumi.dynamic.CheckFailure[] {
  const failures: pulumi.dynamic.CheckFailure[] = [];
  if (!containsUnknown(news.tier) && !tiers.includes(news.tier as TierName)) {
    failures.push({
      property: "tier",
      reason: `tier must be one of ${tiers.join(", ")}; got ${JSON.stringify(news.tier)}`,
    });
  }
  const days = news.renewBeforeDays;
  if (days !== undefined && !containsUnknown(days) && (typeof days !== "number" || days < 0 || days > 365)) {
    failures.push({
      property: "renewBeforeDays",
      reason: "renewBeforeDays must be a number of days from 0 to 365",
    });
  }
  if (
    news.autoRenew !== undefined &&
    !containsUnknown(news.autoRenew) &&
    typeof news.autoRenew !== "boolean"
  ) {
    failures.push({ property: "autoRenew", reason: "autoRenew must be true or false" });
  }
  return failures;
}

/** Pulumi handlers for Tier. */
export const tier = {
  async check(
    olds: Partial<Inputs>,
    news: Record<string, unknown>,
  ): Promise<pulumi.dynamic.CheckResult<Inputs>> {
    const failures = validate(news);
    if (failures.length > 0) return { failures };
    const ctx = await getContext();
    const inputs: Inputs = {
      tier: news.tier as TierName,
      renewBeforeDays: (news.renewBeforeDays as number | undefined) ?? ctx.config.renewBeforeDays,
      autoRenew: (news.autoRenew as boolean | undefined) ?? true,
      resourceKey: String(news.resourceKey),
      plan: null,
      plannedPayment: null,
    };
    if (containsUnknown(inputs)) return { inputs };
    // The price list is read only when this check needs it: to judge a tier or renewal window it has
    // not judged before, or to price a payment. A converged stack's check reads the status alone.
    let quote: TierQuote | undefined;
    const quoted = async () => {
      quote ??= await ctx.client.tiers.quote();
      return quote;
    };
    const judged = olds.tier === inputs.tier && olds.renewBeforeDays === inputs.renewBeforeDays;
    const leaseDays = judged ? undefined : (await quoted()).tiers[inputs.tier]?.lease_days;
    if (leaseDays !== undefined && inputs.renewBeforeDays >= leaseDays) {
      // A window as long as the lease would renew on every run.
      return {
        failures: [
          {
            property: "renewBeforeDays",
            reason: `renewBeforeDays (${inputs.renewBeforeDays}) must be less than the ${inputs.tier} lease of ${leaseDays} days, or every run would renew`,
          },
        ],
      };
    }
    const planned = await plan(ctx, inputs, olds.tier === undefined);
    inputs.plan = { action: planned.action, reason: planned.reason, ...leaseOf(planned.status) };
    if (isPaid(planned.action)) {
      inputs.plannedPayment = {
        action: planned.action,
        tier: inputs.tier,
        amountUsd: priceUsd(ctx, await quoted(), inputs.tier),
        rail: ctx.rail,
        reason: planned.reason,
      };
      // Only what this run may pay is held to the caps; the rest fails in update, naming the action.
      const refused = ctx.config.allowedActions.includes(planned.action)
        ? refusal(ctx, inputs.plannedPayment)
        : undefined;
      if (refused) return { failures: [{ property: "tier", reason: refused }] };
    }
    const said = screenLine(ctx, inputs, planned);
    if (said) log(said, { ephemeral: false });
    return { inputs };
  },

  async diff(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    const seen = news.plan;
    const changed =
      olds.tier !== news.tier ||
      olds.renewBeforeDays !== news.renewBeforeDays ||
      olds.autoRenew !== news.autoRenew ||
      (news.plannedPayment !== null && !containsUnknown(news.plannedPayment)) ||
      // The server's lease is not the recorded one, or the decision changed (e.g. a lease that
      // lapsed with autoRenew off): update the outputs, paying nothing.
      (seen !== null &&
        seen !== undefined &&
        !containsUnknown(seen) &&
        (drifted(olds, seen) || olds.plan?.action !== seen.action || olds.plan?.reason !== seen.reason));
    return { changes: changed, replaces: [], deleteBeforeReplace: false };
  },

  async create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult<Outputs>> {
    const outs = await converge(inputs, null);
    return { id: `tier:${outs.wallet.toLowerCase()}`, outs };
  },

  async update(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult<Outputs>> {
    return { outs: await converge(news, olds) };
  },

  async read(id: string, state?: Outputs): Promise<pulumi.dynamic.ReadResult> {
    const props = recorded(state, id);
    const ctx = await getContext();
    const status = await ctx.client.tiers.status();
    // Nothing held any more (never bought, or purged): the resource is gone.
    if (!status.tier) return { id: "" };
    const outs: Outputs = { ...props, tier: status.tier as TierName, ...leaseOf(status) };
    const inputs: Inputs = {
      tier: outs.tier,
      renewBeforeDays: props.renewBeforeDays,
      autoRenew: props.autoRenew,
      resourceKey: props.resourceKey,
      plan: props.plan ?? null,
      plannedPayment: props.plannedPayment ?? null,
    };
    return { id, props: outs, inputs: { ...inputs } };
  },

  async delete(): Promise<void> {
    // Run402 has no cancel endpoint: the lease lapses at its expiry. Nothing is paid or changed.
  },
} satisfies pulumi.dynamic.ResourceProvider<Inputs, Outputs>;

/**
 * Why a renewal due by the server's expiry is held back, or null: this Tier paid at `settledAt` for
 * a lease of `leaseDays`, which an honest server would put in the renewal window only
 * `leaseDays - renewBeforeDays` days later. Until then, a due lease is the server's word against
 * the settlement, and nothing is paid.
 */
export function renewalHeld(
  settledAt: string,
  leaseDays: number | undefined,
  renewBeforeDays: number,
  now: number,
): string | null {
  const paid = Date.parse(settledAt);
  if (!Number.isFinite(paid) || !leaseDays) return null;
  const next = paid + Math.max(0, leaseDays - renewBeforeDays) * day;
  if (now >= next) return null;
  return `this Tier last paid at ${settledAt} for a ${leaseDays}-day lease; the server reports it due already, so it is not renewed again before ${new Date(next).toISOString()} (at most one renewal per lease period)`;
}

/** Brings the org's tier to `inputs`, paying only when the plan says so. */
async function converge(inputs: Inputs, previous: Outputs | null): Promise<Outputs> {
  const ctx = await getContext();
  let planned = await plan(ctx, inputs, previous === null);
  if (planned.action === "renew" && previous?.lastSettlement?.settledAt) {
    // At most one renewal per lease period, judged by this Tier's own last settlement: a server
    // that keeps reporting a lease about to expire (one day out, every round) is not paid each time.
    const leaseDays = (await ctx.client.tiers.quote()).tiers[inputs.tier]?.lease_days;
    const held = renewalHeld(
      previous.lastSettlement.settledAt,
      leaseDays,
      inputs.renewBeforeDays,
      planned.now,
    );
    if (held) planned = { ...planned, action: "none", reason: held };
  }
  let lastSettlement = previous?.lastSettlement ?? null;
  let status = planned.status;
  if (isPaid(planned.action)) {
    if (!ctx.config.allowedActions.includes(planned.action)) {
      throw new ActionNotAllowedError({
        action: planned.action,
        allowed: ctx.config.allowedActions,
        tier: inputs.tier,
        reason: planned.reason,
      });
    }
    // Pay only what check planned (and preview showed), and never more than its amount: a payment
    // the plan did not show, or a changed action or price, stops here with nothing signed.
    const promised = inputs.plannedPayment;
    if (!promised || promised.action !== planned.action) {
      throw new ConflictError(
        "PLAN_CHANGED",
        `The ${inputs.tier} tier now needs "${planned.action}" (${planned.reason}), which this run did not plan; nothing was paid. Run preview or up again.`,
      );
    }
    const amountUsd = priceUsd(ctx, await ctx.client.tiers.quote(), inputs.tier);
    if (Number(amountUsd) > Number(promised.amountUsd)) {
      throw new ConflictError(
        "PLAN_CHANGED",
        `The ${inputs.tier} tier now costs $${amountUsd}, more than the $${promised.amountUsd} planned; nothing was paid. Run preview again.`,
      );
    }
    // The lease belongs to the wallet's organization, not to this resource: two stacks (or two
    // Tiers) extending the same lease share one intent, so only one of them can pay for it.
    const intent = [
      "tier",
      ctx.wallet.toLowerCase(),
      planned.action,
      inputs.tier,
      planned.baseExpiry ?? "none",
    ].join("/");
    const { result, settlement } = await ctx.client.tiers.set({
      tier: inputs.tier,
      intent,
      maxPaymentUsd: Number(promised.amountUsd),
    });
    if (settlement) lastSettlement = settlementOutput(settlement);
    status = {
      ...status,
      tier: inputs.tier,
      active: true,
      lease_started_at: result.lease_started_at,
      lease_expires_at: result.lease_expires_at,
      organization_lifecycle_state: "active",
    };
  } else if (previous === null || drifted(previous, leaseOf(status))) {
    // The server holds another lease than the state (a purchase whose response was lost, or a
    // change made elsewhere), or this new Tier adopts the organization's lease. Record the truth,
    // paying nothing, and, when the lease moved on (a purchase happened), the settlement recovery
    // finds for this organization's tier: a purchase another run (another runner, killed with its
    // credential out) left pending is resolved here, since no later purchase shares its intent.
    const recorded = previous ? Date.parse(previous.leaseExpiresAt ?? "") : Number.NEGATIVE_INFINITY;
    const server = Date.parse(status.lease_expires_at ?? "");
    const found =
      server > recorded ? await ctx.recoveredSettlement(`tier/${ctx.wallet.toLowerCase()}/`) : null;
    if (found) lastSettlement = settlementOutput(found);
  }
  const lease = leaseOf(status);
  return {
    ...inputs,
    // What the next plan of this (now existing) tier decides, unless the clock moves on: so a
    // converged stack has nothing to change.
    plan: { ...decide(status, planned.now, inputs, false), ...lease },
    // Paid (or nothing to pay): no payment is planned any more.
    plannedPayment: null,
    wallet: ctx.wallet,
    ...lease,
    lastSettlement,
  };
}

function settlementOutput(settlement: Settlement): SettlementOutput {
  return {
    rail: settlement.rail as SettlementOutput["rail"],
    reference: settlement.reference,
    network: settlement.network,
    amountUsd: settlement.amountUsd,
    payer: settlement.payer,
    settledAt: settlement.settledAt,
  };
}
