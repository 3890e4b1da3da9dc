/**
 * `run402-pulumi forecast`: every lease renewal the stack will pay within a horizon, from the stack's
 * state (each Tier's lease, renewal window and autoRenew) and the API's current price list, on the
 * server's clock. It pays nothing and writes nothing: one read of the state, one GET of the price list.
 *
 * The schedule is the provider's own rule (provider/impl/tier.ts `decide`): a Tier with autoRenew
 * renews once its lease expires within `renewBeforeDays`, and a renewal extends the lease by the
 * tier's lease length from its expiry; a lease that already lapsed is bought back (subscribe) at
 * the next run, for a lease from then. A Tier with autoRenew false renews nothing.
 */

import { BaseError } from "../core/errors.js";
import { byCodeUnits } from "../core/order.js";
import { atomicToUsd, parseUsdPrice, sumUsd, usdToAtomic } from "../sdk/money.js";
import type { ForecastReport, RenewalForecast } from "./report.js";
import { shortType, urnName } from "./urn.js";

const day = 24 * 60 * 60 * 1000;

/** Longest horizon `--days` takes. */
export const maxForecastDays = 3650;
/** The horizon `forecast` and `plan` use without `--days`. */
export const defaultForecastDays = 30;

/** A tier's current terms from the price list (`GET /tiers/v1`). */
export interface TierTerms {
  price: string;
  lease_days: number;
}

/** A resource of the exported state. */
export interface StateResource {
  urn: string;
  type: string;
  outputs?: Record<string, unknown>;
}

/** Whether a state resource is a Run402 Tier (dynamic `pulumi-nodejs:dynamic/run402:Tier` or native `run402:index:Tier`). */
export function isTier(type: string): boolean {
  return shortType(type) === "run402:Tier" || type === "run402:index:Tier";
}

/**
 * The renewals of `resources` within `days` of `now`, priced by `terms`. `railOf` names the rail a
 * Tier's renewal will pay on.
 */
export function forecastRenewals(
  resources: readonly StateResource[],
  terms: Record<string, TierTerms>,
  now: number,
  days: number,
  railOf: (outputs: Record<string, unknown>) => string,
): ForecastReport {
  const until = now + days * day;
  const renewals: RenewalForecast[] = [];
  for (const resource of resources) {
    if (!isTier(resource.type)) continue;
    const outputs = resource.outputs ?? {};
    const tier = typeof outputs.tier === "string" ? outputs.tier : undefined;
    if (!tier || outputs.autoRenew === false) continue;
    const lease = terms[tier];
    let expiry = Date.parse(String(outputs.leaseExpiresAt ?? ""));
    if (!lease || !Number.isFinite(expiry)) continue;
    const window = (typeof outputs.renewBeforeDays === "number" ? outputs.renewBeforeDays : 2) * day;
    const leaseMs = lease.lease_days * day;
    // A window as long as the lease would renew on every run; the provider refuses it, so does this.
    if (leaseMs <= window) continue;
    const base = {
      resource: urnName(resource.urn),
      wallet: typeof outputs.wallet === "string" ? outputs.wallet : null,
      tier,
      amountUsd: lease.price,
      rail: railOf(outputs),
    };
    for (;;) {
      let at: number;
      let action: RenewalForecast["action"];
      if (expiry <= now) {
        // Lapsed: bought back at the next run, a lease from then.
        at = now;
        action = "subscribe";
        expiry = now + leaseMs;
      } else {
        at = Math.max(now, expiry - window);
        action = "renew";
        expiry += leaseMs;
      }
      if (at > until) break;
      renewals.push({ ...base, date: new Date(at).toISOString(), action });
    }
  }
  renewals.sort((a, b) => byCodeUnits(a.date, b.date) || byCodeUnits(a.resource, b.resource));
  const byRail: Record<string, string> = {};
  for (const rail of [...new Set(renewals.map((r) => r.rail))].sort()) {
    byRail[rail] = sumUsd(renewals.filter((r) => r.rail === rail).map((r) => r.amountUsd));
  }
  return {
    days,
    from: new Date(now).toISOString(),
    until: new Date(until).toISOString(),
    renewals,
    totalUsd: atomicToUsd(renewals.reduce((sum, r) => sum + usdToAtomic(r.amountUsd), 0n)),
    byRail,
  };
}

/** The API's current price list and its clock (the response's Date), read without credentials. */
export async function priceList(apiBase: string): Promise<{ terms: Record<string, TierTerms>; now: number }> {
  const response = await fetch(`${apiBase}/tiers/v1`, {
    redirect: "manual",
    signal: AbortSignal.timeout(15_000),
    headers: { accept: "application/json" },
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new ForecastPriceError(`${apiBase}/tiers/v1 answered ${response.status}`);
  }
  const text = await response.text();
  if (text.length > 1024 * 1024) throw new ForecastPriceError(`${apiBase}/tiers/v1 answered more than 1 MiB`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ForecastPriceError(`${apiBase}/tiers/v1 answered something that is not JSON`);
  }
  const tiers = (body as { tiers?: unknown }).tiers;
  if (!tiers || typeof tiers !== "object") throw new ForecastPriceError(`${apiBase}/tiers/v1 lists no tiers`);
  const terms: Record<string, TierTerms> = {};
  for (const [name, value] of Object.entries(tiers as Record<string, unknown>)) {
    const { price, lease_days } = (value ?? {}) as { price?: unknown; lease_days?: unknown };
    // Run402 writes prices as "$0.10" (kychee-com/run402 TierQuote); the same strict reading as the SDK's.
    const usd = typeof price === "string" ? parseUsdPrice(price) : undefined;
    if (usd === undefined) continue;
    if (typeof lease_days !== "number" || !(lease_days > 0)) continue;
    terms[name] = { price: usd, lease_days };
  }
  const date = Date.parse(response.headers.get("date") ?? "");
  return { terms, now: Number.isFinite(date) ? date : Date.now() };
}

/** The price list could not be read (RUN402_PRICE_LIST_UNAVAILABLE). */
export class ForecastPriceError extends BaseError {
  constructor(message: string) {
    super(`${message}; the forecast needs the current price list.`, {
      code: "RUN402_PRICE_LIST_UNAVAILABLE",
    });
  }
}
