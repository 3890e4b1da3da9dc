/** The tier catalog, the org lifecycle on the sandbox clock, and how a purchase changes a lease. */
import type { Org, TierName } from "../state.js";

/** One tier's terms. */
export interface TierTerms {
  price: string;
  price_atomic: string;
  lease_days: number;
  storage_mb: number;
  api_calls: number;
  max_functions: number;
  description: string;
}

/** Prices are atomic units with 6 decimals on both rails. */
export const TIERS: Record<TierName, TierTerms> = {
  prototype: {
    price: "0.10",
    price_atomic: "100000",
    lease_days: 7,
    storage_mb: 250,
    api_calls: 500_000,
    max_functions: 5,
    description: "Prototype: 7 days, 250 MB, 500K API calls, 5 functions",
  },
  hobby: {
    price: "5.00",
    price_atomic: "5000000",
    lease_days: 30,
    storage_mb: 1024,
    api_calls: 5_000_000,
    max_functions: 25,
    description: "Hobby: 30 days, 1 GB, 5M API calls, 25 functions",
  },
  team: {
    price: "20.00",
    price_atomic: "20000000",
    lease_days: 30,
    storage_mb: 10_240,
    api_calls: 50_000_000,
    max_functions: 100,
    description: "Team: 30 days, 10 GB, 50M API calls, 100 functions",
  },
};

const RANK: Record<TierName, number> = { prototype: 1, hobby: 2, team: 3 };
const DAY = 86_400_000;

/**
 * A tier's terms as Run402 quotes them (`GET /tiers/v1`): the price as a `$`-prefixed decimal, no
 * atomic amount (kychee-com/run402 sdk/src/namespaces/projects.types.ts `TierQuote`).
 */
export function quoteOf(terms: TierTerms): Record<string, unknown> {
  const { price_atomic: _atomic, price, ...rest } = terms;
  return { price: `$${price}`, ...rest };
}

/** The terms of `tier`, with its price as the operator set it (`POST /_sandbox/prices`), if it did. */
export function termsOf(tier: TierName, prices: Record<string, bigint>): TierTerms {
  const atomic = prices[tier];
  if (atomic === undefined) return TIERS[tier];
  const whole = atomic / 1_000_000n;
  const fraction = (atomic % 1_000_000n)
    .toString()
    .padStart(6, "0")
    .replace(/0{1,4}$/, "");
  return { ...TIERS[tier], price: `${whole}.${fraction}`, price_atomic: atomic.toString() };
}

/** Whether `name` is a tier. */
export function isTier(name: string): name is TierName {
  return Object.hasOwn(TIERS, name);
}

/** Org lifecycle states; null = the wallet never bought a tier. */
export type LifecycleState = "active" | "past_due" | "frozen" | "dormant" | "purged";

/** Where an org is in its lifecycle at `now`. */
export interface Lifecycle {
  state: LifecycleState | null;
  enteredAt: number | null;
  nextTransitionAt: number | null;
}

/** Days after lease expiry at which each grace state starts. */
export const GRACE = { past_due: 0, frozen: 14, dormant: 44, purged: 104 } as const;

/** The lifecycle of `org` at `now`, derived from its lease expiry alone (so any purchase reactivates). */
export function lifecycleOf(org: Org | undefined, now: number): Lifecycle {
  if (!org?.leaseExpiresAt) return { state: null, enteredAt: null, nextTransitionAt: null };
  const exp = org.leaseExpiresAt;
  if (now < exp) return { state: "active", enteredAt: org.leaseStartedAt, nextTransitionAt: exp };
  const at = (days: number) => exp + days * DAY;
  if (now < at(GRACE.frozen))
    return { state: "past_due", enteredAt: exp, nextTransitionAt: at(GRACE.frozen) };
  if (now < at(GRACE.dormant))
    return { state: "frozen", enteredAt: at(GRACE.frozen), nextTransitionAt: at(GRACE.dormant) };
  if (now < at(GRACE.purged))
    return { state: "dormant", enteredAt: at(GRACE.dormant), nextTransitionAt: at(GRACE.purged) };
  return { state: "purged", enteredAt: at(GRACE.purged), nextTransitionAt: null };
}

/** What a purchase does. */
export type TierAction = "subscribe" | "renew" | "upgrade" | "downgrade";

/** The action `POST /tiers/v1/:tier` takes for `org` at `now`. */
export function actionFor(org: Org | undefined, tier: TierName, now: number): TierAction {
  if (!org?.tier || !org.leaseExpiresAt || org.leaseExpiresAt <= now) return "subscribe";
  if (org.tier === tier) return "renew";
  return RANK[tier] > RANK[org.tier] ? "upgrade" : "downgrade";
}

/** The result of applying a purchase. */
export interface Purchase {
  action: TierAction;
  previousTier: TierName | null;
  org: Org;
}

/**
 * Applies a paid purchase to `org` (a new object; the caller stores it). Upgrades and downgrades
 * credit the unused part of the current lease, at the current tier's price per period, to the
 * allowance and start a fresh lease at now.
 */
export function applyPurchase(org: Org, tier: TierName, now: number): Purchase {
  const action = actionFor(org, tier, now);
  const period = TIERS[tier].lease_days * DAY;
  const next: Org = { ...org, tier };
  if (action === "renew") {
    next.leaseExpiresAt = (org.leaseExpiresAt ?? now) + period;
  } else {
    if ((action === "upgrade" || action === "downgrade") && org.tier && org.leaseExpiresAt) {
      const old = TIERS[org.tier];
      const remaining = Math.max(0, org.leaseExpiresAt - now);
      next.allowanceMicros += Math.floor((remaining / (old.lease_days * DAY)) * Number(old.price_atomic));
    }
    next.leaseStartedAt = now;
    next.leaseExpiresAt = now + period;
  }
  return { action, previousTier: org.tier, org: next };
}
