import { z } from "zod";
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
import type { ActionContext } from "../internal/context.js";
import { parse } from "../internal/http.js";
import { deriveKey } from "../pay/idempotency.js";
import { scopeOf } from "../pay/payer.js";
import type { Settlement } from "../Receipt.js";

const schema = z.looseObject({ image: z.base64(), content_type: z.literal("image/png") });

/** Parameters of `generateImage`. */
export type GenerateImageParameters = {
  prompt: string;
  aspect?: string | undefined;
  /** Stable id of this generation; a rerun with the same intent replays instead of paying again. */
  intent: string;
};
/** What `generateImage` resolves to. */
export type GenerateImageReturnType = { png: Uint8Array; settlement: Settlement | null; replayed: boolean };
/** Errors `generateImage` can throw. */
export type GenerateImageErrorType =
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

/** Generates a PNG (`POST /generate-image/v1`, SIWX + payment). */
export async function generateImage(
  ctx: ActionContext,
  parameters: GenerateImageParameters,
): Promise<GenerateImageReturnType> {
  const path = "/generate-image/v1";
  const body = { prompt: parameters.prompt, ...(parameters.aspect ? { aspect: parameters.aspect } : {}) };
  const idempotencyKey = deriveKey({
    scope: scopeOf(ctx.transport.apiBase),
    intent: parameters.intent,
    method: "POST",
    route: path,
    body,
  });
  const ex = await ctx.payer.fetch(
    ctx.transport,
    { method: "POST", path, body, auth: { kind: "siwx" } },
    { intentId: parameters.intent, idempotencyKey },
  );
  const result = parse(schema, ex);
  return {
    png: new Uint8Array(Buffer.from(result.image, "base64")),
    settlement: ex.settlement,
    replayed: ex.replayed,
  };
}
