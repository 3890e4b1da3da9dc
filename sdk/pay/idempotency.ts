import { createHash } from "node:crypto";

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value as Record<string, unknown>)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}

/** Options for {@link deriveKey}. */
export type DeriveKeyOptions = {
  /** The caller's stable intent id (e.g. a resource URN + lease period). */
  intent: string;
  method: string;
  /** Path relative to the API base, without query noise the server ignores. */
  route: string;
  body?: unknown;
};

/** The `Idempotency-Key` for a purchase: a hash of intent + route + body, so a rerun sends the same key. */
export function deriveKey(options: DeriveKeyOptions): string {
  const material = JSON.stringify([
    "run402-idempotency/v1",
    options.intent,
    options.method.toUpperCase(),
    options.route,
    canonical(options.body ?? null),
  ]);
  return `r402_${createHash("sha256").update(material).digest("hex")}`;
}
