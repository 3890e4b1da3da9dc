/**
 * Values a resource (provider/resources/, in the program) and its implementation (provider/impl/, in the
 * provider process) share. Both import them from here; neither imports the other (a resource reaches its
 * implementation only through the stub's `require("pulumi-run402/provider/impl")`).
 */

import type { TierName } from "../schema/app.types.js";

/** A Run402 tier name (the manifest schema's). */
export type { TierName };

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

/** What check decided for the tier, why, and the lease it saw on the server. */
export interface TierDecision {
  /** A paid action, `adopt` (an active lease of this tier, nothing to pay) or `none`. */
  action: "subscribe" | "renew" | "upgrade" | "downgrade" | "adopt" | "none";
  reason: string;
  leaseStartedAt: string | null;
  leaseExpiresAt: string | null;
  lifecycleState: string;
}

/** The payment that convergence needs, as planned during check (shown by preview). */
export interface PlannedPayment {
  action: "subscribe" | "renew" | "upgrade" | "downgrade";
  tier: TierName;
  amountUsd: string;
  rail: "x402" | "mpp";
  reason: string;
}
