/**
 * Findings of an attacker's review of the payer, each pinned: every test failed before its fix
 * (an allowance claim un-counted a paid credential; a reservation came after an await; a failing
 * receipt lookup read as "not mined"; an RPC URL's password reached an error message).
 */
import { mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Address } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Hostile, honestTier, type Reply, spyAccount, startHostile, tierBody } from "~test/hostile.js";
import type { BaseError } from "../../core/errors.js";
import { createRun402, type Run402 } from "../client.js";
import type { Run402Event } from "../internal/events.js";
import type { SpendPolicy } from "./policy.js";
import type { RailName } from "./rail.js";

let h: Hostile;
const realFetch = globalThis.fetch;
const outside: string[] = [];

beforeAll(async () => {
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.hostname !== "127.0.0.1") {
      outside.push(url.href);
      throw new TypeError(`refused by the review suite: ${url.href}`);
    }
    return realFetch(input, init);
  }) as typeof globalThis.fetch;
  h = await startHostile({ wallets: 6 });
});
afterAll(async () => {
  globalThis.fetch = realFetch;
  await h?.close();
});

function payer(
  index: number,
  rail: RailName,
  options: { policy?: Partial<SpendPolicy>; rpcUrls?: { base?: string; tempo?: string } } = {},
) {
  const wallet = h.chains.wallets[index]!;
  const spy = spyAccount(wallet.privateKey);
  const journalPath = join(mkdtempSync(join(tmpdir(), "r402-review-")), "journal.jsonl");
  const events: Run402Event[] = [];
  const make = (): Run402 =>
    createRun402({
      apiBase: h.api.url,
      wallet: { account: spy.account },
      rail,
      policy: { maxPaymentUsd: 1, maxSpendUsd: 5, ...options.policy },
      journal: { path: journalPath },
      rpcUrls: options.rpcUrls ?? { base: h.chains.base.rpcUrl, tempo: h.chains.tempo.rpcUrl },
      timeoutMs: 20_000,
      onEvent: (e) => events.push(e),
    });
  return { r402: make(), rerun: make, signed: spy.signed, address: wallet.address as Address, events };
}

async function failure(promise: Promise<unknown>): Promise<BaseError | null> {
  return promise.then(
    () => null,
    (e: unknown) => e as BaseError,
  );
}

/** A JSON-RPC proxy to `target` that answers HTTP 503 to the methods `fail` names. */
async function rpcProxy(target: string, fail: (method: string) => boolean) {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      const parsed = JSON.parse(body.toString("utf8")) as { method: string } | { method: string }[];
      const methods = (Array.isArray(parsed) ? parsed : [parsed]).map((m) => m.method);
      if (methods.some(fail)) {
        res.writeHead(503, { "content-type": "text/plain" });
        res.end("rate limited");
        return;
      }
      const upstream = await realFetch(target, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      res.writeHead(upstream.status, { "content-type": "application/json" });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe("hostile server: review findings", () => {
  test("error: an 'allowance' receipt after a paid retry keeps the credential counted: the run cap holds", async () => {
    const p = payer(0, "x402", { policy: { maxPaymentUsd: 0.1, maxSpendUsd: 0.25 } });
    // The server settles the credential on chain, then claims the purchase was covered by allowance.
    h.api.handle(
      honestTier(h, h.api, () => ({
        status: 200,
        headers: { "x-run402-settlement-rail": "allowance" },
        body: tierBody(p.address),
      })),
    );
    const treasuryBefore = await h.balance("x402", h.chains.treasury);
    const errors: (string | undefined)[] = [];
    for (let i = 0; i < 5; i++) {
      const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: `allowance-${i}` }));
      errors.push(err?.code);
    }
    const moved = (await h.balance("x402", h.chains.treasury)) - treasuryBefore;
    expect(moved).toBeLessThanOrEqual(250000n);
    // What moved is what the run counts, and the purchases past the cap were refused unsigned.
    expect(p.r402.spentUsd()).toBeCloseTo(Number(moved) / 1e6, 6);
    expect(errors.filter((code) => code === "POLICY_MAX_SPEND")).toHaveLength(5 - Number(moved / 100000n));
  });

  test("behavior: two first purchases at once (nothing pinned yet) are held to the run cap", async () => {
    const p = payer(1, "x402", { policy: { maxPaymentUsd: 0.1, maxSpendUsd: 0.15 } });
    const honest = honestTier(h, h.api);
    // Answer the first two unpaid purchase requests together, as a busy server would.
    let release!: () => void;
    const both = new Promise<void>((r) => {
      release = r;
    });
    let unpaid = 0;
    h.api.handle(async (call) => {
      if (call.method === "POST" && !call.headers["payment-signature"]) {
        unpaid++;
        if (unpaid === 2) release();
        if (unpaid <= 2) await both;
      }
      return honest(call);
    });
    const treasuryBefore = await h.balance("x402", h.chains.treasury);
    const results = await Promise.allSettled([
      p.r402.tiers.set({ tier: "prototype", intent: "race-a" }),
      p.r402.tiers.set({ tier: "prototype", intent: "race-b" }),
    ]);
    const moved = (await h.balance("x402", h.chains.treasury)) - treasuryBefore;
    expect(moved).toBe(100000n);
    expect(
      results.map((r) => (r.status === "fulfilled" ? "paid" : (r.reason as BaseError).code)).sort(),
    ).toEqual(["POLICY_MAX_SPEND", "paid"]);
  });

  test("behavior: with the recipient already pinned, the same race is held to the cap", async () => {
    const p = payer(4, "x402", { policy: { maxPaymentUsd: 0.1, maxSpendUsd: 0.25 } });
    const honest = honestTier(h, h.api);
    h.api.handle(honest);
    // One purchase first: pins the recipient (0.10 of 0.25 spent).
    await p.r402.tiers.set({ tier: "prototype", intent: "pin-first" });
    let release!: () => void;
    const both = new Promise<void>((r) => {
      release = r;
    });
    let unpaid = 0;
    h.api.handle(async (call) => {
      if (call.method === "POST" && !call.headers["payment-signature"]) {
        unpaid++;
        if (unpaid === 2) release();
        if (unpaid <= 2) await both;
      }
      return honest(call);
    });
    const treasuryBefore = await h.balance("x402", h.chains.treasury);
    const results = await Promise.allSettled([
      p.r402.tiers.set({ tier: "prototype", intent: "pinned-race-a" }),
      p.r402.tiers.set({ tier: "prototype", intent: "pinned-race-b" }),
    ]);
    const moved = (await h.balance("x402", h.chains.treasury)) - treasuryBefore;
    expect(moved).toBe(100000n);
    expect(
      results.map((r) => (r.status === "fulfilled" ? "paid" : (r.reason as BaseError).code)).sort(),
    ).toEqual(["POLICY_MAX_SPEND", "paid"]);
  });

  test("error: mpp, a failing receipt lookup is not 'not mined': the rerun never pays a settled intent again", async () => {
    const proxy = await rpcProxy(h.chains.tempo.rpcUrl, (m) => m === "eth_getTransactionReceipt");
    try {
      const p = payer(2, "mpp", { rpcUrls: { base: h.chains.base.rpcUrl, tempo: proxy.url } });
      // Run 1: the server broadcasts the payment, then fails before answering, and the rerun must not pay again.
      h.api.handle(
        honestTier(h, h.api, () => ({
          status: 500,
          body: { code: "INTERNAL_ERROR", message: "database went away" },
        })),
      );
      const [walletBefore, treasuryBefore] = await Promise.all([
        h.balance("mpp", p.address),
        h.balance("mpp", h.chains.treasury),
      ]);
      const first = await failure(p.r402.tiers.set({ tier: "prototype", intent: "flaky-rpc" }));
      // Run 2: an honest server; the Tempo RPC rate-limits receipt lookups.
      h.api.handle(honestTier(h, h.api));
      const second = await failure(p.rerun().tiers.set({ tier: "prototype", intent: "flaky-rpc" }));
      const moved = (await h.balance("mpp", h.chains.treasury)) - treasuryBefore;
      expect(moved).toBe(100000n);
      // One payment and its fee (Tempo charges fees in the fee token), not two.
      expect(walletBefore - (await h.balance("mpp", p.address))).toBeLessThan(200000n);
      expect(first?.status).toBe(500);
      // The chain could not say: the intent stays pending, coded, and nothing more is signed.
      expect(second?.code).toBe("PAYMENT_CHAIN_UNAVAILABLE");
      expect(p.signed.filter((s) => s.kind === "transaction")).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  test("error: an RPC URL's credentials never reach an error message", async () => {
    const p = payer(3, "mpp", {
      rpcUrls: { base: h.chains.base.rpcUrl, tempo: "http://rpcuser:s3cret-rpc-pass@127.0.0.1:9" },
    });
    h.api.handle(
      (): Reply => ({
        status: 402,
        headers: {
          "www-authenticate": h.mppChallenge({
            amount: "100000",
            currency: h.chains.tempo.pathUsd,
            recipient: h.chains.treasury,
            methodDetails: { chainId: 42431 },
          }),
        },
        body: { code: "PAYMENT_REQUIRED", message: "Payment required." },
      }),
    );
    const err = await failure(p.r402.tiers.set({ tier: "prototype", intent: "rpc-secret" }));
    expect(err).not.toBeNull();
    expect(String(err?.message)).not.toContain("s3cret-rpc-pass");
    expect(String(err?.message)).not.toContain("rpcuser");
  });
});
