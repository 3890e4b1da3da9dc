import type {
  ContentRefHex,
  FunctionSpec,
  I18nSpec,
  MigrationSpec,
  ReleaseSpec,
  RoleGateSpec,
} from "@run402/release";
import { z } from "zod";
import { sha256Hex } from "../../schema/release.js";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

export type { ReleaseSpec } from "@run402/release";

/** A ReleaseSpec whose project the call names (`projectId`): `project` may be left out. */
export type DeploySpec = Omit<ReleaseSpec, "project"> & { project?: string | undefined };

/** A content reference on the wire (snake_case, as `@run402/sdk` sends it). */
export type ContentRef = {
  sha256: string;
  size: number;
  content_type?: string | undefined;
  integrity?: string;
};

/** The largest inline plan body; above it the spec travels as content (`manifest_ref`), as in `@run402/sdk`. */
export const PLAN_BODY_LIMIT_BYTES = 5 * 1024 * 1024;
/** Content type of migration SQL uploaded as content. */
export const SQL_CONTENT_TYPE = "application/sql";
/** Content type of a spec uploaded for `manifest_ref`. */
export const MANIFEST_CONTENT_TYPE = "application/vnd.run402.deploy-manifest+json";

type Wire = Record<string, unknown>;

function refToWire(ref: ContentRefHex): ContentRef {
  return {
    sha256: ref.sha256,
    size: ref.size,
    ...(ref.contentType !== undefined ? { content_type: ref.contentType } : {}),
    ...(ref.integrity ? { integrity: ref.integrity } : {}),
  };
}

function fileSetToWire(files: Record<string, ContentRefHex>): Record<string, ContentRef> {
  return Object.fromEntries(Object.entries(files).map(([path, ref]) => [path, refToWire(ref)]));
}

function roleToWire(gate: RoleGateSpec): Wire {
  return {
    table: gate.table,
    id_column: gate.idColumn,
    role_column: gate.roleColumn,
    allowed: gate.allowed,
    ...(gate.cacheTtl !== undefined ? { cache_ttl: gate.cacheTtl } : {}),
    ...(gate.onDeny !== undefined ? { on_deny: gate.onDeny } : {}),
    ...(gate.signInPath !== undefined ? { sign_in_path: gate.signInPath } : {}),
  };
}

function functionToWire(fn: FunctionSpec): Wire {
  return {
    runtime: fn.runtime,
    ...(fn.source !== undefined ? { source: refToWire(fn.source) } : {}),
    ...(fn.files !== undefined ? { files: fileSetToWire(fn.files) } : {}),
    ...(fn.entrypoint !== undefined ? { entrypoint: fn.entrypoint } : {}),
    ...(fn.config !== undefined
      ? {
          config: {
            ...(fn.config.timeoutSeconds !== undefined ? { timeout_seconds: fn.config.timeoutSeconds } : {}),
            ...(fn.config.memoryMb !== undefined ? { memory_mb: fn.config.memoryMb } : {}),
          },
        }
      : {}),
    ...(fn.deps !== undefined ? { deps: fn.deps } : {}),
    ...(fn.triggers !== undefined ? { triggers: fn.triggers } : {}),
    ...(fn.schedule !== undefined ? { schedule: fn.schedule } : {}),
    ...(fn.requireAuth !== undefined ? { require_auth: fn.requireAuth } : {}),
    ...(fn.requireRole !== undefined
      ? { require_role: fn.requireRole === null ? null : roleToWire(fn.requireRole) }
      : {}),
    ...(fn.class !== undefined ? { class: fn.class } : {}),
    ...(fn.capabilities !== undefined ? { capabilities: fn.capabilities } : {}),
  };
}

function functionMapToWire(map: Record<string, FunctionSpec>): Record<string, Wire> {
  return Object.fromEntries(Object.entries(map).map(([name, fn]) => [name, functionToWire(fn)]));
}

/** The content ref of a migration's SQL: its `sql_ref`, or the ref of its inline `sql` (uploaded as content). */
export function sqlRefOf(m: MigrationSpec): ContentRefHex {
  if (m.sql_ref) return m.sql_ref;
  const bytes = Buffer.from(m.sql ?? "", "utf8");
  return { sha256: sha256Hex(bytes), size: bytes.byteLength, contentType: SQL_CONTENT_TYPE };
}

function migrationToWire(m: MigrationSpec): Wire {
  // Inline SQL never goes on the wire: like @run402/sdk, it travels as content.
  return {
    id: m.id,
    checksum: m.checksum,
    sql_ref: refToWire(sqlRefOf(m)),
    ...(m.transaction !== undefined ? { transaction: m.transaction } : {}),
  };
}

function i18nToWire(i18n: I18nSpec): Wire {
  return {
    default_locale: i18n.defaultLocale,
    locales: i18n.locales,
    ...(i18n.detect !== undefined ? { detect: i18n.detect } : {}),
    ...(i18n.unknownLocalePolicy !== undefined ? { unknown_locale_policy: i18n.unknownLocalePolicy } : {}),
  };
}

/**
 * The snake_case body `POST /apply/v1/plans` carries for a ReleaseSpec, key for key what `@run402/sdk`
 * sends (`project_id`, `content_type`, `timeout_seconds`, `require_role.id_column`, `default_locale`, and
 * migrations as `sql_ref` content). Deliberate differences are listed in docs/ARCHITECTURE.md.
 */
export function toWireSpec(spec: ReleaseSpec): Wire {
  const { database, functions, site } = spec;
  return {
    project_id: spec.project,
    ...(spec.base !== undefined ? { base: spec.base } : {}),
    ...(database !== undefined
      ? {
          database: {
            ...(database.expose !== undefined ? { expose: database.expose } : {}),
            ...(database.zero_downtime !== undefined ? { zero_downtime: database.zero_downtime } : {}),
            ...(database.migrations !== undefined
              ? { migrations: database.migrations.map(migrationToWire) }
              : {}),
          },
        }
      : {}),
    ...(spec.secrets !== undefined ? { secrets: spec.secrets } : {}),
    ...(functions !== undefined
      ? {
          functions: {
            ...(functions.replace !== undefined ? { replace: functionMapToWire(functions.replace) } : {}),
            ...(functions.patch !== undefined
              ? {
                  patch: {
                    ...(functions.patch.set !== undefined
                      ? { set: functionMapToWire(functions.patch.set) }
                      : {}),
                    ...(functions.patch.delete !== undefined ? { delete: functions.patch.delete } : {}),
                  },
                }
              : {}),
          },
        }
      : {}),
    ...(site !== undefined
      ? {
          site: {
            ...(site.replace !== undefined ? { replace: fileSetToWire(site.replace) } : {}),
            ...(site.patch !== undefined
              ? {
                  patch: {
                    ...(site.patch.put !== undefined ? { put: fileSetToWire(site.patch.put) } : {}),
                    ...(site.patch.delete !== undefined ? { delete: site.patch.delete } : {}),
                  },
                }
              : {}),
            ...(site.public_paths !== undefined ? { public_paths: site.public_paths } : {}),
          },
        }
      : {}),
    ...(spec.subdomains !== undefined ? { subdomains: spec.subdomains } : {}),
    ...(spec.routes !== undefined ? { routes: spec.routes } : {}),
    ...(spec.checks !== undefined ? { checks: spec.checks } : {}),
    ...(spec.assets !== undefined ? { assets: spec.assets } : {}),
    ...(spec.i18n !== undefined ? { i18n: spec.i18n === null ? null : i18nToWire(spec.i18n) } : {}),
  };
}

const presence = z.looseObject({
  sha256: z.string(),
  size: z.number(),
  content_type: z.string().nullable().optional(),
  present: z.boolean().optional(),
});
const schema = z.looseObject({
  kind: z.literal("plan_response").optional(),
  plan_id: z.string(),
  operation_id: z.string().nullable().optional(),
  base_release_id: z.string().nullable().optional(),
  manifest_digest: z.string().optional(),
  // Optional in Run402's PlanResponse (kychee-com/run402 sdk/src/namespaces/deploy.types.ts): absent
  // means "not known to be a no-op", and the plan is committed, as Run402's client does.
  is_noop: z.boolean().optional(),
  summary: z.string().optional(),
  warnings: z.array(z.unknown()).optional(),
  missing_content: z.array(presence),
  migrations: z.unknown().optional(),
  site: z.unknown().optional(),
  functions: z.unknown().optional(),
  secrets: z.unknown().optional(),
  subdomains: z.unknown().optional(),
  routes: z.unknown().optional(),
  static_assets: z.unknown().optional(),
});

/** What a plan says would change: Run402's diff envelope (computed by the server with `@run402/release`). */
export type PlanDiff = {
  is_noop: boolean;
  summary?: string | undefined;
  warnings: unknown[];
  migrations?: unknown;
  site?: unknown;
  functions?: unknown;
  secrets?: unknown;
  subdomains?: unknown;
  routes?: unknown;
  static_assets?: unknown;
};

/** Parameters of `planRelease`. */
export type PlanReleaseParameters = {
  projectId: string;
  spec: DeploySpec;
  /** Sent as the body's `idempotency_key`. */
  idempotencyKey?: string | undefined;
  /** The wire spec already uploaded as content: the body then carries only `{ project_id }` and this ref. */
  manifestRef?: ContentRef | undefined;
};
/** What `planRelease` resolves to: the plan, the content the server lacks, and its diff. */
export type PlanReleaseReturnType = z.output<typeof schema> & {
  /** Content the server does not hold yet (Run402 lists present refs too, flagged `present: true`). */
  missing: z.output<typeof presence>[];
  diff: PlanDiff;
};
/** Errors `planRelease` can throw. */
export type PlanReleaseErrorType = ApiError;

/** The body of `POST /apply/v1/plans`, inline or by `manifest_ref`. */
export function planBody(parameters: PlanReleaseParameters): Wire {
  const key = parameters.idempotencyKey ? { idempotency_key: parameters.idempotencyKey } : {};
  if (parameters.manifestRef) {
    return { spec: { project_id: parameters.projectId }, manifest_ref: parameters.manifestRef, ...key };
  }
  return { spec: toWireSpec({ ...parameters.spec, project: parameters.projectId }), ...key };
}

/** Plans a release (`POST /apply/v1/plans`, SIWX): the diff and the content the server still lacks. */
export async function planRelease(
  ctx: ActionContext,
  parameters: PlanReleaseParameters,
): Promise<PlanReleaseReturnType> {
  const plan = await call(
    ctx.transport,
    { method: "POST", path: "/apply/v1/plans", body: planBody(parameters), auth: { kind: "siwx" } },
    schema,
  );
  // Run402 sends the diff envelope's buckets at the top level of the plan response.
  const diff: PlanDiff = {
    is_noop: plan.is_noop === true,
    summary: plan.summary,
    warnings: plan.warnings ?? [],
    migrations: plan.migrations,
    site: plan.site,
    functions: plan.functions,
    secrets: plan.secrets,
    subdomains: plan.subdomains,
    routes: plan.routes,
    static_assets: plan.static_assets,
  };
  return { ...plan, missing: plan.missing_content.filter((c) => c.present !== true), diff };
}
