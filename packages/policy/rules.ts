/**
 * What the policies decide, as pure functions over a resource's properties, the stack's name and
 * config, and a policy's config (index.ts wires them into the PolicyPack). No I/O here.
 */

/** The Run402 resource kinds. */
export type Run402Kind = "Tier" | "Project" | "Deployment" | "Secret";

const stubKinds: Record<string, Run402Kind> = {
  tier: "Tier",
  project: "Project",
  deployment: "Deployment",
  secret: "Secret",
};

/**
 * Which Run402 resource this is, if any.
 *
 * - Native provider: the token `run402:<module>:<Kind>` (`run402:index:Tier`).
 * - Dynamic resources: a `pulumi-nodejs:dynamic…` type whose `__provider` input is the
 *   pulumi-run402 stub (provider/resources/stub.ts: its text requires `pulumi-run402/provider/impl`
 *   and delegates to `handlers["<kind>"]`). The stub names the kind whatever the type token says;
 *   the token `pulumi-nodejs:dynamic/run402:<Kind>` alone is the fallback when the stub is not shown.
 */
export function run402Kind(type: string, props: Record<string, unknown>): Run402Kind | undefined {
  const native = /^run402:[^:]*:(Tier|Project|Deployment|Secret)$/.exec(type);
  if (native) return native[1] as Run402Kind;
  if (!type.startsWith("pulumi-nodejs:dynamic")) return undefined;
  const stub = props.__provider;
  if (typeof stub === "string" && stub.includes('require("pulumi-run402/provider/impl")')) {
    const handler = /handlers\["(tier|project|deployment|secret)"\]/.exec(stub);
    if (handler) return stubKinds[handler[1]!];
  }
  const dynamic = /^pulumi-nodejs:dynamic\/run402:(Tier|Project|Deployment|Secret)$/.exec(type);
  return dynamic ? (dynamic[1] as Run402Kind) : undefined;
}

/** A payment a Tier's check planned (provider/types.ts `PlannedPayment`). */
export interface PlannedPayment {
  action: string;
  tier: string;
  amountUsd: string;
  rail: string;
  reason?: string;
}

/** The planned payment of a Tier's properties, or null when none is planned (or it is not known yet). */
export function plannedPayment(props: Record<string, unknown>): PlannedPayment | null {
  const p = props.plannedPayment;
  if (!p || typeof p !== "object") return null;
  const { action, tier, amountUsd, rail } = p as Record<string, unknown>;
  if (typeof amountUsd !== "string" || typeof rail !== "string") return null;
  return {
    action: String(action),
    tier: String(tier),
    amountUsd,
    rail,
    reason: String((p as PlannedPayment).reason ?? ""),
  };
}

/** A USD amount (decimal string or number) in micro-dollars; rounds up past 6 decimals. */
export function micros(value: unknown): bigint | undefined {
  const text = typeof value === "number" && Number.isFinite(value) ? value.toFixed(7) : value;
  if (typeof text !== "string") return undefined;
  const m = /^\s*(\d+)(?:\.(\d*))?\s*$/.exec(text);
  if (!m) return undefined;
  const fraction = (m[2] ?? "").padEnd(7, "0");
  const whole = BigInt(m[1]!) * 1_000_000n + BigInt(fraction.slice(0, 6));
  return /[1-9]/.test(fraction.slice(6)) ? whole + 1n : whole;
}

/** Micro-dollars as "$5", "$0.10", "$0.000001". */
export function usd(amount: bigint): string {
  const whole = amount / 1_000_000n;
  const fraction = (amount % 1_000_000n).toString().padStart(6, "0").replace(/0+$/, "");
  return `$${whole}${fraction === "" ? "" : `.${fraction.padEnd(2, "0")}`}`;
}

/** Whether the stack name matches one of the patterns (`*` matches any run of characters). */
export function stackMatches(stack: string, patterns: readonly string[] | undefined): boolean {
  return (patterns ?? []).some((pattern) => {
    const re = new RegExp(`^${pattern.split("*").map(escapeRegExp).join(".*")}$`);
    return re.test(stack);
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}

/** The stack the pack runs for: its name and its config (`run402:*` keys, as strings). */
export interface StackContext {
  stack: string;
  config: Record<string, string>;
}

/** Published Run402 terms, used where a plan does not carry the price (README, "Tier"). */
export const defaultPrices: Record<string, string> = { prototype: "0.10", hobby: "5", team: "20" };
export const defaultLeaseDays: Record<string, number> = { prototype: 7, hobby: 30, team: 30 };

/** Test networks per rail: what a stack pays on when its config names no network. */
export const testnets: Record<string, string[]> = { x402: ["eip155:84532"], mpp: ["eip155:42431"] };
/** Mainnets unless the pack's config lists others. */
export const defaultMainnets = ["eip155:8453", "eip155:4217"];

/** `84532` / `eip155:84532` → `eip155:84532`. */
export function caip2(network: string): string {
  const n = network.trim();
  return /^\d+$/.test(n) ? `eip155:${n}` : n.toLowerCase();
}

// --- Per-resource rules (each returns the violations' messages; empty = compliant) ---

export interface CeilingConfig {
  maxUsd?: number | string;
}

/** A Tier's planned payment above the ceiling. */
export function paymentCeiling(
  name: string,
  props: Record<string, unknown>,
  config: CeilingConfig,
): string[] {
  const planned = plannedPayment(props);
  const max = micros(config.maxUsd);
  const amount = planned ? micros(planned.amountUsd) : undefined;
  if (!planned || max === undefined || amount === undefined || amount <= max) return [];
  return [
    `Tier "${name}" plans to pay ${usd(amount)} (${planned.action} ${planned.tier} on ${planned.rail}), above the ${usd(max)} this pack allows per payment; nothing is paid. Raise maxUsd in the policy pack config or choose a cheaper tier.`,
  ];
}

export interface TiersConfig {
  tiers?: string[];
}

/** A Tier that declares a tier outside the allowed list. */
export function allowedTiers(name: string, props: Record<string, unknown>, config: TiersConfig): string[] {
  const tier = props.tier;
  if (typeof tier !== "string" || !config.tiers || config.tiers.includes(tier)) return [];
  return [`Tier "${name}" declares tier "${tier}"; this pack allows ${list(config.tiers)}.`];
}

export interface RailsConfig {
  rails?: string[];
}

/** A planned payment on a rail outside the allowed list (or a stack whose config names such a rail). */
export function allowedRails(
  name: string,
  props: Record<string, unknown>,
  stack: StackContext,
  config: RailsConfig,
): string[] {
  if (!config.rails) return [];
  const rails = new Set<string>();
  const planned = plannedPayment(props);
  if (planned) rails.add(planned.rail);
  for (const key of ["run402:rail", "run402:fallbackRail"]) {
    const rail = stack.config[key];
    if (rail) rails.add(rail);
  }
  const refused = [...rails].filter((rail) => !config.rails!.includes(rail));
  if (refused.length === 0) return [];
  return [
    `Tier "${name}" would pay on ${list(refused)} (${planned ? "its planned payment" : "the stack's run402:rail / run402:fallbackRail"}); this pack allows ${list(config.rails)}.`,
  ];
}

export interface NetworksConfig {
  /** Networks any stack may pay on (CAIP-2 or chain ids); unset = any. */
  networks?: string[];
  /** Stacks (names, `*` wildcards) that may pay on a mainnet. */
  mainnetStacks?: string[];
  /** What counts as a mainnet. @default eip155:8453 (Base), eip155:4217 (Tempo) */
  mainnets?: string[];
}

/**
 * The networks a stack may pay on, as its config names them: `run402:allowedNetworks`
 * (comma-separated), else the test networks of its rails.
 */
export function stackNetworks(stack: StackContext): string[] {
  const named = stack.config["run402:allowedNetworks"];
  if (named?.trim()) return named.split(",").map(caip2).filter(Boolean);
  const rails = [stack.config["run402:rail"] ?? "x402", stack.config["run402:fallbackRail"]].filter(
    (r): r is string => !!r,
  );
  return [...new Set(rails.flatMap((rail) => testnets[rail] ?? []))];
}

/** A stack whose config names a mainnet while the pack does not name the stack, or a network not allowed. */
export function allowedNetworks(name: string, stack: StackContext, config: NetworksConfig): string[] {
  const networks = stackNetworks(stack);
  const mainnets = (config.mainnets ?? defaultMainnets).map(caip2);
  const violations: string[] = [];
  const onMainnet = networks.filter((n) => mainnets.includes(n));
  if (onMainnet.length > 0 && !stackMatches(stack.stack, config.mainnetStacks)) {
    violations.push(
      `Stack "${stack.stack}" names mainnet ${list(onMainnet)} (run402:allowedNetworks) for Tier "${name}", but this pack allows mainnet only in ${config.mainnetStacks?.length ? `stacks ${list(config.mainnetStacks)}` : "no stack"}; nothing is paid. Name test networks in run402:allowedNetworks, or add the stack to mainnetStacks.`,
    );
  }
  if (config.networks) {
    const allowed = config.networks.map(caip2);
    const refused = networks.filter((n) => !allowed.includes(n));
    if (refused.length > 0) {
      violations.push(
        `Stack "${stack.stack}" may pay on ${list(refused)} (run402:allowedNetworks) for Tier "${name}"; this pack allows ${list(allowed)}.`,
      );
    }
  }
  return violations;
}

export interface AutoRenewConfig {
  /** Stacks (names, `*` wildcards) whose Tiers must renew automatically. */
  requiredIn?: string[];
  /** Stacks whose Tiers must not renew automatically. */
  forbiddenIn?: string[];
}

/** A Tier whose autoRenew is not what the pack requires for this stack. */
export function autoRenew(
  name: string,
  props: Record<string, unknown>,
  stack: StackContext,
  config: AutoRenewConfig,
): string[] {
  const value = props.autoRenew;
  if (value !== undefined && typeof value !== "boolean") return [];
  const on = value ?? true;
  if (!on && stackMatches(stack.stack, config.requiredIn)) {
    return [`Tier "${name}" has autoRenew false; stack "${stack.stack}" requires autoRenew: true.`];
  }
  if (on && stackMatches(stack.stack, config.forbiddenIn)) {
    return [
      `Tier "${name}" renews automatically (autoRenew ${value === undefined ? "defaults to true" : "is true"}); stack "${stack.stack}" forbids it: set autoRenew: false.`,
    ];
  }
  return [];
}

export interface LeaseCostConfig {
  /** Most a Tier's leases may cost within one period. */
  maxUsd?: number | string;
  /** @default 30 */
  periodDays?: number;
  /** Tier prices where a plan does not carry one. @default the published prices */
  prices?: Record<string, number | string>;
  /** Lease lengths. @default prototype 7, hobby 30, team 30 */
  leaseDays?: Record<string, number>;
}

/** What a Tier's leases cost within one period: its price per lease times the leases the period holds. */
export function leaseCostPerPeriod(
  props: Record<string, unknown>,
  config: LeaseCostConfig,
): { tier: string; perLease: bigint; leases: number; total: bigint; periodDays: number } | undefined {
  const tier = props.tier;
  if (typeof tier !== "string") return undefined;
  const planned = plannedPayment(props);
  const price = micros(
    planned && planned.tier === tier ? planned.amountUsd : (config.prices?.[tier] ?? defaultPrices[tier]),
  );
  const leaseDays = config.leaseDays?.[tier] ?? defaultLeaseDays[tier];
  if (price === undefined || !leaseDays) return undefined;
  const periodDays = config.periodDays ?? 30;
  // Without autoRenew a Tier pays for at most one lease in a period (its purchase).
  const leases = props.autoRenew === false ? 1 : Math.ceil(periodDays / leaseDays);
  return { tier, perLease: price, leases, total: price * BigInt(leases), periodDays };
}

/** A Tier whose leases cost more per period than the pack allows; reported against the wallet budget. */
export function leaseCost(
  name: string,
  props: Record<string, unknown>,
  stack: StackContext,
  config: LeaseCostConfig,
): string[] {
  const max = micros(config.maxUsd);
  const cost = leaseCostPerPeriod(props, config);
  if (max === undefined || !cost || cost.total <= max) return [];
  const budget = micros(stack.config["run402:budgetUsd"]);
  const against =
    budget === undefined
      ? " The stack's config sets no wallet budget (run402:budgetUsd)."
      : ` That is ${((Number(cost.total) / Number(budget)) * 100).toFixed(0)}% of the wallet budget run402:budgetUsd = ${usd(budget)}${stack.config["run402:budgetPeriod"] ? ` per ${stack.config["run402:budgetPeriod"]}` : ""}.`;
  return [
    `Tier "${name}" (${cost.tier}, ${usd(cost.perLease)} a lease) costs ${usd(cost.total)} per ${cost.periodDays} days (${cost.leases} lease${cost.leases === 1 ? "" : "s"}), above the ${usd(max)} this pack allows.${against}`,
  ];
}

// --- The stack rule ---

/** The total every Tier of the stack plans to pay, above the ceiling. */
export function runCeiling(
  tiers: { name: string; props: Record<string, unknown> }[],
  config: CeilingConfig,
): string[] {
  const max = micros(config.maxUsd);
  if (max === undefined) return [];
  let total = 0n;
  const parts: string[] = [];
  for (const { name, props } of tiers) {
    const planned = plannedPayment(props);
    const amount = planned ? micros(planned.amountUsd) : undefined;
    if (!amount) continue;
    total += amount;
    parts.push(`${name} ${usd(amount)}`);
  }
  if (total <= max) return [];
  return [
    `This run plans to pay ${usd(total)} in total (${parts.join(", ")}), above the ${usd(max)} this pack allows per run.`,
  ];
}

function list(items: readonly string[]): string {
  return items.map((i) => `"${i}"`).join(", ");
}
