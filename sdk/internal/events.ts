import type { Settlement } from "../Receipt.js";

/** What the client reports through `onEvent`. Never carries keys or credentials. */
export type Run402Event =
  | { type: "request"; method: string; url: string; status: number }
  | { type: "retry"; method: string; url: string; status: number; attempt: number; waitMs: number }
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
  | { type: "payment.pending"; url: string; idempotencyKey: string; waitMs: number }
  /** A deploy uploaded one more content object: `done` of `total`, bytes so far of all. */
  | { type: "upload"; sha256: string; done: number; total: number; bytesDone: number; bytesTotal: number }
  /** A deploy operation reported a status while it was polled. */
  | { type: "deploy.status"; operationId: string; status: string };
