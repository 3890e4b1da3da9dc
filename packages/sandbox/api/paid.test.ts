import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { GateOutcome, PaymentGate, Price, Settlement } from "../payments/types.js";
import { openState, type StateStore } from "../state.js";
import { badRequest, conflict } from "./errors.js";
import { type Controls, createHandler } from "./http.js";
import { paidRoute } from "./paid.js";

const PRICE: Price = { atomic: 100n, usd: "0.0001", description: "thing" };
const WALLET = "0x00000000000000000000000000000000000000a1";

/** A stub gate: `payment-signature: ok|bad|fail-settle`, and a log of what happened in which order. */
function stubGate(events: string[]): PaymentGate {
  return {
    async check(request): Promise<GateOutcome> {
      const sig = request.headers.get("payment-signature");
      const response = (code: string) => ({
        status: 402,
        headers: { "payment-required": "x" },
        body: { code },
      });
      if (!sig) return { kind: "challenge", response: response("PAYMENT_REQUIRED") };
      if (sig === "bad")
        return { kind: "invalid", rail: "x402", reason: "bad", response: response("PAYMENT_INVALID") };
      return {
        kind: "verified",
        rail: "x402",
        payer: WALLET,
        async settle(): Promise<Settlement> {
          events.push("settle");
          if (sig === "fail-settle") throw new Error("reverted");
          if (sig === "hold") await held;
          return {
            rail: "x402",
            reference: `0x${"1".repeat(64)}`,
            amount: "100",
            asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
            network: "eip155:84532",
            payer: WALLET,
            recipient: WALLET,
            receiptHeaders: { "payment-response": "receipt" },
          };
        },
      };
    },
  };
}

let server: Server;
let base: string;
let store: StateStore;
const events: string[] = [];
const controls: Controls = { faults: [], requests: [], prices: {} };
let refuse = false;
let release: () => void = () => {};
const held = new Promise<void>((r) => {
  release = r;
});

beforeAll(async () => {
  store = openState();
  const deps = { gate: stubGate(events), store, now: Date.now, inFlight: new Set<string>(), log: () => {} };
  server = createServer(
    createHandler({
      controls,
      log: () => {},
      routes: [
        {
          method: "POST",
          pattern: "/thing",
          paid: true,
          async handler(ctx) {
            const body = ctx.json();
            if (body["bad"]) throw badRequest("BAD", "bad body");
            return paidRoute(ctx, deps, {
              wallet: WALLET,
              price: PRICE,
              payload: body,
              preflight() {
                events.push("preflight");
                if (refuse) throw conflict("REFUSED", "refused");
              },
              fulfill() {
                events.push("fulfill");
                return { status: 200, body: { n: events.length } };
              },
            });
          },
        },
      ],
    }),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const post = async (headers: Record<string, string> = {}, body: unknown = {}) => {
  const res = await fetch(`${base}/thing`, { method: "POST", headers, body: JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
};

describe("paidRoute", () => {
  test("default: challenge, then settle after the final checks, then ledger and stored response", async () => {
    events.length = 0;
    expect((await post()).status).toBe(402);
    const paid = await post({ "payment-signature": "ok", "idempotency-key": "k1" });
    expect(paid.status).toBe(200);
    expect(paid.headers.get("x-run402-settlement-rail")).toBe("x402");
    expect(paid.headers.get("payment-response")).toBe("receipt");
    expect(events).toEqual(["preflight", "preflight", "preflight", "settle", "fulfill"]);
    expect(store.state.ledger).toMatchObject([
      { rail: "x402", idempotencyKey: "k1", route: "POST /thing", payer: WALLET },
    ]);
  });

  test("behavior: a completed key replays without a challenge; another payload → 409", async () => {
    const replay = await post({ "idempotency-key": "k1" });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("x-run402-payment-deduplicated")).toBe("true");
    expect((await post({ "idempotency-key": "k1" }, { other: 1 })).body.code).toBe("IDEMPOTENCY_KEY_REUSED");
    expect(store.state.ledger).toHaveLength(1);
  });

  test("behavior: a key whose payment is in flight → 409 PAYMENT_INTENT_PENDING", async () => {
    events.length = 0;
    const first = post({ "payment-signature": "hold", "idempotency-key": "k2" });
    while (!events.includes("settle")) await new Promise((r) => setTimeout(r, 5));
    const second = await post({ "payment-signature": "hold", "idempotency-key": "k2" });
    release();
    expect(second.status).toBe(409);
    expect(second.body.code).toBe("PAYMENT_INTENT_PENDING");
    expect(second.headers.get("retry-after")).toBe("1");
    expect((await first).status).toBe(200);
    expect(store.state.ledger).toHaveLength(2);
  });

  test("error: validation before payment; refused preflight never settles; failed settlement → 402", async () => {
    events.length = 0;
    expect((await post({ "payment-signature": "ok" }, { bad: true })).body.code).toBe("BAD");
    refuse = true;
    expect((await post({ "payment-signature": "ok" })).body.code).toBe("REFUSED");
    refuse = false;
    expect((await post({ "payment-signature": "bad" })).body.code).toBe("PAYMENT_INVALID");
    const failed = await post({ "payment-signature": "fail-settle", "idempotency-key": "k3" });
    expect(failed.status).toBe(402);
    expect(failed.body.code).toBe("PAYMENT_INVALID");
    expect(events.filter((e) => e === "fulfill")).toEqual([]);
    expect(store.state.ledger).toHaveLength(2);
    expect(store.state.idempotency[`${WALLET}|k3`]).toBeUndefined();
  });

  test("behavior: error_before_settlement charges nothing; error_after_settlement stores the result", async () => {
    controls.faults.push({
      route: "POST /thing",
      kind: "error_before_settlement",
      remaining: 1,
      delayMs: 0,
      retryAfterSeconds: 0,
    });
    expect((await post({ "payment-signature": "ok", "idempotency-key": "k4" })).status).toBe(500);
    expect(store.state.ledger).toHaveLength(2);
    controls.faults.push({
      route: "POST /thing",
      kind: "error_after_settlement",
      remaining: 1,
      delayMs: 0,
      retryAfterSeconds: 0,
    });
    expect((await post({ "payment-signature": "ok", "idempotency-key": "k4" })).status).toBe(500);
    expect(store.state.ledger).toHaveLength(3);
    const replay = await post({ "idempotency-key": "k4" });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("x-run402-payment-deduplicated")).toBe("true");
  });
});
