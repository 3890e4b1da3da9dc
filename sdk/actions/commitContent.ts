import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

// The body is not read: Run402's client ignores it and its fixtures answer {} (kychee-com/run402
// sdk/src/namespaces/deploy.ts, the plan-level commit after the uploads; deploy.test.ts).
const schema = z.unknown();

/** Parameters of `commitContent`. */
export type CommitContentParameters = { anonKey: string; planId: string };
/** What `commitContent` resolves to. */
export type CommitContentReturnType = z.output<typeof schema>;
/** Errors `commitContent` can throw. */
export type CommitContentErrorType = ApiError;

/** Commits uploaded content (`POST /content/v1/plans/:plan_id/commit`, anon key). */
export function commitContent(
  ctx: ActionContext,
  parameters: CommitContentParameters,
): Promise<CommitContentReturnType> {
  return call(
    ctx.transport,
    {
      method: "POST",
      path: `/content/v1/plans/${encodeURIComponent(parameters.planId)}/commit`,
      body: {},
      auth: { kind: "apikey", key: parameters.anonKey },
    },
    schema,
  );
}
