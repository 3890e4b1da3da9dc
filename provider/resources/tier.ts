/**
 * Tier: the Run402 subscription of the wallet's organization (one lease covers every project).
 *
 * create → GET /tiers/v1/status, then POST /tiers/v1/:tier (subscribe, paid) or adopt an active
 *          lease of the same tier without paying
 * update → POST /tiers/v1/:tier: renew (inside the renewal window), upgrade or downgrade (paid)
 * read   → GET /tiers/v1/status (lease, lifecycle, tier changed out of band)
 * delete → nothing: Run402 has no cancel endpoint, so the lease simply lapses at its expiry
 * check/diff → read-only: they plan the payment (`plannedPayment`) that preview shows, and say why
 *          (`plan`); never pay. A plan that finds another lease on the server than the recorded
 *          one updates the outputs without paying.
 */
import type * as pulumi from "@pulumi/pulumi";
import { createUrn } from "@pulumi/pulumi/resource.js";
import type { PlannedPayment, SettlementOutput, TierDecision, TierName } from "../types.js";
import { Run402Resource } from "./stub.js";

export type { PlannedPayment, SettlementOutput, TierDecision, TierName } from "../types.js";

interface Inputs {
  tier: TierName;
  renewBeforeDays?: number;
  autoRenew?: boolean;
}

/** Arguments of a Tier. */
export interface TierArgs {
  /** The tier to hold: prototype ($0.10 / 7 days), hobby ($5 / 30 days) or team ($20 / 30 days). */
  tier: pulumi.Input<Inputs["tier"]>;
  /** Renew when the lease expires within this many days. @default run402:renewBeforeDays, else 2 */
  renewBeforeDays?: pulumi.Input<number>;
  /**
   * Renew the lease when it enters the renewal window, and buy it back once it lapsed. With
   * `false`, an existing Tier never pays to extend or restart its lease (creating one still buys
   * the tier it declares, and changing `tier` still pays the upgrade or downgrade). @default true
   */
  autoRenew?: pulumi.Input<boolean>;
}

/** The Run402 tier (and lease) of the wallet's organization. */
export class Tier extends Run402Resource {
  /** The wallet (organization owner) holding the lease. */
  declare readonly wallet: pulumi.Output<string>;
  declare readonly tier: pulumi.Output<TierName>;
  declare readonly leaseStartedAt: pulumi.Output<string>;
  declare readonly leaseExpiresAt: pulumi.Output<string>;
  /** active, past_due, frozen, dormant or purged. */
  declare readonly lifecycleState: pulumi.Output<string>;
  /** How the most recent payment of this resource settled; null when nothing was paid (adopted). */
  declare readonly lastSettlement: pulumi.Output<SettlementOutput | null>;
  /** The payment planned and not yet made (what preview shows); null once paid or when none is due. */
  declare readonly plannedPayment: pulumi.Output<PlannedPayment | null>;
  /** What the last check or update decided and why (e.g. why nothing was paid). */
  declare readonly plan: pulumi.Output<TierDecision>;

  constructor(name: string, args: TierArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      "tier",
      "Tier",
      name,
      {
        ...args,
        // The URN: progress lines are placed on this resource's row.
        resourceKey: createUrn(name, "pulumi-nodejs:dynamic/run402:Tier", opts?.parent),
        wallet: undefined,
        leaseStartedAt: undefined,
        leaseExpiresAt: undefined,
        lifecycleState: undefined,
        lastSettlement: undefined,
        plan: undefined,
        plannedPayment: undefined,
      },
      opts,
    );
  }
}
