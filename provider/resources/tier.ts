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
 *
 * Its arguments and outputs are described in provider/shapes.ts (`tierShape`).
 */
import type * as pulumi from "@pulumi/pulumi";
import { createUrn } from "@pulumi/pulumi/resource.js";
import { tierShape } from "../shapes.js";
import { type DeclaredOutputs, type InputArgs, Run402Resource } from "./stub.js";

export type { PlannedPayment, SettlementOutput, TierDecision, TierName } from "../types.js";

/**
 * Arguments of a Tier: `tier` (prototype $0.10 / 7 days, hobby $5 / 30 days, team $20 / 30 days),
 * `renewBeforeDays` (default run402:renewBeforeDays, else 2), `autoRenew` (default true).
 */
export type TierArgs = InputArgs<typeof tierShape>;

/** The Run402 tier (and lease) of the wallet's organization; its outputs as `tierShape` declares them. */
export interface Tier extends DeclaredOutputs<typeof tierShape> {}

/** The Run402 tier (and lease) of the wallet's organization. */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the interface declares the outputs Pulumi's CustomResource sets on the instance
export class Tier extends Run402Resource {
  constructor(name: string, args: TierArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      tierShape,
      name,
      {
        ...args,
        // The URN: progress lines are placed on this resource's row.
        resourceKey: createUrn(name, "pulumi-nodejs:dynamic/run402:Tier", opts?.parent),
      },
      opts,
    );
  }
}
