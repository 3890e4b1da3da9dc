import { describe, expect, test } from "vitest";
import type { Run402Event } from "../../sdk/index.js";
import { progressLine } from "./progress.js";

const settlement = {
  rail: "x402",
  reference: "0xabc",
  network: "eip155:84532",
  asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
  amountAtomic: "100000",
  amountUsd: "0.10",
  payer: "0x1",
  recipient: "0x2",
  settledAt: "2026-01-01T00:00:00Z",
  idempotencyKey: "k",
} as unknown as Extract<Run402Event, { type: "payment.settled" }>["settlement"];

describe("progressLine", () => {
  test("default", () => {
    const url = "http://127.0.0.1:1/tiers/v1/prototype";
    expect(
      progressLine({
        type: "payment.signing",
        url,
        rail: "x402",
        network: "eip155:84532",
        amountUsd: "0.10",
        recipient: "0x2",
        idempotencyKey: "k",
      }),
    ).toBe("paying $0.10 on x402 (eip155:84532)…");
    expect(progressLine({ type: "payment.settled", url, settlement })).toBe("paid $0.10 on x402, tx 0xabc");
    expect(progressLine({ type: "payment.pending", url, idempotencyKey: "k", waitMs: 1500 })).toBe(
      "a payment for this purchase is still pending on the server; asking again in 2 s…",
    );
    expect(
      progressLine({ type: "upload", sha256: "a", done: 1, total: 3, bytesDone: 2048, bytesTotal: 300_000 }),
    ).toBe("uploaded 1 of 3 files (2.0 kB of 293.0 kB)");
    expect(progressLine({ type: "deploy.status", operationId: "op_1", status: "migrating" })).toBe(
      "deploy op_1: migrating",
    );
    expect(
      progressLine({
        type: "payment.resolved",
        url,
        idempotencyKey: "k",
        outcome: "paid",
        how: "used",
        reference: "0x1",
      }),
    ).toBe("an earlier run's payment went through (tx 0x1): recorded, not paid again");
    expect(
      progressLine({ type: "payment.cancelling", url, idempotencyKey: "k", network: "eip155:42431" }),
    ).toBe("cancelling an earlier run's unused payment on eip155:42431, so it can never be paid twice…");
    // Plain requests are not worth a line.
    expect(progressLine({ type: "request", method: "GET", url, status: 200 })).toBeUndefined();
  });
});
