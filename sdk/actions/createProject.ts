import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";
import { deriveKey } from "../pay/idempotency.js";

const schema = z.looseObject({
  project_id: z.string(),
  name: z.string().nullable().optional(),
  anon_key: z.string(),
  service_key: z.string(),
  schema_slot: z.string().nullable().optional(),
  // Run402 Cloud answers {project_id, anon_key, service_key, schema_slot}; endpoints are optional
  // there (kychee-com/run402 sdk/src/namespaces/projects.types.ts `ProvisionResult`, and the
  // provision fixtures in projects.test.ts carry none).
  endpoints: z
    .looseObject({
      rest_url: z.string().optional(),
      static_base_url: z.string().optional(),
      storage_base_url: z.string().optional(),
    })
    .optional(),
  site_url: z.string().nullable().optional(),
});

/** Parameters of `createProject`. */
export type CreateProjectParameters = {
  name?: string | undefined;
  /** Stable id of this creation; a retried or resumed run gets the same project back instead of a second one. */
  intent: string;
};
/** The new project, with its keys (returned only here). */
export type CreateProjectReturnType = z.output<typeof schema>;
/** Errors `createProject` can throw. */
export type CreateProjectErrorType = ApiError;

/** Provisions a project (`POST /projects/v1`, SIWX, `Idempotency-Key`). */
export function createProject(
  ctx: ActionContext,
  parameters: CreateProjectParameters,
): Promise<CreateProjectReturnType> {
  const path = "/projects/v1";
  const body = parameters.name !== undefined ? { name: parameters.name } : {};
  const key = deriveKey({ intent: parameters.intent, method: "POST", route: path, body });
  return call(
    ctx.transport,
    { method: "POST", path, body, auth: { kind: "siwx" }, headers: { "Idempotency-Key": key } },
    schema,
  );
}
