/**
 * Tier: the Run402 subscription of the wallet's organization (one lease covers every project).
 *
 * create → GET /tiers/v1/status, then POST /tiers/v1/:tier (subscribe, paid) or adopt an active
 *          lease of the same tier without paying
 * update → POST /tiers/v1/:tier: renew (inside the renewal window), upgrade or downgrade (paid)
 * read   → GET /tiers/v1/status (lease, lifecycle, tier changed out of band)
 * delete → nothing: Run402 has no cancel endpoint, so the lease simply lapses at its expiry
 * check/diff → read-only: they plan the payment (`plannedPayment`) that preview shows; never pay
 */
import * as pulumi from "@pulumi/pulumi";
import { stubProvider } from "./stub.js";

/** A Run402 tier name. */
export type TierName = "prototype" | "hobby" | "team";

/** A settled payment as recorded on the resource. */
export interface SettlementOutput {
  /** The rail that settled it: x402, mpp, or allowance (prepaid credit, no on-chain payment). */
  rail: "x402" | "mpp" | "allowance";
  /** On-chain transaction hash; null for allowance settlements. */
  reference: string | null;
  /** CAIP-2 network, e.g. eip155:84532. */
  network: string | null;
  amountUsd: string;
  payer: string;
  settledAt: string;
}

/** The payment that convergence needs, as planned during check (shown by preview). */
export interface PlannedPayment {
  action: "subscribe" | "renew" | "upgrade" | "downgrade";
  tier: TierName;
  amountUsd: string;
  rail: "x402" | "mpp";
  reason: string;
}

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
  /** Renew the lease when it enters the renewal window. @default true */
  autoRenew?: pulumi.Input<boolean>;
}

const provider = stubProvider("tier");

/** The Run402 tier (and lease) of the wallet's organization. */
export class Tier extends pulumi.dynamic.Resource {
  /** The wallet (organization owner) holding the lease. */
  declare readonly wallet: pulumi.Output<string>;
  declare readonly tier: pulumi.Output<TierName>;
  declare readonly leaseStartedAt: pulumi.Output<string>;
  declare readonly leaseExpiresAt: pulumi.Output<string>;
  /** active, past_due, frozen, dormant or purged. */
  declare readonly lifecycleState: pulumi.Output<string>;
  /** How the most recent payment of this resource settled; null when nothing was paid (adopted). */
  declare readonly lastSettlement: pulumi.Output<SettlementOutput | null>;
  /** The payment the last check planned (what preview showed). */
  declare readonly plannedPayment: pulumi.Output<PlannedPayment | null>;

  constructor(name: string, args: TierArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      `${name}`,
      {
        ...args,
        resourceKey: `${pulumi.getProject()}/${pulumi.getStack()}/${name}`,
        wallet: undefined,
        leaseStartedAt: undefined,
        leaseExpiresAt: undefined,
        lifecycleState: undefined,
        lastSettlement: undefined,
        plannedPayment: undefined,
      },
      opts,
      "run402",
      "Tier",
    );
  }
}
