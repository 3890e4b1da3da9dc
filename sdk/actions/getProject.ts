import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

/** A project as the API describes it (no keys). */
export const projectSchema = z.looseObject({
  project_id: z.string(),
  name: z.string().nullable().optional(),
  org_id: z.string().nullable().optional(),
  tier: z.string().nullable().optional(),
  effective_status: z.string().optional(),
  organization_lifecycle_state: z.string().nullable().optional(),
  site_url: z.string().nullable().optional(),
  last_deploy: z.looseObject({ release_id: z.string(), activated_at: z.string() }).nullable().optional(),
  created_at: z.string().optional(),
});

/** What `getProject` resolves to. */
export type GetProjectReturnType = z.output<typeof projectSchema>;
/** 403 `NOT_AUTHORIZED` for absent or foreign projects (the API authorizes before it reveals). */
export type GetProjectErrorType = ApiError;

/** Reads one project (`GET /projects/v1/:id`, SIWX). */
export function getProject(ctx: ActionContext, projectId: string): Promise<GetProjectReturnType> {
  return call(
    ctx.transport,
    { method: "GET", path: `/projects/v1/${encodeURIComponent(projectId)}`, auth: { kind: "siwx" } },
    projectSchema,
  );
}
