import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

/** A content reference in a ReleaseSpec. */
export type ContentRef = { sha256: string; size: number; content_type: string };

/** The wire ReleaseSpec (snake_case); every slice is optional and carries forward from the base release. */
export type ReleaseSpec = {
  project_id?: string | undefined;
  base?: { release: string } | undefined;
  database?:
    | {
        migrations: { id: string; checksum: string; sql: string; transaction?: string | undefined }[];
      }
    | undefined;
  site?: { replace: Record<string, ContentRef> } | undefined;
  functions?:
    | {
        replace: Record<
          string,
          {
            runtime: string;
            source: ContentRef;
            config?: { timeout_seconds?: number | undefined; memory_mb?: number | undefined } | undefined;
            schedule?: string | null | undefined;
          }
        >;
      }
    | undefined;
  secrets?: { require: string[] } | undefined;
  subdomains?: { set: string[] } | undefined;
  routes?:
    | { replace: { pattern: string; methods?: string[] | undefined; target: Record<string, unknown> }[] }
    | undefined;
} & Record<string, unknown>;

const contentRef = z.looseObject({ sha256: z.string(), size: z.number(), content_type: z.string() });
/** What a plan says would change. */
export const diffSchema = z.looseObject({
  migrations: z.unknown().optional(),
  site: z.unknown().optional(),
  functions: z.unknown().optional(),
  secrets: z.unknown().optional(),
  subdomains: z.unknown().optional(),
  routes: z.unknown().optional(),
});
const schema = z.looseObject({
  kind: z.literal("plan_response").optional(),
  plan_id: z.string(),
  operation_id: z.string().nullable().optional(),
  base_release_id: z.string().nullable().optional(),
  manifest_digest: z.string().optional(),
  is_noop: z.boolean(),
  missing_content: z.array(contentRef),
  diff: diffSchema,
});

/** Parameters of `planRelease`. */
export type PlanReleaseParameters = {
  projectId: string;
  spec: ReleaseSpec;
  /** Sent as the body's `idempotency_key`. */
  idempotencyKey?: string | undefined;
};
/** What `planRelease` resolves to. */
export type PlanReleaseReturnType = z.output<typeof schema>;
/** Errors `planRelease` can throw. */
export type PlanReleaseErrorType = ApiError;

/** Plans a release (`POST /apply/v1/plans`, SIWX): the diff and the content the server still lacks. */
export function planRelease(
  ctx: ActionContext,
  parameters: PlanReleaseParameters,
): Promise<PlanReleaseReturnType> {
  const body = {
    spec: { ...parameters.spec, project_id: parameters.projectId },
    ...(parameters.idempotencyKey ? { idempotency_key: parameters.idempotencyKey } : {}),
  };
  return call(
    ctx.transport,
    { method: "POST", path: "/apply/v1/plans", body, auth: { kind: "siwx" } },
    schema,
  );
}
