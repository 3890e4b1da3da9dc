/**
 * The sandbox's payment gate: one 402 that offers both rails, x402 credentials verified and settled by
 * the in-process @x402/evm facilitator on the local base chain, mpp credentials verified (by
 * broadcasting) by the real mppx tempo charge server on the local tempo chain.
 */
import { x402Facilitator } from "@x402/core/facilitator";
import type { PaymentPayload, PaymentRequirements, SettleResponse } from "@x402/core/types";
import { toFacilitatorEvmSigner } from "@x402/evm";
import { registerExactEvmScheme } from "@x402/evm/exact/facilitator";
import { Credential, Receipt } from "mppx";
import { Mppx, Store, tempo } from "mppx/server";
import {
  type Address,
  type Chain,
  createClient,
  createWalletClient,
  formatUnits,
  getAddress,
  type Hex,
  http,
  isAddress,
  publicActions,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { getTransactionReceipt } from "viem/actions";
import { baseSepolia, tempoModerato } from "viem/chains";
import type { Chains } from "../chains/index.js";
import type { GateOutcome, GateResponse, PaymentGate, Price, Rail, Settlement } from "./types.js";

/** Options for {@link createPaymentGate}. */
export interface CreatePaymentGateOptions {
  chains: Chains;
  /** HMAC key binding mpp challenges to this gate; at least 32 bytes. */
  secretKey: string;
  /** mpp realm (protection space). @default mppx's choice: MPP_REALM or the request's hostname */
  realm?: string;
}

const BASE_NETWORK = "eip155:84532";
const BASE_NETWORK_V1 = "base-sepolia";
const TEMPO_NETWORK = "eip155:42431";
const DECIMALS = 6;
const MAX_TIMEOUT_SECONDS = 300;

interface ErrorEnvelope {
  code: "PAYMENT_REQUIRED" | "PAYMENT_INVALID";
  message: string;
  category: "payment";
  retryable: true;
  safe_to_retry: true;
  next_actions: { type: "submit_payment" }[];
  details?: Record<string, unknown>;
}

type Decoded = { ok: true; value: Record<string, unknown> } | { ok: false; reason: string };

/** Standard base64 of UTF-8 JSON, as x402 headers require. */
function encodeHeader(value: unknown): string {
  return Buffer.from(JSON.stringify(value), "utf8").toString("base64");
}

/** Decodes base64 or base64url JSON; never throws. */
function decodeHeader(header: string): Decoded {
  const text = header.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return { ok: false, reason: "header is not base64" };
  try {
    // Node's base64 decoder accepts the URL-safe alphabet too.
    const value: unknown = JSON.parse(Buffer.from(text, "base64").toString("utf8"));
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return { ok: false, reason: "header is not a JSON object" };
    }
    return { ok: true, value: value as Record<string, unknown> };
  } catch {
    return { ok: false, reason: "header is not base64-encoded JSON" };
  }
}

/** x402's reason code plus the useful line of its (often multi-paragraph viem) message. */
function describeFailure(reason: string | undefined, message: string | undefined): string {
  const lines = (message ?? "").split("\n").map((line) => line.trim());
  const detail = lines.find((line) => line.startsWith("Details: "))?.slice("Details: ".length) ?? lines[0];
  if (!reason) return detail || "x402 verification failed";
  return detail && detail !== reason ? `${reason} (${detail})` : reason;
}

/** The address in an mpp credential's `did:pkh:eip155:<chain>:<address>` source, if any. */
function sourceAddress(authorization: string | null): Address | undefined {
  try {
    const payment = authorization ? Credential.extractPaymentScheme(authorization) : null;
    const source = payment ? Credential.deserialize(payment).source : undefined;
    const address = source?.split(":").pop();
    return address && isAddress(address) ? getAddress(address) : undefined;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Creates the gate the sandbox API calls on every paid route. */
export function createPaymentGate(options: CreatePaymentGateOptions): PaymentGate {
  const { chains, secretKey, realm } = options;
  const treasury = chains.treasury;
  const usdc = chains.base.usdc;
  const pathUsd = chains.tempo.pathUsd;

  const baseChain: Chain = { ...baseSepolia, rpcUrls: { default: { http: [chains.base.rpcUrl] } } };
  const facilitatorAccount = privateKeyToAccount(chains.facilitator.privateKey);
  const facilitatorClient = createWalletClient({
    account: facilitatorAccount,
    chain: baseChain,
    transport: http(chains.base.rpcUrl),
  }).extend(publicActions);
  const facilitator = registerExactEvmScheme(new x402Facilitator(), {
    // viem's overloaded action types are stricter than x402's structural signer; the calls are the same.
    signer: toFacilitatorEvmSigner({
      address: facilitatorAccount.address,
      readContract: (args) => facilitatorClient.readContract(args as never),
      verifyTypedData: (args) => facilitatorClient.verifyTypedData(args as never),
      writeContract: (args) => facilitatorClient.writeContract(args as never),
      sendTransaction: (args) => facilitatorClient.sendTransaction(args),
      waitForTransactionReceipt: (args) => facilitatorClient.waitForTransactionReceipt(args),
      getCode: (args) => facilitatorClient.getCode(args),
    }),
    networks: BASE_NETWORK,
  });

  const tempoChain: Chain = { ...tempoModerato, rpcUrls: { default: { http: [chains.tempo.rpcUrl] } } };
  const tempoClient = createClient({ chain: tempoChain, transport: http(chains.tempo.rpcUrl) });
  const mppx = Mppx.create({
    secretKey,
    ...(realm === undefined ? {} : { realm }),
    methods: [
      tempo.charge({
        currency: pathUsd,
        decimals: DECIMALS,
        recipient: treasury,
        getClient: () => tempoClient,
        // One store per gate: tx-hash replay markers must outlive any single request.
        store: Store.memory(),
      }),
    ],
  });

  // EIP-3009 authorizations that have started settling: the chain refuses a second use anyway, but a
  // concurrent duplicate should fail here rather than after the API has done its work.
  const settling = new Set<string>();
  // One facilitator account: concurrent sends would read the same pending nonce, and viem's nonce
  // manager leaves a gap (and a hung receipt wait) when a consumed nonce is never broadcast. Settle
  // one at a time; each takes milliseconds on anvil.
  let settleQueue: Promise<unknown> = Promise.resolve();
  function serially<T>(task: () => Promise<T>): Promise<T> {
    const run = settleQueue.then(task, task);
    settleQueue = run.catch(() => undefined);
    return run;
  }

  function requirementsV2(price: Price): PaymentRequirements {
    return {
      scheme: "exact",
      network: BASE_NETWORK,
      amount: price.atomic.toString(),
      asset: usdc,
      payTo: treasury,
      maxTimeoutSeconds: MAX_TIMEOUT_SECONDS,
      extra: { name: "USDC", version: "2" },
    };
  }

  function requirementsV1(request: Request, price: Price) {
    return {
      scheme: "exact",
      network: BASE_NETWORK_V1,
      maxAmountRequired: price.atomic.toString(),
      resource: request.url,
      description: price.description,
      mimeType: "application/json",
      outputSchema: {},
      payTo: treasury,
      maxTimeoutSeconds: MAX_TIMEOUT_SECONDS,
      asset: usdc,
      extra: { name: "USDC", version: "2" },
    };
  }

  function mppRoute(price: Price) {
    return mppx["tempo/charge"]({
      amount: formatUnits(price.atomic, DECIMALS),
      description: price.description,
    });
  }

  /** Both rails' challenges for `price`, with the error envelope in the body. */
  async function challengeResponse(
    request: Request,
    price: Price,
    envelope: ErrorEnvelope,
  ): Promise<GateResponse> {
    const paymentRequired = {
      x402Version: 2,
      error: envelope.message,
      resource: { url: request.url, description: price.description, mimeType: "application/json" },
      accepts: [requirementsV2(price)],
    };
    // Without a credential mppx mints a fresh challenge; strip any rejected one first.
    const headers = new Headers(request.headers);
    headers.delete("authorization");
    const mpp = await mppRoute(price)(new Request(request.url, { method: request.method, headers }));
    const wwwAuthenticate = mpp.status === 402 ? mpp.challenge.headers.get("WWW-Authenticate") : null;
    if (!wwwAuthenticate) throw new Error("mppx did not issue a challenge");
    return {
      status: 402,
      headers: {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        "PAYMENT-REQUIRED": encodeHeader(paymentRequired),
        "WWW-Authenticate": wwwAuthenticate,
      },
      body: { ...envelope, ...paymentRequired },
    };
  }

  function envelope(
    code: ErrorEnvelope["code"],
    message: string,
    details?: Record<string, unknown>,
  ): ErrorEnvelope {
    return {
      code,
      message,
      category: "payment",
      retryable: true,
      safe_to_retry: true,
      next_actions: [{ type: "submit_payment" }],
      ...(details ? { details } : {}),
    };
  }

  async function invalid(
    request: Request,
    price: Price,
    rail: Rail | null,
    reason: string,
  ): Promise<GateOutcome> {
    const body = envelope("PAYMENT_INVALID", `Payment credential refused: ${reason.replace(/\.+$/, "")}.`, {
      rail,
      reason,
    });
    return { kind: "invalid", rail, reason, response: await challengeResponse(request, price, body) };
  }

  async function checkX402(request: Request, price: Price, header: string): Promise<GateOutcome> {
    const decoded = decodeHeader(header);
    if (!decoded.ok) return invalid(request, price, "x402", `malformed x402 payment: ${decoded.reason}`);
    const payload = decoded.value;
    const version = payload["x402Version"];
    if (version !== 1 && version !== 2) {
      return invalid(request, price, "x402", `unsupported x402Version ${JSON.stringify(version)}`);
    }
    const inner = payload["payload"];
    const authorization = isRecord(inner) ? inner["authorization"] : undefined;
    if (!isRecord(inner) || !isRecord(authorization) || typeof inner["signature"] !== "string") {
      return invalid(request, price, "x402", "malformed x402 payment: expected an EIP-3009 authorization");
    }
    if (version === 2 && !isRecord(payload["accepted"])) {
      return invalid(request, price, "x402", "malformed x402 payment: missing accepted requirements");
    }
    // Our own requirements, never the client's echo: the facilitator checks the signed authorization
    // against these (amount, payTo, asset domain, network).
    const requirements = (
      version === 2 ? requirementsV2(price) : requirementsV1(request, price)
    ) as PaymentRequirements;
    const paymentPayload = payload as unknown as PaymentPayload;

    let verified: Awaited<ReturnType<typeof facilitator.verify>>;
    try {
      verified = await facilitator.verify(paymentPayload, requirements);
    } catch (error) {
      return invalid(request, price, "x402", `x402 verification failed: ${(error as Error).message}`);
    }
    if (!verified.isValid) {
      return invalid(
        request,
        price,
        "x402",
        describeFailure(verified.invalidReason, verified.invalidMessage),
      );
    }
    const payer = getAddress(String(verified.payer ?? authorization["from"]));
    const key = `${String(authorization["from"]).toLowerCase()}:${String(authorization["nonce"]).toLowerCase()}`;
    if (settling.has(key))
      return invalid(request, price, "x402", "this authorization is already being settled");

    let settlement: Promise<Settlement> | undefined;
    return {
      kind: "verified",
      rail: "x402",
      payer,
      settle() {
        settlement ??= (async () => {
          if (settling.has(key)) throw new Error("x402 settlement refused: authorization already settling");
          settling.add(key);
          const result: SettleResponse = await serially(() =>
            facilitator.settle(paymentPayload, requirements),
          );
          if (!result.success) {
            settling.delete(key);
            throw new Error(
              `x402 settlement failed: ${describeFailure(result.errorReason, result.errorMessage)}`,
            );
          }
          const receipt = {
            success: true,
            transaction: result.transaction,
            network: result.network,
            payer: result.payer ?? payer,
          };
          return {
            rail: "x402",
            reference: result.transaction as Hex,
            amount: price.atomic.toString(),
            asset: usdc,
            network: BASE_NETWORK,
            payer,
            recipient: treasury,
            receiptHeaders: {
              [version === 2 ? "PAYMENT-RESPONSE" : "X-PAYMENT-RESPONSE"]: encodeHeader(receipt),
            },
          };
        })();
        return settlement;
      },
    };
  }

  async function checkMpp(request: Request, price: Price): Promise<GateOutcome> {
    let result: Awaited<ReturnType<ReturnType<typeof mppRoute>>>;
    try {
      result = await mppRoute(price)(request);
    } catch (error) {
      return invalid(request, price, "mpp", `mpp verification failed: ${(error as Error).message}`);
    }
    if (result.status !== 200) {
      const problem = (await result.challenge.json().catch(() => null)) as {
        detail?: string;
        title?: string;
      } | null;
      return invalid(request, price, "mpp", problem?.detail ?? problem?.title ?? "mpp verification failed");
    }
    const headerValue = result.withReceipt(new Response(null)).headers.get("Payment-Receipt");
    if (!headerValue) return invalid(request, price, "mpp", "mppx returned no receipt");
    const receipt = Receipt.deserialize(headerValue);
    const reference = receipt.reference as Hex;
    // mppx has already broadcast and confirmed the transfer; the chain says who paid. Money has moved,
    // so an RPC hiccup here must not lose the payment: fall back to the credential's did:pkh source.
    const payer = await getTransactionReceipt(tempoClient, { hash: reference }).then(
      (txReceipt) => getAddress(txReceipt.from),
      () => sourceAddress(request.headers.get("authorization")),
    );
    if (!payer) throw new Error(`mpp payment ${reference} settled but its payer could not be determined`);
    const settlement: Settlement = {
      rail: "mpp",
      reference,
      amount: price.atomic.toString(),
      asset: pathUsd,
      network: TEMPO_NETWORK,
      payer,
      recipient: treasury,
      receiptHeaders: { "Payment-Receipt": headerValue },
    };
    return { kind: "verified", rail: "mpp", payer, settle: async () => settlement };
  }

  return {
    async check(request, price) {
      const signature = request.headers.get("payment-signature") ?? request.headers.get("x-payment");
      if (signature !== null) return checkX402(request, price, signature);
      const authorization = request.headers.get("authorization");
      if (authorization !== null && /^\s*payment\s/i.test(authorization)) return checkMpp(request, price);
      const body = envelope("PAYMENT_REQUIRED", `Payment required: ${price.description} (${price.usd} USD).`);
      return { kind: "challenge", response: await challengeResponse(request, price, body) };
    },
  };
}
