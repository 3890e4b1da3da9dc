import { z } from "zod";
import { decodeJson } from "./internal/base64.js";

/** A rail as named in `X-Run402-Settlement-Rail`. */
export type SettlementRail = "x402" | "mpp" | "allowance";

/** One settled purchase, as the client saw it. */
export type Settlement = {
  rail: SettlementRail;
  /** On-chain transaction hash; null for `allowance`. */
  reference: string | null;
  /** CAIP-2 network id; null for `allowance`. */
  network: string | null;
  /** Token contract address; null for `allowance`. */
  asset: string | null;
  /** Atomic units (6 decimals), decimal string. */
  amountAtomic: string;
  /** The same amount in USD, decimal string ("0.10"). */
  amountUsd: string;
  payer: string;
  recipient: string | null;
  /** ISO-8601 time of settlement (the receipt's, else when the client saw it). */
  settledAt: string;
  idempotencyKey: string;
};

const x402Schema = z.object({
  success: z.boolean(),
  transaction: z.string(),
  network: z.string(),
  payer: z.string().optional(),
  errorReason: z.string().optional(),
});
/** x402 `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE` payload. */
export type X402Receipt = z.infer<typeof x402Schema>;

const mppSchema = z.object({
  method: z.string(),
  reference: z.string(),
  status: z.string(),
  timestamp: z.string(),
});
/** MPP `Payment-Receipt` payload. */
export type MppReceipt = z.infer<typeof mppSchema>;

/** Decodes an x402 receipt header (standard base64 expected; base64url tolerated). */
export function fromX402Header(value: string): X402Receipt {
  return x402Schema.parse(decodeJson(value));
}

/** Decodes an MPP `Payment-Receipt` header (base64url expected; standard base64 tolerated). */
export function fromMppHeader(value: string): MppReceipt {
  return mppSchema.parse(decodeJson(value));
}

/** What the response headers say about how a request was settled. */
export type Observed =
  | { rail: "x402"; receipt: X402Receipt }
  | { rail: "mpp"; receipt: MppReceipt }
  | { rail: "allowance" }
  | null;

/** Reads the settlement rail and receipt from response headers; infers the rail from the receipt when the rail header is absent. */
export function fromHeaders(headers: Headers): Observed {
  const railHeader = headers.get("x-run402-settlement-rail")?.trim().toLowerCase();
  const x402Value = headers.get("payment-response") ?? headers.get("x-payment-response");
  const mppValue = headers.get("payment-receipt");
  if (railHeader === "allowance") return { rail: "allowance" };
  if ((railHeader === "x402" || !railHeader) && x402Value)
    return { rail: "x402", receipt: fromX402Header(x402Value) };
  if ((railHeader === "mpp" || !railHeader) && mppValue)
    return { rail: "mpp", receipt: fromMppHeader(mppValue) };
  return null;
}

export { atomicToUsd, usdToAtomic } from "./money.js";
