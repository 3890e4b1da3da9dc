/**
 * SIWX (`SIGN-IN-WITH-X`): standard base64 of JSON carrying an EIP-4361 message's fields and an
 * EIP-191 signature over that message's text. The server rebuilds the text from the fields and
 * recovers the signer.
 */
import { getAddress, isAddress, isHex, recoverMessageAddress } from "viem";
import { z } from "zod";
import { ApiError, authRequired } from "./errors.js";

/** The JSON inside the header. */
export interface SiwxPayload {
  domain: string;
  address: string;
  statement?: string;
  uri: string;
  version: string;
  chainId: string;
  type?: string;
  nonce: string;
  issuedAt: string;
  expirationTime?: string;
  resources?: string[];
  signature: string;
}

const Payload = z.object({
  domain: z.string().min(1),
  address: z.string(),
  statement: z.string().min(1),
  uri: z.string().min(1),
  version: z.literal("1"),
  chainId: z.string().regex(/^eip155:\d+$/, "chainId must be a CAIP-2 string like eip155:84532"),
  type: z.literal("eip191").optional(),
  nonce: z.string().regex(/^[A-Za-z0-9]{8,}$/, "nonce must be at least 8 alphanumeric characters"),
  issuedAt: z.string(),
  expirationTime: z.string(),
  resources: z.array(z.string()).optional(),
  signature: z.string(),
});

/** The EIP-4361 text of a payload (what the wallet signed). */
export function siwxMessage(p: Omit<SiwxPayload, "signature">): string {
  const lines = [`${p.domain} wants you to sign in with your Ethereum account:`, p.address, ""];
  if (p.statement) lines.push(p.statement, "");
  lines.push(
    `URI: ${p.uri}`,
    `Version: ${p.version}`,
    `Chain ID: ${p.chainId.replace(/^eip155:/, "")}`,
    `Nonce: ${p.nonce}`,
    `Issued At: ${p.issuedAt}`,
  );
  if (p.expirationTime) lines.push(`Expiration Time: ${p.expirationTime}`);
  if (p.resources?.length) lines.push("Resources:", ...p.resources.map((r) => `- ${r}`));
  return lines.join("\n");
}

/**
 * A SIGN-IN-WITH-X header that is present but does not verify. Run402 answers it 402, the x402
 * sign-in-with-x pattern (kychee-com/run402 core/src/siwx-integration.integ.ts, against the live API:
 * an empty payload, a tampered signature, a missing statement, a numeric chainId). The body Run402
 * sends with it is not public; this is the canonical envelope, with no payment challenge (no
 * PAYMENT-REQUIRED header), so no client takes it for a price. A missing header stays 401
 * AUTH_REQUIRED.
 */
function invalid(reason: string): ApiError {
  return new ApiError(402, "SIWX_INVALID", `Invalid SIGN-IN-WITH-X header: ${reason}.`, {
    category: "auth",
    next_actions: [{ type: "authenticate", auth: "SIWX" }],
  });
}

const MAX_SKEW_MS = 60_000;
const MAX_VALIDITY_MS = 10 * 60_000;

/**
 * Verifies a SIGN-IN-WITH-X header against the request URL (`uri` must equal origin + path + query,
 * `domain` its hostname) at wall-clock `nowMs`; returns the checksummed wallet address.
 */
export async function verifySiwx(
  header: string | undefined,
  requestUrl: URL,
  nowMs = Date.now(),
): Promise<string> {
  if (!header) throw authRequired("SIWX");
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(header, "base64").toString("utf8"));
  } catch {
    throw invalid("not base64 JSON");
  }
  const parsed = Payload.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(`${issue?.path.join(".") || "payload"}: ${issue?.message ?? "malformed"}`);
  }
  const p = parsed.data;
  if (!isAddress(p.address, { strict: false })) throw invalid("address is not an EVM address");
  if (!isHex(p.signature) || p.signature.length !== 132)
    throw invalid("signature is not a 65-byte hex string");
  if (p.domain !== requestUrl.hostname)
    throw invalid(`domain ${p.domain} does not match ${requestUrl.hostname}`);
  const expectedUri = requestUrl.origin + requestUrl.pathname + requestUrl.search;
  if (p.uri !== expectedUri) throw invalid(`uri ${p.uri} does not match the request ${expectedUri}`);
  const issuedAt = Date.parse(p.issuedAt);
  const expiresAt = Date.parse(p.expirationTime);
  if (Number.isNaN(issuedAt) || Number.isNaN(expiresAt))
    throw invalid("issuedAt/expirationTime are not ISO dates");
  if (issuedAt > nowMs + MAX_SKEW_MS) throw invalid("issuedAt is in the future");
  if (expiresAt <= nowMs) throw invalid("the message has expired");
  if (expiresAt > issuedAt + MAX_VALIDITY_MS)
    throw invalid("expirationTime is more than 10 minutes after issuedAt");
  // Clients that format dates with Date#toISOString (viem's createSiweMessage does) sign the
  // normalized form even when the JSON carries another ISO spelling; accept either text.
  const normalized = {
    ...p,
    issuedAt: new Date(issuedAt).toISOString(),
    expirationTime: new Date(expiresAt).toISOString(),
  };
  const texts = [...new Set([siwxMessage(p), siwxMessage(normalized)])];
  for (const message of texts) {
    let signer: string;
    try {
      signer = await recoverMessageAddress({ message, signature: p.signature });
    } catch {
      throw invalid("the signature cannot be recovered");
    }
    if (signer.toLowerCase() === p.address.toLowerCase()) return getAddress(signer);
  }
  throw invalid("the signature does not match address");
}
