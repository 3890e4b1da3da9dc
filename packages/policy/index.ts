/**
 * @pulumi-run402/policy: a CrossGuard policy pack over Run402 resources, for any Pulumi program that
 * declares them (the dynamic resources of pulumi-run402 and the native `run402:index:*` ones).
 *
 *   pulumi preview --policy-pack node_modules/@pulumi-run402/policy --policy-pack-config policy.json
 *
 * Resource policies run on each Tier before its step (so a mandatory violation stops the payment,
 * in preview and in `up --skip-preview` alike); the run total is a stack policy, a second check that
 * alone cannot stop a payment (stack policies run after the resources). The stack's name and
 * config reach the pack through the language host (PULUMI_NODEJS_STACK, PULUMI_CONFIG).
 */
import { type EnforcementLevel, PolicyPack, type ResourceValidationPolicy } from "@pulumi/policy";
import {
  type AutoRenewConfig,
  allowedNetworks,
  allowedRails,
  allowedTiers,
  autoRenew,
  type CeilingConfig,
  type LeaseCostConfig,
  leaseCost,
  type NetworksConfig,
  paymentCeiling,
  type RailsConfig,
  run402Kind,
  runCeiling,
  type StackContext,
  type TiersConfig,
} from "./rules";

/** The stack the engine runs the pack for, from what the language host passes. */
export function stackContext(env: NodeJS.ProcessEnv = process.env): StackContext {
  let config: Record<string, string> = {};
  try {
    const parsed: unknown = JSON.parse(env.PULUMI_CONFIG ?? "{}");
    if (parsed && typeof parsed === "object") {
      config = Object.fromEntries(
        Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
      );
    }
  } catch {
    // No readable config: the rules see none.
  }
  return { stack: env.PULUMI_NODEJS_STACK ?? "", config };
}

const usdSchema = { type: ["number", "string"], pattern: "^\\d+(\\.\\d+)?$", minimum: 0 } as const;
const names = { type: "array", items: { type: "string" } } as const;

/** A policy over each Tier, with `defaults` under the pack config's values. */
function tierPolicy<C extends object>(
  name: string,
  description: string,
  defaults: C,
  properties: Record<string, object>,
  rule: (name: string, props: Record<string, unknown>, stack: StackContext, config: C) => string[],
): ResourceValidationPolicy {
  return {
    name,
    description,
    enforcementLevel: "mandatory",
    configSchema: { properties: properties as never },
    validateResource: (args, reportViolation) => {
      if (run402Kind(args.type, args.props) !== "Tier") return;
      const config = { ...defaults, ...args.getConfig<C>() };
      for (const message of rule(args.name, args.props, stackContext(), config)) {
        reportViolation(message, args.urn);
      }
    },
  };
}

export const policies = [
  tierPolicy<CeilingConfig>(
    "run402-payment-ceiling",
    "A Tier's planned payment may not exceed maxUsd (checked before the Tier's step: nothing is paid).",
    { maxUsd: 5 },
    { maxUsd: usdSchema },
    (name, props, _stack, config) => paymentCeiling(name, props, config),
  ),
  tierPolicy<TiersConfig>(
    "run402-allowed-tiers",
    "Tiers may declare only the listed tiers.",
    {},
    { tiers: { type: "array", items: { enum: ["prototype", "hobby", "team"] } } },
    (name, props, _stack, config) => allowedTiers(name, props, config),
  ),
  tierPolicy<RailsConfig>(
    "run402-allowed-rails",
    "Payments only on the listed rails (x402, mpp).",
    {},
    { rails: { type: "array", items: { enum: ["x402", "mpp"] } } },
    (name, props, stack, config) => allowedRails(name, props, stack, config),
  ),
  tierPolicy<NetworksConfig>(
    "run402-allowed-networks",
    "A stack's run402:allowedNetworks may name a mainnet only in the stacks mainnetStacks names, and only the listed networks.",
    {},
    { networks: names, mainnetStacks: names, mainnets: names },
    (name, _props, stack, config) => allowedNetworks(name, stack, config),
  ),
  tierPolicy<AutoRenewConfig>(
    "run402-auto-renew",
    "autoRenew required (requiredIn) or forbidden (forbiddenIn) per stack.",
    {},
    { requiredIn: names, forbiddenIn: names },
    (name, props, stack, config) => autoRenew(name, props, stack, config),
  ),
  tierPolicy<LeaseCostConfig>(
    "run402-lease-cost",
    "What a Tier's leases cost per period (periodDays) may not exceed maxUsd; reported against the wallet budget.",
    {},
    {
      maxUsd: usdSchema,
      periodDays: { type: "number", minimum: 1 },
      prices: { type: "object", additionalProperties: usdSchema },
      leaseDays: { type: "object", additionalProperties: { type: "number", minimum: 1 } },
    },
    (name, props, stack, config) => leaseCost(name, props, stack, config),
  ),
];

/** The stack total: a second check after the resources (it cannot stop a payment alone). */
const runTotal = {
  name: "run402-run-ceiling",
  description: "What all Tiers of a run plan to pay together may not exceed maxUsd.",
  enforcementLevel: "mandatory" as EnforcementLevel,
  configSchema: { properties: { maxUsd: usdSchema as never } },
  validateStack: (
    args: {
      resources: { type: string; name: string; urn: string; props: Record<string, unknown> }[];
      getConfig<T extends object>(): T;
    },
    reportViolation: (message: string) => void,
  ) => {
    const config = { maxUsd: 25, ...args.getConfig<CeilingConfig>() };
    const tiers = args.resources.filter((r) => run402Kind(r.type, r.props) === "Tier");
    for (const message of runCeiling(tiers, config)) reportViolation(message);
  },
};

new PolicyPack("run402", {
  description:
    "Run402 spend governance: ceilings, tiers, rails, networks, autoRenew and lease cost per period.",
  enforcementLevel: "mandatory",
  policies: [...policies, runTotal],
});
