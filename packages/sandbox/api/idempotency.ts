/** `Idempotency-Key` handling shared by paid routes and project creation. */
import type { IdempotencyRecord, StateStore } from "../state.js";
import { conflict } from "./errors.js";
import type { Ctx, Reply } from "./http.js";

/** JSON with sorted keys, so equal payloads fingerprint equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** An idempotency slot claimed by a request. */
export interface IdempotencySlot {
  storeKey: string;
  key: string;
  fingerprint: string;
}

/**
 * Looks up the request's `Idempotency-Key` for `wallet`: a completed key replays (returned as a
 * Reply), another payload under it → 409, an in-flight payment → 409 PAYMENT_INTENT_PENDING. Without
 * a key returns null; otherwise the slot to complete later.
 */
export function claim(
  ctx: Ctx,
  store: StateStore,
  inFlight: ReadonlySet<string>,
  wallet: string,
  payload: unknown,
): { replay: Reply } | { slot: IdempotencySlot | null } {
  const key = ctx.header("idempotency-key");
  if (!key) return { slot: null };
  const storeKey = `${wallet.toLowerCase()}|${key}`;
  const fingerprint = `${ctx.route} ${ctx.url.pathname} ${canonicalJson(payload)}`;
  const done = store.state.idempotency[storeKey];
  if (done) {
    if (done.fingerprint !== fingerprint) {
      throw conflict("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used for a different request.", {
        next_actions: [{ type: "use_new_idempotency_key" }],
      });
    }
    return {
      replay: {
        status: done.status,
        // Run402's replay markers (kychee-com/run402 sdk/src/namespaces/pay.ts, responseSignalsReplay
        // and payResponseMetadata, at 2d17de43d5981d65c30a10defe9c84596bfa1724).
        headers: {
          ...done.headers,
          "x-run402-payment-deduplicated": "true",
          "x-run402-payment-delivery": "replay",
        },
        body: done.body,
      },
    };
  }
  if (inFlight.has(storeKey)) {
    throw conflict(
      "PAYMENT_INTENT_PENDING",
      "A payment under this Idempotency-Key is in flight; repeat later.",
      {
        retryable: true,
        safe_to_retry: true,
        headers: { "retry-after": "1", "x-run402-payment-intent-state": "pending" },
        next_actions: [{ type: "retry", after_seconds: 1 }],
      },
    );
  }
  return { slot: { storeKey, key, fingerprint } };
}

/** Stores the response under the slot (the caller saves the state). */
export function complete(store: StateStore, slot: IdempotencySlot | null, reply: Reply, now: number): void {
  if (!slot) return;
  const record: IdempotencyRecord = {
    fingerprint: slot.fingerprint,
    status: reply.status,
    headers: reply.headers ?? {},
    body: reply.body,
    at: now,
  };
  store.state.idempotency[slot.storeKey] = record;
}
