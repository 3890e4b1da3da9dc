/**
 * Run402's response types for every endpoint this project calls, as zod schemas: required where
 * Run402's type requires a field, optional where it is optional, open where Run402 adds values. Read
 * from kychee-com/run402 at {@link RUN402_COMMIT} (the TypeScript types of its SDK, and the test
 * fixtures several of which mirror the live gateway); each schema names the type and file.
 *
 * These check both sides: the fixtures (so a fixture cannot drift from the type it claims) and the
 * sandbox's answers (so the sandbox answers as Run402 does, not as our client expects).
 */
import { z } from "zod";

/** The kychee-com/run402 commit every schema and fixture here was read from. */
export const RUN402_COMMIT = "2d17de43d5981d65c30a10defe9c84596bfa1724";

const iso = z.string().regex(/^\d{4}-\d\d-\d\dT/);

/** sdk/src/namespaces/projects.types.ts `QuoteResult` / `TierQuote` (price is "$0.10"). */
export const QuoteResult = z.looseObject({
  tiers: z.record(
    z.string(),
    z.looseObject({
      price: z.string().regex(/^\$\d+(\.\d+)?$/),
      lease_days: z.number(),
      storage_mb: z.number(),
      api_calls: z.number(),
      max_functions: z.number(),
      description: z.string(),
    }),
  ),
  auth: z.record(z.string(), z.unknown()).optional(),
});

/** sdk/src/namespaces/tier.ts `TierStatusResult` (the runtime fixtures in tier.test.ts omit organization_lifecycle_state). */
export const TierStatusResult = z.looseObject({
  wallet: z.string(),
  tier: z.string().nullable(),
  lease_started_at: iso.nullable(),
  lease_expires_at: iso.nullable(),
  active: z.boolean(),
  organization_lifecycle_state: z.string().nullable().optional(),
  lease_perpetual: z.boolean().nullable().optional(),
  pool_usage: z.looseObject({
    projects: z.number(),
    total_api_calls: z.number(),
    total_storage_bytes: z.number(),
    api_calls_limit: z.number(),
    storage_bytes_limit: z.number(),
  }),
  projects: z.array(z.looseObject({ id: z.string(), name: z.string() })).optional(),
});

/** sdk/src/namespaces/tier.ts `TierSetResult`. */
export const TierSetResult = z.looseObject({
  wallet: z.string(),
  action: z.string(),
  tier: z.string(),
  previous_tier: z.string().nullable(),
  lease_started_at: iso,
  lease_expires_at: iso,
  allowance_remaining_usd_micros: z.number(),
});

/** sdk/src/namespaces/projects.types.ts `ProvisionResult` (endpoints optional). */
export const ProvisionResult = z.looseObject({
  project_id: z.string(),
  anon_key: z.string(),
  service_key: z.string(),
  schema_slot: z.string(),
  endpoints: z
    .looseObject({
      rest_url: z.string().optional(),
      static_base_url: z.string().optional(),
      storage_base_url: z.string().optional(),
    })
    .optional(),
});

/** sdk/src/namespaces/projects.types.ts `ListProjectsResult` / `ProjectSummary` (rows keyed `id`). */
export const ListProjectsResult = z.looseObject({
  projects: z.array(
    z.looseObject({
      id: z.string(),
      name: z.string(),
      tier: z.string().optional(),
      site_url: z.string().nullable().optional(),
      created_at: iso,
      deleted_at: z.string().nullable().optional(),
      archived_at: z.string().nullable().optional(),
    }),
  ),
  has_more: z.boolean().optional(),
  next_cursor: z.string().nullable().optional(),
});

/** sdk/src/namespaces/projects.types.ts `ProjectDetail` (the fields this project reads). */
export const ProjectDetail = z.looseObject({
  project_id: z.string(),
  name: z.string(),
  org_id: z.string(),
  tier: z.string(),
  effective_status: z.string(),
  organization_lifecycle_state: z.string(),
  site_url: z.string().nullable(),
  last_deploy: z.looseObject({ release_id: z.string(), activated_at: iso }).nullable(),
  created_at: iso,
});

/** sdk/src/namespaces/projects.ts `delete` (its fixture answers {status: "purged"}; nothing is read). */
export const DeleteProjectResult = z.unknown();

/** sdk/src/namespaces/deploy.types.ts `PlanResponse` (the fields this project reads). */
export const PlanResponse = z.looseObject({
  plan_id: z.string().nullable(),
  operation_id: z.string().nullable(),
  base_release_id: z.string().nullable(),
  manifest_digest: z.string(),
  is_noop: z.boolean().optional(),
  missing_content: z.array(z.looseObject({ sha256: z.string(), size: z.number(), present: z.boolean() })),
});

/** sdk/src/namespaces/deploy.types.ts `ContentPlanResponse` / `MissingContent`. */
export const ContentPlanResponse = z.looseObject({
  plan_id: z.string(),
  expires_at: iso,
  missing: z.array(
    z.looseObject({
      sha256: z.string(),
      mode: z.enum(["single", "multipart"]),
      parts: z.array(
        z.looseObject({
          part_number: z.number().int().positive(),
          url: z.string().url(),
          byte_start: z.number().int().nonnegative(),
          byte_end: z.number().int().nonnegative(),
        }),
      ),
      part_size_bytes: z.number(),
      part_count: z.number(),
      upload_id: z.string(),
      staging_key: z.string(),
      expires_at: iso,
    }),
  ),
  entries: z.array(z.looseObject({ sha256: z.string(), missing: z.boolean() })),
});

/** `POST /content/v1/plans/:id/commit`: deploy.ts reads nothing; deploy.test.ts answers {}. */
export const ContentCommitResult = z.unknown();

/** sdk/src/namespaces/deploy.types.ts `OperationStatus`. */
export const OperationStatus = z.enum([
  "planning",
  "uploading",
  "committing",
  "staging",
  "gating",
  "migrating",
  "schema_settling",
  "activating",
  "activation_pending",
  "needs_repair",
  "ready",
  "failed",
  "rolled_back",
]);

/** sdk/src/namespaces/deploy.types.ts `GatewayDeployError` (only `code` is sure). */
export const GatewayDeployError = z.looseObject({
  code: z.string(),
  message: z.string().optional(),
  phase: z.string().nullable().optional(),
  retryable: z.boolean().optional(),
  safe_to_retry: z.boolean().optional(),
});

/** sdk/src/namespaces/deploy.types.ts `CommitResponse` (`CommitStatus`). */
export const CommitResponse = z.looseObject({
  operation_id: z.string(),
  status: z.enum(["running", "schema_settling", "activation_pending", "ready", "failed"]),
  release_id: z.string().nullable().optional(),
  urls: z.record(z.string(), z.string()).nullable().optional(),
  error: GatewayDeployError.nullable().optional(),
});

/** sdk/src/namespaces/deploy.types.ts `OperationSnapshot`. */
export const OperationSnapshot = z.looseObject({
  operation_id: z.string(),
  project_id: z.string(),
  plan_id: z.string(),
  status: OperationStatus,
  base_release_id: z.string().nullable(),
  target_release_id: z.string().nullable(),
  release_id: z.string().nullable(),
  urls: z.record(z.string(), z.string()).nullable(),
  payment_required: z.unknown().nullable(),
  error: GatewayDeployError.nullable(),
  activate_attempts: z.number(),
  last_activate_attempt_at: iso.nullable(),
  created_at: iso,
  updated_at: iso,
});

/** sdk/src/namespaces/deploy.types.ts `ActiveReleaseInventory` (`ReleaseInventoryBase<"current_live">`). */
export const ActiveReleaseInventory = z.looseObject({
  kind: z.literal("release_inventory"),
  schema_version: z.string(),
  release_id: z.string().nullable(),
  project_id: z.string(),
  status: z.string().nullable(),
  manifest_digest: z.string().nullable(),
  activated_at: iso.nullable(),
  state_kind: z.literal("current_live"),
  static_manifest_sha256: z.string().nullable(),
  site: z.looseObject({
    paths: z.array(
      z.strictObject({ path: z.string(), content_sha256: z.string(), content_type: z.string() }),
    ),
    totals: z.looseObject({ paths: z.number() }).optional(),
  }),
  functions: z.array(
    z.looseObject({
      name: z.string(),
      code_hash: z.string(),
      runtime: z.string(),
      timeout_seconds: z.number(),
      memory_mb: z.number(),
      schedule: z.string().nullable(),
    }),
  ),
  secrets: z.looseObject({ keys: z.array(z.string()) }),
  subdomains: z.looseObject({ names: z.array(z.string()) }),
  routes: z.looseObject({ manifest_sha256: z.string().nullable(), entries: z.array(z.unknown()) }),
  migrations_applied: z.array(
    z.looseObject({ migration_id: z.string(), checksum_hex: z.string(), applied_at: z.string() }),
  ),
});

/** Every schema by the endpoint it describes. */
export const BY_ENDPOINT = {
  "GET /tiers/v1": QuoteResult,
  "GET /tiers/v1/status": TierStatusResult,
  "POST /tiers/v1/:tier": TierSetResult,
  "POST /projects/v1": ProvisionResult,
  "GET /projects/v1": ListProjectsResult,
  "GET /projects/v1/:id": ProjectDetail,
  "DELETE /projects/v1/:id": DeleteProjectResult,
  "POST /apply/v1/plans": PlanResponse,
  "POST /content/v1/plans": ContentPlanResponse,
  "POST /content/v1/plans/:id/commit": ContentCommitResult,
  "POST /apply/v1/plans/:id/commit": CommitResponse,
  "GET /apply/v1/operations/:id": OperationSnapshot,
  "GET /apply/v1/releases/active": ActiveReleaseInventory,
} as const;

/** An endpoint of {@link BY_ENDPOINT}. */
export type Endpoint = keyof typeof BY_ENDPOINT;
