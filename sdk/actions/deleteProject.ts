import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

// Nothing here is read: Run402's client ignores the body (kychee-com/run402 sdk/src/namespaces/
// projects.ts `delete` resolves void; its fixture answers {status: "purged"}).
const schema = z.unknown();

/** Parameters of `deleteProject`. */
export type DeleteProjectParameters = { projectId: string; serviceKey: string };
/** What `deleteProject` resolves to: the body as sent (unread; Run402's fixture is `{status: "purged"}`). */
export type DeleteProjectReturnType = z.output<typeof schema>;
/** 404 when the project is already gone. */
export type DeleteProjectErrorType = ApiError;

/** Deletes a project (`DELETE /projects/v1/:id`, service key). */
export function deleteProject(
  ctx: ActionContext,
  parameters: DeleteProjectParameters,
): Promise<DeleteProjectReturnType> {
  return call(
    ctx.transport,
    {
      method: "DELETE",
      path: `/projects/v1/${encodeURIComponent(parameters.projectId)}`,
      auth: { kind: "bearer", token: parameters.serviceKey },
    },
    schema,
  );
}
