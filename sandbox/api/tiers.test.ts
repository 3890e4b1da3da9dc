import { describe, expect, test } from "vitest";
import type { Org } from "../state.js";
import { actionFor, applyPurchase, lifecycleOf, TIERS, termsOf } from "./tiers.js";

const DAY = 86_400_000;
const T0 = Date.parse("2026-01-01T00:00:00Z");
const org = (over: Partial<Org> = {}): Org => ({
  wallet: "0xabc",
  tier: "prototype",
  leaseStartedAt: T0,
  leaseExpiresAt: T0 + 7 * DAY,
  allowanceMicros: 0,
  ...over,
});

describe("lifecycleOf", () => {
  test("default: follows expiry through past_due, frozen, dormant, purged", () => {
    const exp = T0 + 7 * DAY;
    const at = (d: number) => lifecycleOf(org(), exp + d * DAY);
    expect(lifecycleOf(undefined, T0).state).toBeNull();
    expect(lifecycleOf(org(), T0 + DAY)).toEqual({ state: "active", enteredAt: T0, nextTransitionAt: exp });
    expect(at(0)).toEqual({ state: "past_due", enteredAt: exp, nextTransitionAt: exp + 14 * DAY });
    expect(at(14).state).toBe("frozen");
    expect(at(43.9).state).toBe("frozen");
    expect(at(44)).toEqual({
      state: "dormant",
      enteredAt: exp + 44 * DAY,
      nextTransitionAt: exp + 104 * DAY,
    });
    expect(at(104)).toEqual({ state: "purged", enteredAt: exp + 104 * DAY, nextTransitionAt: null });
  });
});

describe("applyPurchase", () => {
  test("behavior: subscribe when lapsed, renew stacks on the current expiry", () => {
    expect(actionFor(undefined, "hobby", T0)).toBe("subscribe");
    expect(actionFor(org(), "prototype", T0 + 8 * DAY)).toBe("subscribe");
    const renew = applyPurchase(org(), "prototype", T0 + DAY);
    expect(renew.action).toBe("renew");
    expect(renew.org.leaseExpiresAt).toBe(T0 + 14 * DAY);
    expect(renew.org.leaseStartedAt).toBe(T0);
  });

  test("behavior: upgrade and downgrade start at now and credit the unused lease", () => {
    const up = applyPurchase(org(), "hobby", T0 + 3.5 * DAY);
    expect(up).toMatchObject({ action: "upgrade", previousTier: "prototype" });
    expect(up.org).toMatchObject({ tier: "hobby", leaseStartedAt: T0 + 3.5 * DAY, allowanceMicros: 50_000 });
    expect(up.org.leaseExpiresAt).toBe(T0 + 33.5 * DAY);
    const down = applyPurchase(up.org, "prototype", T0 + 3.5 * DAY);
    expect(down.action).toBe("downgrade");
    expect(down.org.allowanceMicros).toBe(5_050_000);
  });
});

describe("termsOf", () => {
  test("behavior: a price the operator set replaces the catalog's, in both forms; other terms stay", () => {
    expect(termsOf("prototype", {})).toEqual(TIERS.prototype);
    expect(termsOf("prototype", { prototype: 200_000n })).toEqual({
      ...TIERS.prototype,
      price: "0.20",
      price_atomic: "200000",
    });
    expect(termsOf("hobby", { hobby: 5_123_456n })).toMatchObject({
      price: "5.123456",
      price_atomic: "5123456",
    });
    expect(termsOf("team", { prototype: 1n }).price).toBe("20.00");
  });
});
