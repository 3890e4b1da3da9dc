import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";
import type { ContentRef } from "./planRelease.js";

const part = z.looseObject({
  part_number: z.number(),
  url: z.string(),
  byte_start: z.number(),
  byte_end: z.number(),
});
const schema = z.looseObject({
  plan_id: z.string(),
  expires_at: z.string().optional(),
  missing: z.array(z.looseObject({ sha256: z.string(), mode: z.string(), parts: z.array(part) })),
});

/** Parameters of `planContent`. */
export type PlanContentParameters = { anonKey: string; content: ContentRef[] };
/** What `planContent` resolves to. */
export type PlanContentReturnType = z.output<typeof schema>;
/** Errors `planContent` can throw. */
export type PlanContentErrorType = ApiError;

/** Asks where to upload content (`POST /content/v1/plans`, anon key). */
export function planContent(
  ctx: ActionContext,
  parameters: PlanContentParameters,
): Promise<PlanContentReturnType> {
  return call(
    ctx.transport,
    {
      method: "POST",
      path: "/content/v1/plans",
      body: { content: parameters.content },
      auth: { kind: "apikey", key: parameters.anonKey },
    },
    schema,
  );
}
