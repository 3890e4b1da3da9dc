/**
 * Run402's "Direct HTTP" flow: a plain payment client, with no SIGN-IN-WITH-X and no other headers,
 * buys a tier. The 402 offers both rails; the verified payment says whose tier it is.
 */
import { x402Client } from "@x402/core/client";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { wrapFetchWithPayment } from "@x402/fetch";
import { Mppx, tempo } from "mppx/client";
import { type Chain, createClient, type Hex, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { siwxHeader, startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import { sandboxTempoChain } from "../chains/index.js";

let sb: TestSandbox;
beforeAll(async () => {
  sb = await startTestSandbox({ walletCount: 4 });
});
afterAll(async () => {
  await sb?.close();
});

const w = (i: number) => sb.wallets[i]!;
const tierUrl = (tier: string) => `${sb.apiBase}/tiers/v1/${tier}`;

async function status(key: Hex) {
  const url = `${sb.apiBase}/tiers/v1/status`;
  const res = await fetch(url, { headers: { "sign-in-with-x": await siwxHeader(key, url) } });
  return (await res.json()) as { wallet: string; tier: string | null; active: boolean };
}

describe("a paid route without SIWX", () => {
  test("no payment: the dual-rail 402, with or without SIWX", async () => {
    const plain = await fetch(tierUrl("prototype"), { method: "POST" });
    const signed = await fetch(tierUrl("prototype"), {
      method: "POST",
      headers: { "sign-in-with-x": await siwxHeader(w(3).privateKey, tierUrl("prototype")) },
    });
    for (const res of [plain, signed]) {
      expect(res.status).toBe(402);
      expect(res.headers.get("payment-required")).toBeTruthy();
      expect(res.headers.get("www-authenticate")).toMatch(/^Payment /);
      expect(((await res.json()) as { code: string }).code).toBe("PAYMENT_REQUIRED");
    }
    expect(await sb.ledger()).toEqual([]);
  });

  test("x402: a plain @x402/fetch client buys, and the tier is the payer's", async () => {
    const account = privateKeyToAccount(w(0).privateKey);
    const pay = wrapFetchWithPayment(
      fetch,
      new x402Client().register("eip155:*", new ExactEvmScheme(account)),
    );
    const res = await pay(tierUrl("prototype"), { method: "POST" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-run402-settlement-rail")).toBe("x402");
    expect(await res.json()).toMatchObject({
      wallet: account.address,
      action: "subscribe",
      tier: "prototype",
    });
    expect(await status(w(0).privateKey)).toMatchObject({ tier: "prototype", active: true });
    const paid = (await sb.ledger()).filter((e) => e.rail === "x402");
    expect(paid).toMatchObject([{ payer: account.address, amount: "100000" }]);
  });

  test("mpp: the seed's snippet, a plain mppx.fetch with only method POST, buys on tempo", async () => {
    const account = privateKeyToAccount(w(1).privateKey);
    const chain: Chain = sandboxTempoChain(sb.mpp.rpcUrl);
    const mppx = Mppx.create({
      polyfill: false,
      methods: [tempo({ account, getClient: () => createClient({ chain, transport: http(sb.mpp.rpcUrl) }) })],
    });
    const res = await mppx.fetch(tierUrl("prototype"), { method: "POST" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-run402-settlement-rail")).toBe("mpp");
    expect(await res.json()).toMatchObject({
      wallet: account.address,
      action: "subscribe",
      tier: "prototype",
    });
    expect(await status(w(1).privateKey)).toMatchObject({ tier: "prototype", active: true });
    expect((await sb.ledger()).filter((e) => e.rail === "mpp")).toMatchObject([{ payer: account.address }]);
  });

  test("SIWX still works: a signed, paid request is attributed to the signed-in wallet", async () => {
    const account = privateKeyToAccount(w(2).privateKey);
    const pay = wrapFetchWithPayment(
      fetch,
      new x402Client().register("eip155:*", new ExactEvmScheme(account)),
    );
    const url = tierUrl("prototype");
    const res = await pay(url, {
      method: "POST",
      headers: { "sign-in-with-x": await siwxHeader(w(2).privateKey, url) },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ wallet: account.address });
  });

  test("a payment header that names no payer is refused unverified, with a fresh challenge", async () => {
    const before = (await sb.ledger()).length;
    const res = await fetch(tierUrl("prototype"), {
      method: "POST",
      headers: { "payment-signature": Buffer.from(JSON.stringify({ x402Version: 2 })).toString("base64") },
    });
    expect(res.status).toBe(402);
    expect(((await res.json()) as { code: string }).code).toBe("PAYMENT_INVALID");
    expect(res.headers.get("payment-required")).toBeTruthy();
    expect((await sb.ledger()).length).toBe(before);
  });
});
