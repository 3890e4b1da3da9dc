/** Decodes standard base64 or base64url, padded or not (x402 uses the first, MPP the second). */
export function decodeTolerant(value: string): string {
  const normalized = value.trim().replace(/-/g, "+").replace(/_/g, "/").replace(/=+$/, "");
  if (!/^[A-Za-z0-9+/]*$/.test(normalized)) throw new Error("not base64");
  const padded = normalized + "=".repeat((4 - (normalized.length % 4)) % 4);
  return Buffer.from(padded, "base64").toString("utf8");
}

/** Decodes a base64 (either alphabet) JSON header value. */
export function decodeJson(value: string): unknown {
  return JSON.parse(decodeTolerant(value));
}

/** Standard, padded base64 of UTF-8 text. */
export function encodeStandard(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}
