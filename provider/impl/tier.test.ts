import { describe, expect, test } from "vitest";
import { renewalHeld } from "./tier.js";

const day = 24 * 60 * 60 * 1000;
const paidAt = "2026-12-01T00:00:00.000Z";
const t0 = Date.parse(paidAt);

describe("renewalHeld", () => {
  test("behavior: a lease this Tier paid for is not renewed again before its period is through, whatever expiry the server reports", () => {
    // A server that keeps reporting the lease one day out: every round would renew.
    for (const after of [0.01, 1, 15, 27.9]) {
      expect(renewalHeld(paidAt, 30, 2, t0 + after * day), `${after} days`).toMatch(
        /not renewed again before 2026-12-29T00:00:00.000Z/,
      );
    }
  });

  test("default: once the paid lease reaches its renewal window, or without a settlement to judge by, the server's expiry decides", () => {
    expect(renewalHeld(paidAt, 30, 2, t0 + 28 * day)).toBeNull();
    expect(renewalHeld(paidAt, 30, 2, t0 + 40 * day)).toBeNull();
    expect(renewalHeld("garbled", 30, 2, t0)).toBeNull();
    expect(renewalHeld(paidAt, undefined, 2, t0)).toBeNull();
  });
});
