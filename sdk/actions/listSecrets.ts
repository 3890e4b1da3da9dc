import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

const schema = z.looseObject({
  secrets: z.array(z.looseObject({ key: z.string(), updated_at: z.string().optional() })),
});

/** Parameters of `listSecrets`. */
export type ListSecretsParameters = { projectId: string; serviceKey: string };
/** Secret names only; values never come back. */
export type ListSecretsReturnType = z.output<typeof schema>;
/** Errors `listSecrets` can throw. */
export type ListSecretsErrorType = ApiError;

/** Lists a project's secret names (`GET /projects/v1/admin/:id/secrets`, service key). */
export function listSecrets(
  ctx: ActionContext,
  parameters: ListSecretsParameters,
): Promise<ListSecretsReturnType> {
  return call(
    ctx.transport,
    {
      method: "GET",
      path: `/projects/v1/admin/${encodeURIComponent(parameters.projectId)}/secrets`,
      auth: { kind: "bearer", token: parameters.serviceKey },
    },
    schema,
  );
}
