import { createHash } from "node:crypto";
import { canonicalizeJson } from "@run402/release";

/** Options for {@link deriveKey}. */
export type DeriveKeyOptions = {
  /** The API base the request goes to: the same intent against two APIs gets two keys. */
  scope?: string | undefined;
  /** The caller's stable intent id (e.g. a resource URN + lease period). */
  intent: string;
  method: string;
  /** Path relative to the API base, without query noise the server ignores. */
  route: string;
  body?: unknown;
};

/** The `Idempotency-Key` for a purchase: a hash of intent + route + body, so a rerun sends the same key. */
export function deriveKey(options: DeriveKeyOptions): string {
  // Keys sorted at every level, so the same body always gives the same key.
  const material = canonicalizeJson([
    ...(options.scope === undefined ? ["run402-idempotency/v1"] : ["run402-idempotency/v2", options.scope]),
    options.intent,
    options.method.toUpperCase(),
    options.route,
    options.body ?? null,
  ]);
  return `r402_${createHash("sha256").update(material).digest("hex")}`;
}
