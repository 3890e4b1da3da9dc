import { describe, expect, test } from "vitest";
import { deriveKey } from "./idempotency.js";

describe("deriveKey", () => {
  // Keys derived by the implementation of 8c925c0 (before the canonical JSON became @run402/release's):
  // a key must never change across versions, or a retry after an upgrade would pay a second time.
  test("behavior: the same keys as every earlier version, for the same intent", () => {
    const body = { b: [3, { z: 1, a: "x" }], a: null, u: undefined, n: 0.5, s: 'é\u2028"' };
    expect(
      deriveKey({
        intent: "tier/0xabc/renew/hobby/2026-01-01",
        method: "post",
        route: "/tiers/v1/hobby",
        body: {},
      }),
    ).toBe("r402_a8da1a3e2c29f712e66fd31a914ba8f0d35b0d98374af192d997c0f9e62f4bb5");
    expect(
      deriveKey({ scope: "https://api.run402.com", intent: "i", method: "POST", route: "/r", body }),
    ).toBe("r402_dfe5ce2d3ce7807db7f74a1a41d0cb5cf27baa045e1d476bd25c83cced4a97e8");
    expect(deriveKey({ scope: "http://127.0.0.1:1", intent: "i", method: "POST", route: "/r" })).toBe(
      "r402_66addf0b9e05d4d3d4e21250b22eeb5c1abcaea21ea7ebe5509be7995292ee26",
    );
  });

  test("behavior: key order does not matter; any other difference does", () => {
    const key = (body: unknown, scope = "https://a") =>
      deriveKey({ scope, intent: "i", method: "POST", route: "/r", body });
    expect(key({ a: 1, b: { c: 2, d: 3 } })).toBe(key({ b: { d: 3, c: 2 }, a: 1 }));
    expect(key({ a: 1 })).not.toBe(key({ a: 2 }));
    expect(key({ a: 1 })).not.toBe(key({ a: 1 }, "https://b"));
  });
});
