import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

// The contract promises only a 200; the body carries nothing the caller needs.
const schema = z.unknown();

/** Parameters of `setSecret`. */
export type SetSecretParameters = { projectId: string; serviceKey: string; key: string; value: string };
/** What `setSecret` resolves to. */
export type SetSecretReturnType = undefined;
/** Errors `setSecret` can throw. */
export type SetSecretErrorType = ApiError;

/** Sets a project secret (`POST /projects/v1/admin/:id/secrets`, service key). Names: `^[A-Z_][A-Z0-9_]{0,127}$`. */
export async function setSecret(
  ctx: ActionContext,
  parameters: SetSecretParameters,
): Promise<SetSecretReturnType> {
  await call(
    ctx.transport,
    {
      method: "POST",
      path: `/projects/v1/admin/${encodeURIComponent(parameters.projectId)}/secrets`,
      body: { key: parameters.key, value: parameters.value },
      auth: { kind: "bearer", token: parameters.serviceKey },
    },
    schema,
  );
}
