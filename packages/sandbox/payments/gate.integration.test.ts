import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { x402Client } from "@x402/core/client";
import { decodePaymentRequiredHeader, decodePaymentResponseHeader } from "@x402/core/http";
import type { PaymentRequired } from "@x402/core/types";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { ExactEvmSchemeV1 } from "@x402/evm/v1";
import { wrapFetchWithPayment } from "@x402/fetch";
import { Receipt } from "mppx";
import { Mppx, tempo } from "mppx/client";
import { type Chain, createClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type Chains, sandboxTempoChain, startChains } from "../chains/index.js";
import { createPaymentGate } from "./gate.js";
import type { GateOutcome, PaymentGate, Price, Settlement } from "./types.js";

const PRICE: Price = { atomic: 100000n, usd: "0.10", description: "prototype tier" };
const CHEAP: Price = { atomic: 5000n, usd: "0.005", description: "cheap thing" };
const SECRET = "sandbox-test-secret-0123456789abcdef0123456789";

let chains: Chains;
let server: Server;
let origin: string;
const outcomes: GateOutcome[] = [];

function toRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (typeof value === "string") headers.set(name, value);
  }
  return new Request(`${origin}${req.url}`, { method: req.method ?? "GET", headers });
}

async function handle(gate: PaymentGate, price: Price, req: IncomingMessage, res: ServerResponse) {
  const outcome = await gate.check(toRequest(req), price);
  outcomes.push(outcome);
  if (outcome.kind !== "verified") {
    const headers = { ...outcome.response.headers };
    if (req.url === "/no-resource") {
      const { resource: _dropped, ...rest } = decodePaymentRequiredHeader(headers["PAYMENT-REQUIRED"]!);
      headers["PAYMENT-REQUIRED"] = Buffer.from(JSON.stringify(rest)).toString("base64");
    }
    res.writeHead(outcome.response.status, headers).end(JSON.stringify(outcome.response.body));
    return;
  }
  const settlement = await outcome.settle();
  res
    .writeHead(200, {
      "content-type": "application/json",
      "X-Run402-Settlement-Rail": settlement.rail,
      ...settlement.receiptHeaders,
    })
    .end(JSON.stringify({ ok: true, settlement }));
}

interface Body {
  code?: string;
  message?: string;
  accepts?: unknown;
  settlement?: Settlement;
}

async function json(res: Response): Promise<Body> {
  return (await res.json()) as Body;
}

function lastOutcome(): GateOutcome {
  return outcomes[outcomes.length - 1]!;
}

beforeAll(async () => {
  chains = await startChains({ walletCount: 3 });
  const gate = createPaymentGate({ chains, secretKey: SECRET, realm: "sandbox.test" });
  // Same secret and realm, another treasury: its credentials must not pay the main gate.
  const strangerTreasury = "0x000000000000000000000000000000000000dEaD";
  const stranger = createPaymentGate({
    chains: { ...chains, treasury: strangerTreasury },
    secretKey: SECRET,
    realm: "sandbox.test",
  });
  server = createServer((req, res) => {
    const [gateFor, price] =
      req.url === "/cheap" ? [gate, CHEAP] : req.url === "/stranger" ? [stranger, PRICE] : [gate, PRICE];
    handle(gateFor, price, req, res).catch((error: Error) => {
      res.writeHead(500).end(JSON.stringify({ crash: error.message }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  if (server) await new Promise((resolve) => server.close(resolve));
  await chains?.stop();
});

describe("challenge", () => {
  test("one 402 carries both rails and the error envelope", async () => {
    const res = await fetch(`${origin}/paid?x=1`, { method: "POST" });
    expect(res.status).toBe(402);
    const required = decodePaymentRequiredHeader(res.headers.get("PAYMENT-REQUIRED")!);
    expect(required.x402Version).toBe(2);
    expect(required.resource.url).toBe(`${origin}/paid?x=1`);
    expect(required.accepts).toEqual([
      {
        scheme: "exact",
        network: "eip155:84532",
        amount: "100000",
        asset: chains.base.usdc,
        payTo: chains.treasury,
        maxTimeoutSeconds: 300,
        extra: { name: "USDC", version: "2" },
      },
    ]);
    const www = res.headers.get("WWW-Authenticate")!;
    expect(www).toMatch(/^Payment /);
    expect(www).toContain('method="tempo"');
    expect(www).toContain('intent="charge"');
    const request = JSON.parse(Buffer.from(/request="([^"]+)"/.exec(www)![1]!, "base64url").toString());
    expect(request).toMatchObject({
      amount: "100000",
      currency: chains.tempo.pathUsd,
      recipient: chains.treasury,
      methodDetails: { chainId: 42431 },
    });
    const body = await json(res);
    expect(body).toMatchObject({
      code: "PAYMENT_REQUIRED",
      category: "payment",
      retryable: true,
      safe_to_retry: true,
      next_actions: [{ type: "submit_payment" }],
      x402Version: 2,
      resource: { url: `${origin}/paid?x=1` },
    });
    expect(body.accepts).toEqual(required.accepts);
  });
});

describe("x402", () => {
  const payer = () => chains.wallets[0]!;
  const account = () => privateKeyToAccount(payer().privateKey);
  const client = () =>
    new x402Client()
      .register("eip155:*", new ExactEvmScheme(account()))
      .setSpendControls({ maxAmountPerPayment: "$0.50" });
  let sentSignature: string | undefined;

  test("@x402/fetch pays; treasury gains exactly the price on base", async () => {
    const recordingFetch: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      sentSignature = request.headers.get("PAYMENT-SIGNATURE") ?? sentSignature;
      return fetch(request);
    };
    const paidFetch = wrapFetchWithPayment(recordingFetch, client());
    const [treasury0, payer0, tempoTreasury0] = await Promise.all([
      chains.balance("x402", chains.treasury),
      chains.balance("x402", payer().address),
      chains.balance("mpp", chains.treasury),
    ]);

    const res = await paidFetch(`${origin}/paid`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Run402-Settlement-Rail")).toBe("x402");
    const receipt = decodePaymentResponseHeader(res.headers.get("PAYMENT-RESPONSE")!);
    expect(receipt).toMatchObject({ success: true, network: "eip155:84532", payer: payer().address });
    expect(receipt.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    const { settlement } = await json(res);
    expect(settlement).toMatchObject({
      rail: "x402",
      reference: receipt.transaction,
      amount: "100000",
      asset: chains.base.usdc,
      network: "eip155:84532",
      payer: payer().address,
      recipient: chains.treasury,
    });

    expect(await chains.balance("x402", chains.treasury)).toBe(treasury0 + PRICE.atomic);
    expect(await chains.balance("x402", payer().address)).toBe(payer0 - PRICE.atomic);
    expect(await chains.balance("mpp", chains.treasury)).toBe(tempoTreasury0);
  });

  test("replaying the same PAYMENT-SIGNATURE is refused and nothing moves", async () => {
    expect(sentSignature).toBeDefined();
    const before = await chains.balance("x402", chains.treasury);
    const res = await fetch(`${origin}/paid`, {
      method: "POST",
      headers: { "PAYMENT-SIGNATURE": sentSignature! },
    });
    expect(res.status).toBe(402);
    const body = await json(res);
    expect(body.code).toBe("PAYMENT_INVALID");
    expect(body.message).toMatch(/nonce_already_used/);
    expect(res.headers.get("PAYMENT-REQUIRED")).toBeTruthy();
    expect(res.headers.get("WWW-Authenticate")).toMatch(/^Payment /);
    expect(lastOutcome()).toMatchObject({ kind: "invalid", rail: "x402" });
    expect(await chains.balance("x402", chains.treasury)).toBe(before);
  });

  test("malformed headers give invalid, not a crash", async () => {
    const malformed: Record<string, string>[] = [
      { "PAYMENT-SIGNATURE": "%%%not-base64%%%" },
      { "PAYMENT-SIGNATURE": Buffer.from("not json").toString("base64") },
      { "X-PAYMENT": Buffer.from(JSON.stringify({ x402Version: 2, payload: 7 })).toString("base64") },
      { "PAYMENT-SIGNATURE": Buffer.from("[1,2]").toString("base64") },
    ];
    for (const headers of malformed) {
      const res = await fetch(`${origin}/paid`, { method: "POST", headers });
      expect(res.status).toBe(402);
      expect((await json(res)).code).toBe("PAYMENT_INVALID");
      expect(lastOutcome()).toMatchObject({ kind: "invalid", rail: "x402" });
    }
  });

  async function signFor(required: PaymentRequired): Promise<string> {
    const payload = await client().createPaymentPayload(required);
    return Buffer.from(JSON.stringify(payload)).toString("base64url");
  }

  async function challenge(path: string): Promise<PaymentRequired> {
    const res = await fetch(`${origin}${path}`, { method: "POST" });
    return decodePaymentRequiredHeader(res.headers.get("PAYMENT-REQUIRED")!);
  }

  test("underpaying and wrong-recipient authorizations are refused", async () => {
    const before = await chains.balance("x402", payer().address);
    const cheap = await signFor(await challenge("/cheap"));
    let res = await fetch(`${origin}/paid`, { method: "POST", headers: { "PAYMENT-SIGNATURE": cheap } });
    expect(res.status).toBe(402);
    expect(lastOutcome()).toMatchObject({ kind: "invalid", rail: "x402" });
    expect((lastOutcome() as { reason: string }).reason).toMatch(/value_mismatch/);

    const stranger = await signFor(await challenge("/stranger"));
    res = await fetch(`${origin}/paid`, { method: "POST", headers: { "PAYMENT-SIGNATURE": stranger } });
    expect(res.status).toBe(402);
    expect((lastOutcome() as { reason: string }).reason).toMatch(/recipient_mismatch/);
    expect(await chains.balance("x402", payer().address)).toBe(before);
  });

  test("a base64url-encoded credential is accepted", async () => {
    const before = await chains.balance("x402", chains.treasury);
    const credential = await signFor(await challenge("/paid"));
    const res = await fetch(`${origin}/paid`, {
      method: "POST",
      headers: { "PAYMENT-SIGNATURE": credential },
    });
    expect(res.status).toBe(200);
    expect(await chains.balance("x402", chains.treasury)).toBe(before + PRICE.atomic);
  });
});

describe("x402 edge cases", () => {
  const payer = () => chains.wallets[2]!;
  const account = () => privateKeyToAccount(payer().privateKey);

  test("a v1 X-PAYMENT credential is verified and settled, with X-PAYMENT-RESPONSE", async () => {
    const client = new x402Client().registerV1("base-sepolia", new ExactEvmSchemeV1(account()));
    const required = {
      x402Version: 1,
      accepts: [
        {
          scheme: "exact",
          network: "base-sepolia",
          maxAmountRequired: "100000",
          resource: `${origin}/paid`,
          description: "prototype tier",
          mimeType: "application/json",
          outputSchema: {},
          payTo: chains.treasury,
          maxTimeoutSeconds: 300,
          asset: chains.base.usdc,
          extra: { name: "USDC", version: "2" },
        },
      ],
    };
    const payload = await client.createPaymentPayload(required as unknown as PaymentRequired);
    expect(payload.x402Version).toBe(1);
    const before = await chains.balance("x402", chains.treasury);
    const res = await fetch(`${origin}/paid`, {
      method: "POST",
      headers: { "X-PAYMENT": Buffer.from(JSON.stringify(payload)).toString("base64") },
    });
    expect(res.status).toBe(200);
    const receipt = decodePaymentResponseHeader(res.headers.get("X-PAYMENT-RESPONSE")!);
    expect(receipt).toMatchObject({ success: true, payer: payer().address });
    expect((await json(res)).settlement).toMatchObject({
      network: "eip155:84532",
      reference: receipt.transaction,
    });
    expect(await chains.balance("x402", chains.treasury)).toBe(before + PRICE.atomic);
  });

  test("concurrent payments from different payers all settle (facilitator nonces do not collide)", async () => {
    const before = await chains.balance("x402", chains.treasury);
    const payers = [chains.wallets[0]!, chains.wallets[2]!, chains.wallets[0]!, chains.wallets[2]!];
    const responses = await Promise.all(
      payers.map((wallet) => {
        const client = new x402Client().register(
          "eip155:*",
          new ExactEvmScheme(privateKeyToAccount(wallet.privateKey)),
        );
        return wrapFetchWithPayment(fetch, client)(`${origin}/paid`, { method: "POST" });
      }),
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(await chains.balance("x402", chains.treasury)).toBe(before + 4n * PRICE.atomic);
  });

  test("the same authorization checked twice concurrently settles once", async () => {
    const client = new x402Client().register("eip155:*", new ExactEvmScheme(account()));
    const challenge = await fetch(`${origin}/paid`, { method: "POST" });
    const payload = await client.createPaymentPayload(
      decodePaymentRequiredHeader(challenge.headers.get("PAYMENT-REQUIRED")!),
    );
    const header = Buffer.from(JSON.stringify(payload)).toString("base64");
    const gate = createPaymentGate({ chains, secretKey: SECRET });
    const request = () =>
      new Request(`${origin}/paid`, { method: "POST", headers: { "PAYMENT-SIGNATURE": header } });
    const before = await chains.balance("x402", chains.treasury);

    const [a, b] = await Promise.all([gate.check(request(), PRICE), gate.check(request(), PRICE)]);
    // Both pass verification (nothing has moved yet); only one settlement can win.
    expect(a.kind).toBe("verified");
    expect(b.kind).toBe("verified");
    if (a.kind !== "verified" || b.kind !== "verified") return;
    const results = await Promise.allSettled([a.settle(), b.settle()]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(await chains.balance("x402", chains.treasury)).toBe(before + PRICE.atomic);

    const again = await gate.check(request(), PRICE);
    expect(again).toMatchObject({ kind: "invalid", rail: "x402" });
  });
});

describe("mpp", () => {
  const payer = () => chains.wallets[1]!;
  const tempoChain = (): Chain => sandboxTempoChain(chains.tempo.rpcUrl);
  const mppClient = (fetchImpl: typeof fetch = fetch) =>
    Mppx.create({
      polyfill: false,
      fetch: fetchImpl,
      methods: [
        tempo({
          account: privateKeyToAccount(payer().privateKey),
          getClient: () => createClient({ chain: tempoChain(), transport: http(chains.tempo.rpcUrl) }),
        }),
      ],
    });
  let sentAuthorization: string | undefined;

  test("mppx client pays; treasury gains exactly the price on tempo", async () => {
    const recordingFetch: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      sentAuthorization = request.headers.get("Authorization") ?? sentAuthorization;
      return fetch(request);
    };
    const [treasury0, payer0, baseTreasury0] = await Promise.all([
      chains.balance("mpp", chains.treasury),
      chains.balance("mpp", payer().address),
      chains.balance("x402", chains.treasury),
    ]);

    const res = await mppClient(recordingFetch).fetch(`${origin}/paid`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Run402-Settlement-Rail")).toBe("mpp");
    const receipt = Receipt.deserialize(res.headers.get("Payment-Receipt")!);
    expect(receipt).toMatchObject({ method: "tempo", status: "success" });
    const { settlement } = await json(res);
    expect(settlement).toMatchObject({
      rail: "mpp",
      reference: receipt.reference,
      amount: "100000",
      asset: chains.tempo.pathUsd,
      network: "eip155:42431",
      payer: payer().address,
      recipient: chains.treasury,
    });

    expect(await chains.balance("mpp", chains.treasury)).toBe(treasury0 + PRICE.atomic);
    // Surprise worth pinning: on tempo the payer's fee is also taken in pathUSD, so it loses more than the price.
    expect(await chains.balance("mpp", payer().address)).toBeLessThan(payer0 - PRICE.atomic);
    expect(await chains.balance("x402", chains.treasury)).toBe(baseTreasury0);
  });

  test("replaying the same Authorization is refused and nothing moves", async () => {
    expect(sentAuthorization).toMatch(/^Payment /);
    const before = await chains.balance("mpp", chains.treasury);
    const res = await fetch(`${origin}/paid`, {
      method: "POST",
      headers: { Authorization: sentAuthorization! },
    });
    expect(res.status).toBe(402);
    const body = await json(res);
    expect(body.code).toBe("PAYMENT_INVALID");
    expect(lastOutcome()).toMatchObject({ kind: "invalid", rail: "mpp" });
    expect(res.headers.get("WWW-Authenticate")).toMatch(/^Payment /);
    expect(await chains.balance("mpp", chains.treasury)).toBe(before);
  });

  test("malformed credentials give invalid, not a crash", async () => {
    for (const authorization of [
      "Payment !!!",
      "Payment e30",
      `Payment ${Buffer.from("[]").toString("base64")}`,
    ]) {
      const res = await fetch(`${origin}/paid`, {
        method: "POST",
        headers: { Authorization: authorization },
      });
      expect(res.status).toBe(402);
      expect((await json(res)).code).toBe("PAYMENT_INVALID");
      expect(lastOutcome()).toMatchObject({ kind: "invalid", rail: "mpp" });
    }
  });

  test("underpaying and wrong-recipient credentials are refused before anything is broadcast", async () => {
    const [treasury0, payer0] = await Promise.all([
      chains.balance("mpp", chains.treasury),
      chains.balance("mpp", payer().address),
    ]);
    const client = mppClient();
    for (const path of ["/cheap", "/stranger"]) {
      const challenge = await fetch(`${origin}${path}`, { method: "POST" });
      const credential = await client.createCredential(challenge);
      const res = await fetch(`${origin}/paid`, { method: "POST", headers: { Authorization: credential } });
      expect(res.status).toBe(402);
      expect((await json(res)).code).toBe("PAYMENT_INVALID");
      expect(lastOutcome()).toMatchObject({ kind: "invalid", rail: "mpp" });
    }
    expect(await chains.balance("mpp", chains.treasury)).toBe(treasury0);
    expect(await chains.balance("mpp", payer().address)).toBe(payer0);
  });
});

describe("pinned behaviour of the rails' clients", () => {
  test("mppx 0.11's client refuses the whole 402 when PAYMENT-REQUIRED lacks resource.url", async () => {
    // Even with only tempo configured it parses the x402 header too, so the gate must keep it valid.
    const client = Mppx.create({
      polyfill: false,
      methods: [tempo({ account: privateKeyToAccount(chains.wallets[1]!.privateKey) })],
    });
    const before = await chains.balance("mpp", chains.treasury);
    await expect(client.fetch(`${origin}/no-resource`, { method: "POST" })).rejects.toThrow(
      /Invalid base64 JSON header/,
    );
    expect(await chains.balance("mpp", chains.treasury)).toBe(before);
  });
});
