/**
 * A hostile Run402 for the payer's tests (imported as `~test/hostile.js`): node:http servers on
 * 127.0.0.1 (port 0) whose handlers a test writes, over the sandbox's real local chains (anvil) and
 * its real verifiers (the payment gate: the @x402/evm facilitator and mppx's server). A test crafts
 * the 402 it wants, then settles whatever the client signed the way a dishonest server would (the
 * facilitator for x402 authorizations, a raw broadcast for Tempo transactions), and asserts on chain
 * balances or on what the wallet signed.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  type Chains,
  createPaymentGate,
  type PaymentGate,
  type Price,
  type Settlement,
  startChains,
} from "@pulumi-run402/sandbox";
import { x402Facilitator } from "@x402/core/facilitator";
import type { PaymentPayload, PaymentRequirements } from "@x402/core/types";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import { Challenge, Credential } from "mppx";
import {
  type Address,
  type Chain,
  createPublicClient,
  createWalletClient,
  erc20Abi,
  type Hex,
  http,
  type LocalAccount,
  publicActions,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { baseSepolia, tempoModerato } from "viem/chains";

/** One request as a handler sees it. */
export interface Call {
  method: string;
  /** Path and query. */
  path: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: Buffer;
  /** The absolute URL the client called. */
  url: string;
}

/** What a handler answers. `stream` writes the body itself (for oversized answers). */
export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  stream?: (res: ServerResponse) => Promise<void>;
}

/** A handler; `"drop"` destroys the connection without answering. */
export type Handler = (call: Call) => Promise<Reply | "drop"> | Reply | "drop";

/** One origin (its own port) with a swappable handler and a log of what reached it. */
export interface Origin {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Every request that reached this origin, oldest first. */
  calls: Call[];
  /** Replaces the handler (and clears `calls`). */
  handle(handler: Handler): void;
  /** Resolves, once the last streamed answer's connection closed, with the bytes it got onto the socket. */
  streamed(): Promise<number>;
  close(): Promise<void>;
}

/** Starts one origin on 127.0.0.1, port 0. */
export async function startOrigin(): Promise<Origin> {
  let handler: Handler = () => ({ status: 404, body: { code: "NOT_FOUND", message: "no handler" } });
  const calls: Call[] = [];
  let streamed: Promise<number> = Promise.resolve(0);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === "string") headers[k] = v;
        else if (Array.isArray(v)) headers[k] = v.join(", ");
      }
      const call: Call = {
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers,
        body: Buffer.concat(chunks),
        url: `${origin.url}${req.url ?? "/"}`,
      };
      calls.push(call);
      try {
        const reply = await handler(call);
        if (reply === "drop") {
          req.socket.destroy();
          return;
        }
        if (reply.stream) {
          res.writeHead(reply.status, reply.headers ?? {});
          const socket = req.socket;
          const start = socket.bytesWritten;
          streamed = new Promise((resolve) => res.once("close", () => resolve(socket.bytesWritten - start)));
          await reply.stream(res);
          return;
        }
        const isJson = reply.body !== undefined && !Buffer.isBuffer(reply.body);
        res.writeHead(reply.status, {
          ...(isJson ? { "content-type": "application/json" } : {}),
          ...(reply.headers ?? {}),
        });
        res.end(isJson ? JSON.stringify(reply.body) : (reply.body as Buffer | undefined));
      } catch (error) {
        res.writeHead(599, { "content-type": "text/plain" });
        res.end(`hostile handler threw: ${error instanceof Error ? error.stack : String(error)}`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin: Origin = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    handle(next) {
      handler = next;
      calls.length = 0;
      streamed = Promise.resolve(0);
    },
    streamed: () => streamed,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return origin;
}

/** What a wallet signed, as seen by the account's signing methods. */
export type Signed =
  | { kind: "typedData"; primaryType: string; domain: unknown; message: Record<string, unknown> }
  | { kind: "transaction"; transaction: Record<string, unknown> };

/**
 * A real account whose payment-signing methods record what they sign (SIWX's signMessage is not a
 * payment and is not recorded). The spy only observes: it is not the code under test.
 */
export function spyAccount(privateKey: Hex): { account: LocalAccount; signed: Signed[] } {
  const base = privateKeyToAccount(privateKey);
  const signed: Signed[] = [];
  const account: LocalAccount = {
    ...base,
    signTypedData: async (args) => {
      const a = args as { primaryType: string; domain?: unknown; message: Record<string, unknown> };
      signed.push({ kind: "typedData", primaryType: a.primaryType, domain: a.domain, message: a.message });
      return base.signTypedData(args);
    },
    signTransaction: async (tx, opts) => {
      signed.push({ kind: "transaction", transaction: { ...(tx as Record<string, unknown>) } });
      return base.signTransaction(tx, opts);
    },
  };
  return { account, signed };
}

/** The hostile world: chains, two origins, the real gate, and settlement helpers. */
export interface Hostile {
  chains: Chains;
  /** The API under test. */
  api: Origin;
  /** Another origin (redirect and upload target, or a second API). */
  other: Origin;
  /** A funded address that is neither the treasury nor a payer: where a hostile server diverts money. */
  attacker: Address;
  /** The sandbox's payment gate (real verification and settlement), pricing `price`. */
  gate: PaymentGate;
  /** prototype's price. */
  price: Price;
  /** Atomic token balance on a rail's chain. */
  balance(rail: "x402" | "mpp", address: Address): Promise<bigint>;
  /** USDC allowance on the base chain. */
  allowance(owner: Address, spender: Address): Promise<bigint>;
  /** The `Request` the gate wants for `call`. */
  request(call: Call): Request;
  /** A base64 x402 `PAYMENT-REQUIRED` header (or body) for `accepts` as given. */
  x402Required(accepts: Record<string, unknown>[], extra?: Record<string, unknown>, version?: 1 | 2): string;
  /** Verifies and settles an x402 payment header against `requirements` with the real facilitator. */
  settleX402(header: string, requirements: Record<string, unknown>): Promise<Hex>;
  /** A `WWW-Authenticate: Payment …` tempo charge challenge with exactly `request`. */
  mppChallenge(request: Record<string, unknown>, options?: { expiresInSeconds?: number }): string;
  /** Broadcasts the Tempo transaction inside an `Authorization: Payment …` credential; returns its hash. */
  broadcastMpp(authorization: string): Promise<Hex>;
  /** Broadcasts a signed raw transaction on the base chain; returns its hash once mined. */
  broadcastBase(raw: Hex): Promise<Hex>;
  close(): Promise<void>;
}

/** Starts the chains and two origins. */
export async function startHostile(options: { wallets?: number } = {}): Promise<Hostile> {
  const chains = await startChains({ walletCount: options.wallets ?? 16 });
  const [api, other] = await Promise.all([startOrigin(), startOrigin()]);
  const secretKey = "hostile-test-secret-key-0123456789abcdef";
  const gate = createPaymentGate({ chains, secretKey });
  const attacker = privateKeyToAccount(`0x${"ab".repeat(32)}`).address;

  const baseChain: Chain = { ...baseSepolia, rpcUrls: { default: { http: [chains.base.rpcUrl] } } };
  const tempoChain: Chain = { ...tempoModerato, rpcUrls: { default: { http: [chains.tempo.rpcUrl] } } };
  const basePublic = createPublicClient({ chain: baseChain, transport: http(chains.base.rpcUrl) });
  const tempoPublic = createPublicClient({ chain: tempoChain, transport: http(chains.tempo.rpcUrl) });

  const facilitatorAccount = privateKeyToAccount(chains.facilitator.privateKey);
  const fc = createWalletClient({
    account: facilitatorAccount,
    chain: baseChain,
    transport: http(chains.base.rpcUrl),
  }).extend(publicActions);
  const facilitator = registerExactEvmScheme(new x402Facilitator(), {
    signer: toFacilitatorEvmSigner({
      address: facilitatorAccount.address,
      readContract: (args) => fc.readContract(args as never),
      verifyTypedData: (args) => fc.verifyTypedData(args as never),
      writeContract: (args) => fc.writeContract(args as never),
      sendTransaction: (args) => fc.sendTransaction(args),
      waitForTransactionReceipt: (args) => fc.waitForTransactionReceipt(args),
      getCode: (args) => fc.getCode(args),
    }),
    networks: "eip155:84532",
  });

  return {
    chains,
    api,
    other,
    attacker,
    gate,
    price: { atomic: 100000n, usd: "0.10", description: "tier prototype" },
    balance: (rail, address) => chains.balance(rail, address),
    allowance: (owner, spender) =>
      basePublic.readContract({
        address: chains.base.usdc,
        abi: erc20Abi,
        functionName: "allowance",
        args: [owner, spender],
      }),
    request: (call) =>
      new Request(call.url, {
        method: call.method,
        headers: call.headers,
        ...(call.body.length && call.method !== "GET" ? { body: new Uint8Array(call.body) } : {}),
      }),
    x402Required(accepts, extra = {}, version = 2) {
      const value =
        version === 2
          ? {
              x402Version: 2,
              error: "Payment required",
              resource: {
                url: `${api.url}/tiers/v1/prototype`,
                description: "tier",
                mimeType: "application/json",
              },
              accepts,
              ...extra,
            }
          : { x402Version: 1, error: "Payment required", accepts, ...extra };
      return Buffer.from(JSON.stringify(value)).toString("base64");
    },
    async settleX402(header, requirements) {
      const payload = JSON.parse(Buffer.from(header, "base64").toString("utf8")) as PaymentPayload;
      const req = requirements as unknown as PaymentRequirements;
      const verified = await facilitator.verify(payload, req);
      if (!verified.isValid)
        throw new Error(`x402 verify: ${verified.invalidReason} ${verified.invalidMessage}`);
      const settled = await facilitator.settle(payload, req);
      if (!settled.success) throw new Error(`x402 settle: ${settled.errorReason}`);
      return settled.transaction as Hex;
    },
    mppChallenge(request, opts = {}) {
      const challenge = Challenge.from({
        realm: "127.0.0.1",
        method: "tempo",
        intent: "charge",
        request,
        expires: new Date(Date.now() + (opts.expiresInSeconds ?? 300) * 1000).toISOString(),
        secretKey,
      } as Parameters<typeof Challenge.from>[0]);
      return Challenge.serialize(challenge);
    },
    async broadcastMpp(authorization) {
      const credential = Credential.deserialize(authorization);
      const payload = credential.payload as { type: string; signature?: Hex; hash?: Hex };
      if (payload.type === "hash" && payload.hash) return payload.hash;
      if (payload.type !== "transaction" || !payload.signature) throw new Error("not a tempo transaction");
      const hash = await tempoPublic.sendRawTransaction({ serializedTransaction: payload.signature });
      const receipt = await tempoPublic.waitForTransactionReceipt({ hash });
      if (receipt.status !== "success") throw new Error(`tempo transaction ${hash} reverted`);
      return hash;
    },
    async broadcastBase(raw) {
      const hash = await basePublic.sendRawTransaction({ serializedTransaction: raw });
      await basePublic.waitForTransactionReceipt({ hash });
      return hash;
    },
    async close() {
      await Promise.all([api.close(), other.close()]);
      await chains.stop();
    },
  };
}

/** The body a tier purchase answers with. */
export function tierBody(wallet: string, action = "subscribe") {
  const now = Date.now();
  return {
    wallet,
    action,
    tier: "prototype",
    previous_tier: null,
    lease_started_at: new Date(now).toISOString(),
    lease_expires_at: new Date(now + 7 * 86_400_000).toISOString(),
    allowance_remaining_usd_micros: 0,
  };
}

/** What an honest paid route does after settling, unless a test says otherwise. */
export type AfterSettle = (call: Call, settlement: Settlement) => Promise<Reply | "drop"> | Reply | "drop";

/**
 * The sandbox's paid-route behaviour on `origin` for `POST /tiers/v1/:tier`: the gate's dual-rail 402,
 * real verification and settlement, an idempotency store that replays completed keys. `afterSettle`
 * replaces the delivery (to lose it, 402, redirect, …); the default delivers and stores the result.
 */
export function honestTier(h: Hostile, origin: Origin, afterSettle?: AfterSettle): Handler {
  const completed = new Map<string, Reply>();
  return async (call) => {
    if (call.method === "GET" && call.path.startsWith("/tiers/v1")) {
      return {
        status: 200,
        body: { tiers: { prototype: { price: "0.10", price_atomic: "100000", lease_days: 7 } } },
      };
    }
    const key = call.headers["idempotency-key"];
    const wallet = call.headers["sign-in-with-x"]
      ? (
          JSON.parse(Buffer.from(call.headers["sign-in-with-x"], "base64").toString("utf8")) as {
            address: string;
          }
        ).address
      : "0x";
    const stored = key ? completed.get(`${wallet}|${key}`) : undefined;
    if (stored) return { ...stored, headers: { ...stored.headers, "x-run402-payment-deduplicated": "true" } };
    const outcome = await h.gate.check(h.request({ ...call, url: `${origin.url}${call.path}` }), h.price);
    if (outcome.kind !== "verified") return outcome.response;
    const settlement = await outcome.settle();
    if (afterSettle) return afterSettle(call, settlement);
    const reply: Reply = {
      status: 200,
      headers: { "x-run402-settlement-rail": settlement.rail, ...settlement.receiptHeaders },
      body: tierBody(wallet),
    };
    if (key) completed.set(`${wallet}|${key}`, reply);
    return reply;
  };
}
