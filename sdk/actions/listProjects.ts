import { z } from "zod";
import { BaseError } from "../../core/errors.js";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";
import { projectSchema } from "./getProject.js";

/**
 * A list row. Run402 keys rows `id` (kychee-com/run402 sdk/src/namespaces/projects.types.ts
 * `ProjectSummary`; its client reads `id ?? project_id`, projects.ts `normalizeListProjectsResult`);
 * either is read, and the row carries both after parsing.
 */
const rowSchema = projectSchema
  .extend({
    project_id: z.string().optional(),
    id: z.string().optional(),
    deleted_at: z.string().nullable().optional(),
    archived_at: z.string().nullable().optional(),
  })
  .refine((row) => typeof (row.id ?? row.project_id) === "string", {
    message: "a project row needs id (or project_id)",
  })
  .transform((row) => ({
    ...row,
    project_id: (row.id ?? row.project_id) as string,
    id: (row.id ?? row.project_id) as string,
  }));
const pageSchema = z.looseObject({
  projects: z.array(rowSchema),
  has_more: z.boolean().optional(),
  next_cursor: z.string().nullable().optional(),
});
const schema = z.looseObject({
  projects: z.array(projectSchema.extend({ id: z.string() })),
});

/** What `listProjects` resolves to. */
export type ListProjectsReturnType = z.output<typeof schema>;
/** Errors `listProjects` can throw. */
export type ListProjectsErrorType = ApiError;

/** Lists the wallet's live projects (`GET /projects/v1`, SIWX); a project missing here is gone. */
export async function listProjects(ctx: ActionContext): Promise<ListProjectsReturnType> {
  const projects: ListProjectsReturnType["projects"] = [];
  // Run402 pages this list (default 50): every page is needed before "missing" can mean "gone".
  let after: string | null | undefined;
  for (let page = 0; page < 1000; page++) {
    const query = `?limit=200${after ? `&after=${encodeURIComponent(after)}` : ""}`;
    const result = await call(
      ctx.transport,
      { method: "GET", path: `/projects/v1${query}`, auth: { kind: "siwx" } },
      pageSchema,
    );
    for (const row of result.projects) if (!row.deleted_at && !row.archived_at) projects.push(row);
    after = result.next_cursor;
    if (!result.has_more || !after) return schema.parse({ projects });
  }
  throw new BaseError("GET /projects/v1 kept answering has_more after 1000 pages.", {
    code: "RESPONSE_INVALID",
  });
}
