import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";
import { deployErrorSchema } from "./getOperation.js";

// kychee-com/run402 sdk/src/namespaces/deploy.types.ts `CommitResponse`: a commit can answer 200 with
// `status: "failed"` and the reason in `error` (a base-release conflict among them).
const schema = z.looseObject({
  operation_id: z.string(),
  status: z.string(),
  release_id: z.string().nullable().optional(),
  error: deployErrorSchema.nullable().optional(),
});

/** Parameters of `commitPlan`. */
export type CommitPlanParameters = { planId: string; idempotencyKey?: string | undefined };
/** What `commitPlan` resolves to. */
export type CommitPlanReturnType = z.output<typeof schema>;
/** 409 `CONTENT_MISSING`; `BASE_RELEASE_CONFLICT` (a 409, or a 200 with `status: "failed"`) when the live release moved since the plan. */
export type CommitPlanErrorType = ApiError;

/** Starts applying a plan (`POST /apply/v1/plans/:plan_id/commit`, SIWX). */
export function commitPlan(
  ctx: ActionContext,
  parameters: CommitPlanParameters,
): Promise<CommitPlanReturnType> {
  return call(
    ctx.transport,
    {
      method: "POST",
      path: `/apply/v1/plans/${encodeURIComponent(parameters.planId)}/commit`,
      body: parameters.idempotencyKey ? { idempotency_key: parameters.idempotencyKey } : {},
      auth: { kind: "siwx" },
    },
    schema,
  );
}
