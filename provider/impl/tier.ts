/** Tier: plans payments in check (read-only), pays them in create/update. */
import type * as pulumi from "@pulumi/pulumi";
import type { PlannedPayment, SettlementOutput, TierName } from "../resources/tier.js";
import { type Context, getContext } from "./context.js";
import { containsUnknown } from "./values.js";

const tiers: readonly TierName[] = ["prototype", "hobby", "team"];
const day = 24 * 60 * 60 * 1000;

export interface Inputs {
  tier: TierName;
  renewBeforeDays: number;
  autoRenew: boolean;
  resourceKey: string;
  plannedPayment: PlannedPayment | null;
}

export interface Outputs extends Inputs {
  wallet: string;
  leaseStartedAt: string | null;
  leaseExpiresAt: string | null;
  lifecycleState: string;
  lastSettlement: SettlementOutput | null;
}

type Action = "subscribe" | "renew" | "upgrade" | "downgrade" | "adopt" | "none";

interface Plan {
  action: Action;
  reason: string;
  /** Lease expiry the plan was made against: part of the purchase's idempotency intent. */
  baseExpiry: string | null;
  /** The status the plan was made from. */
  status: TierStatus;
}

type TierStatus = Awaited<ReturnType<Context["client"]["tiers"]["status"]>>;
type TierQuote = Awaited<ReturnType<Context["client"]["tiers"]["quote"]>>;

/** The lease fields of the outputs, as `status` reports them. */
function leaseOf(status: TierStatus): Pick<Outputs, "leaseStartedAt" | "leaseExpiresAt" | "lifecycleState"> {
  return {
    leaseStartedAt: status.lease_started_at ?? null,
    leaseExpiresAt: status.lease_expires_at ?? null,
    lifecycleState: status.organization_lifecycle_state ?? (status.active ? "active" : "past_due"),
  };
}

/** Decides what convergence needs, from the org's tier status on the server's clock. */
async function plan(ctx: Context, inputs: Inputs, creating: boolean): Promise<Plan> {
  const [status, now] = await Promise.all([ctx.client.tiers.status(), ctx.serverNow()]);
  const baseExpiry = status.lease_expires_at ?? null;
  const expires = baseExpiry ? Date.parse(baseExpiry) : Number.NaN;
  const current = status.tier as TierName | null;
  if (!current || !status.active || !(expires > now)) {
    const why = current ? `the ${current} lease lapsed at ${baseExpiry}` : "the organization holds no tier";
    return { action: "subscribe", reason: why, baseExpiry, status };
  }
  if (current === inputs.tier) {
    const left = (expires - now) / day;
    if (inputs.autoRenew && left <= inputs.renewBeforeDays) {
      return {
        action: "renew",
        reason: `the lease expires at ${baseExpiry}, within ${inputs.renewBeforeDays} days`,
        baseExpiry,
        status,
      };
    }
    return creating
      ? { action: "adopt", reason: `an active ${current} lease runs until ${baseExpiry}`, baseExpiry, status }
      : { action: "none", reason: "the lease is active", baseExpiry, status };
  }
  const up = tiers.indexOf(inputs.tier) > tiers.indexOf(current);
  return {
    action: up ? "upgrade" : "downgrade",
    reason: `the organization holds ${current}`,
    baseExpiry,
    status,
  };
}

function isPaid(action: Action): action is PlannedPayment["action"] {
  return action === "subscribe" || action === "renew" || action === "upgrade" || action === "downgrade";
}

function priceUsd(ctx: Context, quote: TierQuote, tier: TierName): string {
  const price = quote.tiers[tier]?.price;
  if (!price) throw new Error(`The Run402 API at ${ctx.config.apiBase} quoted no price for tier "${tier}".`);
  return price;
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
  async check(olds: Partial<Inputs>, news: Record<string, unknown>): Promise<pulumi.dynamic.CheckResult> {
    const failures = validate(news);
    if (failures.length > 0) return { failures };
    const ctx = await getContext();
    const inputs: Inputs = {
      tier: news.tier as TierName,
      renewBeforeDays: (news.renewBeforeDays as number | undefined) ?? ctx.config.renewBeforeDays,
      autoRenew: (news.autoRenew as boolean | undefined) ?? true,
      resourceKey: String(news.resourceKey),
      plannedPayment: null,
    };
    if (containsUnknown(inputs)) return { inputs };
    const quote = await ctx.client.tiers.quote();
    const leaseDays = quote.tiers[inputs.tier]?.lease_days;
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
    if (isPaid(planned.action)) {
      inputs.plannedPayment = {
        action: planned.action,
        tier: inputs.tier,
        amountUsd: priceUsd(ctx, quote, inputs.tier),
        rail: ctx.rail,
        reason: planned.reason,
      };
    }
    return { inputs };
  },

  async diff(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    const changed =
      olds.tier !== news.tier ||
      olds.renewBeforeDays !== news.renewBeforeDays ||
      olds.autoRenew !== news.autoRenew ||
      (news.plannedPayment !== null && !containsUnknown(news.plannedPayment));
    return { changes: changed, replaces: [], deleteBeforeReplace: false };
  },

  async create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult> {
    const outs = await converge(inputs, null);
    return { id: `tier:${outs.wallet.toLowerCase()}`, outs };
  },

  async update(_id: string, olds: Outputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult> {
    return { outs: await converge(news, olds) };
  },

  async read(id: string, props: Outputs): Promise<pulumi.dynamic.ReadResult> {
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
      plannedPayment: props.plannedPayment ?? null,
    };
    return { id, props: outs, inputs: { ...inputs } };
  },

  async delete(): Promise<void> {
    // Run402 has no cancel endpoint: the lease lapses at its expiry. Nothing is paid or changed.
  },
};

/** Brings the org's tier to `inputs`, paying only when the plan says so. */
async function converge(inputs: Inputs, previous: Outputs | null): Promise<Outputs> {
  const ctx = await getContext();
  const planned = await plan(ctx, inputs, previous === null);
  let lastSettlement = previous?.lastSettlement ?? null;
  let lease = leaseOf(planned.status);
  if (isPaid(planned.action)) {
    // Pay only what check planned (and preview showed), and never more than its amount: a payment
    // the plan did not show, or a changed action or price, stops here with nothing signed.
    const promised = inputs.plannedPayment;
    if (!promised || promised.action !== planned.action) {
      throw new Error(
        `The ${inputs.tier} tier now needs "${planned.action}" (${planned.reason}), which this run did not plan; nothing was paid. Run preview or up again.`,
      );
    }
    const amountUsd = priceUsd(ctx, await ctx.client.tiers.quote(), inputs.tier);
    if (Number(amountUsd) > Number(promised.amountUsd)) {
      throw new Error(
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
    if (settlement) {
      lastSettlement = {
        rail: settlement.rail,
        reference: settlement.reference,
        network: settlement.network,
        amountUsd: settlement.amountUsd,
        payer: settlement.payer,
        settledAt: settlement.settledAt,
      };
    }
    lease = {
      leaseStartedAt: result.lease_started_at,
      leaseExpiresAt: result.lease_expires_at,
      lifecycleState: "active",
    };
  }
  return { ...inputs, wallet: ctx.wallet, ...lease, lastSettlement };
}
