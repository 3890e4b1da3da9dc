import { randomBytes } from "node:crypto";
import type { LocalAccount } from "viem";
import { createSiweMessage } from "viem/siwe";
import { encodeStandard } from "./internal/base64.js";

/** The JSON carried (base64) in the `SIGN-IN-WITH-X` header. */
export type Payload = {
  domain: string;
  address: string;
  statement: string;
  uri: string;
  version: "1";
  chainId: string;
  type: "eip191";
  nonce: string;
  issuedAt: string;
  expirationTime: string;
  signature: `0x${string}`;
};

/** Header name. */
export const header = "SIGN-IN-WITH-X";
/** Statement Run402 expects. */
export const statement = "Sign in to Run402";
/** CAIP-2 chain Run402 signs in on (Base Sepolia, used for mainnet wallets too). */
export const chainId = "eip155:84532";

/** Options for {@link create}. */
export type CreateOptions = {
  account: LocalAccount;
  /** The full URL of this request (API base origin + path + query). */
  url: URL | string;
  /** @default new Date() */
  now?: Date | undefined;
  /** Lifetime of the sign-in. @default 300 */
  ttlSeconds?: number | undefined;
};

/** Builds the EIP-4361 text for a payload (without its signature). */
export function message(payload: Omit<Payload, "signature">): string {
  return createSiweMessage({
    domain: payload.domain,
    address: payload.address as `0x${string}`,
    statement: payload.statement,
    uri: payload.uri,
    version: payload.version,
    chainId: Number(payload.chainId.split(":")[1]),
    nonce: payload.nonce,
    issuedAt: new Date(payload.issuedAt),
    expirationTime: new Date(payload.expirationTime),
  });
}

/** Signs a fresh sign-in for one request: domain = hostname (no port), uri = origin + path + query. */
export async function create(options: CreateOptions): Promise<Payload> {
  const { account, now = new Date(), ttlSeconds = 300 } = options;
  const url = new URL(options.url);
  const unsigned = {
    domain: url.hostname,
    address: account.address,
    statement,
    uri: `${url.origin}${url.pathname}${url.search}`,
    version: "1" as const,
    chainId,
    type: "eip191" as const,
    nonce: randomBytes(16).toString("hex"),
    issuedAt: now.toISOString(),
    expirationTime: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
  };
  const signature = await account.signMessage({ message: message(unsigned) });
  return { ...unsigned, signature };
}

/** Serializes a payload as the header value (standard base64 of JSON). */
export function serialize(payload: Payload): string {
  return encodeStandard(JSON.stringify(payload));
}
