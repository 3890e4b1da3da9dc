import { describe, expect, test } from "vitest";
import { forecastRenewals, type StateResource } from "./forecast.js";

const day = 24 * 60 * 60 * 1000;
const now = Date.parse("2026-12-06T12:00:00.000Z");
const terms = { prototype: { price: "0.10", lease_days: 7 }, hobby: { price: "5.00", lease_days: 30 } };
const tier = (name: string, outputs: Record<string, unknown>): StateResource => ({
  urn: `urn:pulumi:dev::p::pulumi-nodejs:dynamic/run402:Tier::${name}`,
  type: "pulumi-nodejs:dynamic/run402:Tier",
  outputs: { renewBeforeDays: 2, autoRenew: true, wallet: "0xabc", ...outputs },
});
const at = (ms: number) => new Date(ms).toISOString();

describe("forecastRenewals", () => {
  test("behavior: each renewal is due renewBeforeDays before expiry and extends the lease from its expiry", () => {
    const f = forecastRenewals(
      [tier("t", { tier: "prototype", leaseExpiresAt: at(now + 5 * day) })],
      terms,
      now,
      20,
      () => "x402",
    );
    // Due at +3d (expiry +5d), then +10d (expiry +12d), then +17d (expiry +19d); +24d is past 20 days.
    expect(f.renewals.map((r) => r.date)).toEqual([
      at(now + 3 * day),
      at(now + 10 * day),
      at(now + 17 * day),
    ]);
    expect(f.renewals.every((r) => r.action === "renew" && r.amountUsd === "0.10" && r.rail === "x402")).toBe(
      true,
    );
    expect(f.totalUsd).toBe("0.30");
    expect(f.byRail).toEqual({ x402: "0.30" });
  });

  test("behavior: due now, lapsed (bought back now), autoRenew off, and totals per rail", () => {
    const f = forecastRenewals(
      [
        tier("due", { tier: "hobby", leaseExpiresAt: at(now + day) }),
        tier("lapsed", { tier: "prototype", leaseExpiresAt: at(now - day), lastSettlement: { rail: "mpp" } }),
        tier("off", { tier: "hobby", leaseExpiresAt: at(now + day), autoRenew: false }),
      ],
      terms,
      now,
      3,
      (outputs) => (outputs.lastSettlement as { rail: string } | undefined)?.rail ?? "x402",
    );
    expect(f.renewals).toEqual([
      expect.objectContaining({
        resource: "due",
        date: at(now),
        action: "renew",
        amountUsd: "5.00",
        rail: "x402",
      }),
      expect.objectContaining({ resource: "lapsed", date: at(now), action: "subscribe", rail: "mpp" }),
    ]);
    expect(f.byRail).toEqual({ mpp: "0.10", x402: "5.00" });
    expect(f.totalUsd).toBe("5.10");
  });

  test("edge: no lease, an unpriced tier, or other resources forecast nothing", () => {
    const f = forecastRenewals(
      [
        tier("new", { tier: "prototype", leaseExpiresAt: null }),
        tier("odd", { tier: "enterprise", leaseExpiresAt: at(now + day) }),
        { urn: "urn:x::Project::p", type: "pulumi-nodejs:dynamic/run402:Project", outputs: {} },
      ],
      terms,
      now,
      30,
      () => "x402",
    );
    expect(f.renewals).toEqual([]);
    expect(f.totalUsd).toBe("0.00");
  });
});
