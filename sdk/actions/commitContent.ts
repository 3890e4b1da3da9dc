import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

const schema = z.looseObject({ plan_id: z.string(), committed: z.array(z.string()) });

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
