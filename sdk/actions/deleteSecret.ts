import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

// The contract promises only a 200; the body carries nothing the caller needs.
const schema = z.unknown();

/** Parameters of `deleteSecret`. */
export type DeleteSecretParameters = { projectId: string; serviceKey: string; key: string };
/** What `deleteSecret` resolves to. */
export type DeleteSecretReturnType = undefined;
/** 404 when the secret does not exist. */
export type DeleteSecretErrorType = ApiError;

/** Deletes a project secret (`DELETE /projects/v1/admin/:id/secrets/:key`, service key). */
export async function deleteSecret(
  ctx: ActionContext,
  parameters: DeleteSecretParameters,
): Promise<DeleteSecretReturnType> {
  await call(
    ctx.transport,
    {
      method: "DELETE",
      path: `/projects/v1/admin/${encodeURIComponent(parameters.projectId)}/secrets/${encodeURIComponent(parameters.key)}`,
      auth: { kind: "bearer", token: parameters.serviceKey },
    },
    schema,
  );
}
