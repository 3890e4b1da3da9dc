import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

const schema = z.looseObject({
  operation_id: z.string(),
  project_id: z.string().optional(),
  plan_id: z.string().optional(),
  status: z.enum(["running", "migrating", "activating", "ready", "failed", "rolled_back"]),
  release_id: z.string().nullable().optional(),
  error: z.looseObject({ code: z.string(), message: z.string().optional() }).nullable().optional(),
  urls: z.unknown().optional(),
});

/** Parameters of `getOperation`. */
export type GetOperationParameters = { anonKey: string; operationId: string };
/** What `getOperation` resolves to. */
export type GetOperationReturnType = z.output<typeof schema>;
/** Errors `getOperation` can throw. */
export type GetOperationErrorType = ApiError;

/** Reads a deploy operation (`GET /apply/v1/operations/:id`, anon key). */
export function getOperation(
  ctx: ActionContext,
  parameters: GetOperationParameters,
): Promise<GetOperationReturnType> {
  return call(
    ctx.transport,
    {
      method: "GET",
      path: `/apply/v1/operations/${encodeURIComponent(parameters.operationId)}`,
      auth: { kind: "apikey", key: parameters.anonKey },
    },
    schema,
  );
}
