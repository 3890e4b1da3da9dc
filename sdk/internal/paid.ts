import type { ApiError, RedirectError } from "../errors/http.js";
import type {
  IntentAlreadyPaidError,
  IntentInProgressError,
  PaymentCredentialMismatchError,
  PaymentOutcomeUnknownError,
  PaymentRejectedError,
  PaymentUndeliveredError,
  RailNotOfferedError,
  SpendPolicyError,
} from "../errors/payment.js";
import { deriveKey } from "../pay/idempotency.js";
import { type PaidExchange, scopeOf } from "../pay/payer.js";
import type { ActionContext } from "./context.js";

/** Errors an action that pays can throw: the API's, and the payment's. */
export type PaidActionError =
  | ApiError
  | RedirectError
  | SpendPolicyError
  | RailNotOfferedError
  | PaymentRejectedError
  | PaymentCredentialMismatchError
  | PaymentUndeliveredError
  | PaymentOutcomeUnknownError
  | IntentInProgressError
  | IntentAlreadyPaidError;

/**
 * `POST path` with `body`, signed in (SIWX) and paid for `intent`: keyed by the API's scope, the
 * intent, the route and the body, so a rerun of the same intent replays instead of paying again;
 * `maxPaymentUsd` refuses (before signing) a challenge above it.
 */
export function paidPost(
  ctx: ActionContext,
  path: string,
  body: Record<string, unknown>,
  intent: { intent: string; maxPaymentUsd?: number | undefined },
): Promise<PaidExchange> {
  const idempotencyKey = deriveKey({
    scope: scopeOf(ctx.transport.apiBase),
    intent: intent.intent,
    method: "POST",
    route: path,
    body,
  });
  return ctx.payer.fetch(
    ctx.transport,
    { method: "POST", path, body, auth: { kind: "siwx" } },
    { intentId: intent.intent, idempotencyKey, maxPaymentUsd: intent.maxPaymentUsd },
  );
}
