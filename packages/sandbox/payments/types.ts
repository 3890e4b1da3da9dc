/**
 * The contract between the sandbox's HTTP API (sandbox/api) and its payment verification
 * (sandbox/payments). The API decides *what* costs money and *when* the resource is delivered; the
 * gate decides whether a request carries a valid payment for a price, on which rail, and settles it.
 */
import type { Address, Hex } from "viem";

/** A payment rail as named in `X-Run402-Settlement-Rail`. */
export type Rail = "x402" | "mpp";

/** What a paid route costs. */
export interface Price {
  /** Atomic units (6 decimals on both rails): prototype 100000n. */
  atomic: bigint;
  /** The same amount in USD as a decimal string, e.g. "0.10". */
  usd: string;
  /** Human description placed in both challenges. */
  description: string;
}

/** A settled payment, as the ledger records it. */
export interface Settlement {
  rail: Rail;
  /** On-chain transaction hash. */
  reference: Hex;
  /** Atomic units, decimal string. */
  amount: string;
  /** Token contract address. */
  asset: Address;
  /** CAIP-2 network id, e.g. "eip155:84532". */
  network: string;
  payer: Address;
  recipient: Address;
  /** Response headers that prove the settlement: PAYMENT-RESPONSE or Payment-Receipt. */
  receiptHeaders: Record<string, string>;
}

/** A ready-to-send HTTP answer produced by the gate. */
export interface GateResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export type GateOutcome =
  /** No payment on the request: answer with the dual-rail 402. */
  | { kind: "challenge"; response: GateResponse }
  /** A payment header that is malformed, replayed, underpaid or fails verification. Nothing settled. */
  | { kind: "invalid"; rail: Rail | null; reason: string; response: GateResponse }
  /**
   * A valid payment. Nothing has moved yet for x402; call `settle()` once the API has checked
   * everything else, right before delivering. (For mpp, mppx verifies by broadcasting, so `settle()`
   * returns the settlement that already happened.) `settle()` throws if settlement fails on chain.
   */
  | { kind: "verified"; rail: Rail; payer: Address; settle(): Promise<Settlement> };

/** Verifies and settles payments for the sandbox API. */
export interface PaymentGate {
  /**
   * Inspects `request` (its payment headers and URL) against `price`.
   * `request.url` must be the absolute URL the client called: it goes into `resource.url`.
   */
  check(request: Request, price: Price): Promise<GateOutcome>;
}
