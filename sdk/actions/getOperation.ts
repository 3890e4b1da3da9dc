import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

/**
 * Statuses of a deploy operation (kychee-com/run402 sdk/src/namespaces/deploy.types.ts
 * `OperationStatus`). The set is open: a status not listed here is read as still running.
 */
export const OPERATION_STATUSES = [
  "planning",
  "uploading",
  "committing",
  "staging",
  "gating",
  "migrating",
  "schema_settling",
  "activating",
  "activation_pending",
  "needs_repair",
  "ready",
  "failed",
  "rolled_back",
] as const;

/** Statuses after which an operation never moves again (deploy.ts `TERMINAL_STATUSES`). */
export const TERMINAL_OPERATION_STATUSES: readonly string[] = [
  "ready",
  "failed",
  "rolled_back",
  "needs_repair",
];

/** A deploy error as Run402 reports it on a commit or an operation (`GatewayDeployError`: only `code` is sure). */
export const deployErrorSchema = z.looseObject({
  code: z.string(),
  message: z.string().optional(),
  phase: z.string().nullable().optional(),
  resource: z.string().nullable().optional(),
  retryable: z.boolean().optional(),
  safe_to_retry: z.boolean().optional(),
});

const schema = z.looseObject({
  operation_id: z.string(),
  project_id: z.string().optional(),
  plan_id: z.string().optional(),
  status: z.string(),
  release_id: z.string().nullable().optional(),
  error: deployErrorSchema.nullable().optional(),
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
