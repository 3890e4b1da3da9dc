import type { Settlement } from "../Receipt.js";

/** What the client reports through `onEvent`. Never carries keys or credentials. */
export type Run402Event =
  | { type: "request"; method: string; url: string; status: number }
  | { type: "retry"; method: string; url: string; status: number; attempt: number; waitMs: number }
  /** `offered`: the rails this client may pay on (the configured one, the fallback) that the 402 offers. */
  | { type: "payment.challenge"; url: string; offered: string[]; chosen: string }
  | { type: "payment.refused"; url: string; rail: string; code: string; message: string }
  | {
      type: "payment.signing";
      url: string;
      rail: string;
      network: string;
      amountUsd: string;
      recipient: string;
      idempotencyKey: string;
    }
  | { type: "payment.settled"; url: string; settlement: Settlement }
  | { type: "payment.replayed"; url: string; idempotencyKey: string; settlement: Settlement | null }
  /** A repeated keyed request was answered by a new sale, not a replay of the earlier payment: a second purchase. */
  | { type: "payment.repurchased"; url: string; idempotencyKey: string; settlement: Settlement }
  | {
      type: "payment.pending";
      url: string;
      idempotencyKey: string;
      waitMs: number;
      /** Why: the server holds the payment in flight, or a signed credential is still valid on chain until this time (ISO). */
      validUntil?: string | undefined;
    }
  /** What the chain says about a credential an earlier attempt left maybe-paid. */
  | {
      type: "payment.resolved";
      url: string;
      idempotencyKey: string;
      outcome: "paid" | "unpaid";
      /** How it became unpaid: it expired unused, or was cancelled on chain. */
      how: "used" | "expired" | "cancelled";
      reference: string | null;
    }
  | { type: "payment.cancelling"; url: string; idempotencyKey: string; network: string }
  /** An earlier run's purchase the journal holds unfinished (read only, no request): what apply will resolve. */
  | { type: "payment.unfinished"; intentId: string; state: "pending" | "paid"; amountUsd: string | null }
  /** A deploy uploaded one more content object: `done` of `total`, bytes so far of all. */
  | { type: "upload"; sha256: string; done: number; total: number; bytesDone: number; bytesTotal: number }
  /** A deploy operation reported a status while it was polled. */
  | { type: "deploy.status"; operationId: string; status: string };
