import { z } from "zod";
import type { ActionContext } from "../internal/context.js";
import { parse } from "../internal/http.js";
import { type PaidActionError, paidPost } from "../internal/paid.js";
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
export type GenerateImageErrorType = PaidActionError;

/** Generates a PNG (`POST /generate-image/v1`, SIWX + payment). */
export async function generateImage(
  ctx: ActionContext,
  parameters: GenerateImageParameters,
): Promise<GenerateImageReturnType> {
  const path = "/generate-image/v1";
  const body = { prompt: parameters.prompt, ...(parameters.aspect ? { aspect: parameters.aspect } : {}) };
  const ex = await paidPost(ctx, path, body, { intent: parameters.intent });
  const result = parse(schema, ex);
  return {
    png: new Uint8Array(Buffer.from(result.image, "base64")),
    settlement: ex.settlement,
    replayed: ex.replayed,
  };
}
