import { describe, expect, test } from "vitest";
import * as Receipt from "./Receipt.js";

// Captured from a real @x402 v2 settlement and a real mppx 0.11 tempo charge (research/x402.md §1.3, mpp.md §1.4).
const x402Standard =
  "eyJzdWNjZXNzIjp0cnVlLCJ0cmFuc2FjdGlvbiI6IjB4YjRlNjNmN2I0NjUwOGU0NDljNzkwYWQwNDkwODUzOWEwOWIxYTdhZGQ5YjkzMTNlNWJhZTUwOTU4ZGY3NGE5MiIsIm5ldHdvcmsiOiJlaXAxNTU6ODQ1MzIiLCJwYXllciI6IjB4NzA5OTc5NzBDNTE4MTJkYzNBMDEwQzdkMDFiNTBlMGQxN2RjNzlDOCJ9";
const mppUrl =
  "eyJtZXRob2QiOiJ0ZW1wbyIsInN0YXR1cyI6InN1Y2Nlc3MiLCJ0aW1lc3RhbXAiOiIyMDI2LTExLTI0VDA2OjEyOjQ4LjUzM1oiLCJyZWZlcmVuY2UiOiIweDIwMjM1ODdhZGE5MzliODdhZjgxMzExNmQwMzkyYzY5OGMwZDg1YWEwNzUxYzZiNmRiZjYwMTE0ZWU1ZWZlZjQifQ";
const toUrl = (s: string) => s.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const toStandard = (s: string) => {
  const b = s.replace(/-/g, "+").replace(/_/g, "/");
  return b + "=".repeat((4 - (b.length % 4)) % 4);
};

describe("Receipt.fromX402Header", () => {
  test("default: standard base64", () => {
    expect(Receipt.fromX402Header(x402Standard)).toMatchInlineSnapshot(`
      {
        "network": "eip155:84532",
        "payer": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "success": true,
        "transaction": "0xb4e63f7b46508e449c790ad04908539a09b1a7add9b9313e5bae50958df74a92",
      }
    `);
  });
  test("behavior: base64url tolerated", () => {
    expect(Receipt.fromX402Header(toUrl(x402Standard))).toEqual(Receipt.fromX402Header(x402Standard));
  });
  test("error: not a receipt", () => {
    expect(() => Receipt.fromX402Header(Buffer.from("{}").toString("base64"))).toThrow();
  });
});

describe("Receipt.fromMppHeader", () => {
  test("default: base64url without padding", () => {
    expect(Receipt.fromMppHeader(mppUrl)).toMatchInlineSnapshot(`
      {
        "method": "tempo",
        "reference": "0x2023587ada939b87af813116d0392c698c0d85aa0751c6b6dbf60114ee5efef4",
        "status": "success",
        "timestamp": "2026-11-24T06:12:48.533Z",
      }
    `);
  });
  test("behavior: standard base64 tolerated", () => {
    expect(Receipt.fromMppHeader(toStandard(mppUrl))).toEqual(Receipt.fromMppHeader(mppUrl));
  });
});

describe("Receipt.fromHeaders", () => {
  test("default: rail header names the receipt", () => {
    const h = new Headers({ "x-run402-settlement-rail": "mpp", "payment-receipt": mppUrl });
    expect(Receipt.fromHeaders(h)?.rail).toBe("mpp");
  });
  test("behavior: rail inferred from the receipt when the rail header is absent", () => {
    expect(Receipt.fromHeaders(new Headers({ "payment-response": x402Standard }))?.rail).toBe("x402");
    expect(Receipt.fromHeaders(new Headers({ "payment-receipt": mppUrl }))?.rail).toBe("mpp");
    expect(Receipt.fromHeaders(new Headers({ "x-payment-response": x402Standard }))?.rail).toBe("x402");
  });
  test("behavior: allowance has no receipt", () => {
    expect(Receipt.fromHeaders(new Headers({ "x-run402-settlement-rail": "allowance" }))).toEqual({
      rail: "allowance",
    });
  });
  test("behavior: nothing settled", () => {
    expect(Receipt.fromHeaders(new Headers())).toBeNull();
  });
});

describe("Receipt amounts", () => {
  test("default: atomic ↔ USD", () => {
    expect(Receipt.atomicToUsd(100000n)).toBe("0.10");
    expect(Receipt.atomicToUsd(30000n)).toBe("0.03");
    expect(Receipt.atomicToUsd(20000000n)).toBe("20.00");
    expect(Receipt.atomicToUsd(1n)).toBe("0.000001");
    expect(Receipt.usdToAtomic(0.1)).toBe(100000n);
    expect(Receipt.usdToAtomic("5")).toBe(5000000n);
    expect(Receipt.usdToAtomic("0.0300009")).toBe(30000n);
  });
});
