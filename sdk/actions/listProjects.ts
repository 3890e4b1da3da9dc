import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";
import { projectSchema } from "./getProject.js";

const schema = z.looseObject({ projects: z.array(projectSchema) });

/** What `listProjects` resolves to. */
export type ListProjectsReturnType = z.output<typeof schema>;
/** Errors `listProjects` can throw. */
export type ListProjectsErrorType = ApiError;

/** Lists the wallet's live projects (`GET /projects/v1`, SIWX); a project missing here is gone. */
export function listProjects(ctx: ActionContext): Promise<ListProjectsReturnType> {
  return call(ctx.transport, { method: "GET", path: "/projects/v1", auth: { kind: "siwx" } }, schema);
}
