import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

const schema = z.looseObject({
  release_id: z.string().nullable(),
  manifest_digest: z.string().nullable().optional(),
  release_digest: z.string().nullable().optional(),
  activated_at: z.string().nullable().optional(),
  state_version: z.string().optional(),
  site: z.looseObject({
    paths: z.array(
      z.looseObject({
        path: z.string(),
        content_sha256: z.string(),
        content_type: z.string(),
        size_bytes: z.number().optional(),
      }),
    ),
  }),
  static_manifest: z.unknown().optional(),
  functions: z.array(
    z.looseObject({
      name: z.string(),
      code_hash: z.string(),
      runtime: z.string(),
      timeout_seconds: z.number().nullable().optional(),
      memory_mb: z.number().nullable().optional(),
      schedule: z.string().nullable().optional(),
    }),
  ),
  secrets: z.looseObject({ keys: z.array(z.string()) }),
  subdomains: z.looseObject({ names: z.array(z.string()) }),
  routes: z.looseObject({ manifest_sha256: z.string().nullable().optional(), entries: z.array(z.unknown()) }),
  migrations: z.array(z.looseObject({ migration_id: z.string(), checksum_hex: z.string() })).optional(),
  i18n: z.unknown().optional(),
  database: z.looseObject({ expose: z.unknown() }).optional(),
  assets: z.looseObject({ entries: z.array(z.looseObject({ key: z.string() })) }).optional(),
  migrations_applied: z.array(
    z.looseObject({ migration_id: z.string(), checksum_hex: z.string(), applied_at: z.string() }),
  ),
});

/** Parameters of `getActiveRelease`. */
export type GetActiveReleaseParameters = { anonKey: string };
/** What is live now: Run402's materialized release state (site, static manifest, functions, routes, i18n, …) and applied migrations. */
export type ReleaseInventory = z.output<typeof schema>;
/** What `getActiveRelease` resolves to. */
export type GetActiveReleaseReturnType = ReleaseInventory;
/** Errors `getActiveRelease` can throw. */
export type GetActiveReleaseErrorType = ApiError;

/** Largest release inventory read: room for sites of tens of thousands of files. */
export const inventoryLimitBytes = 32 * 1024 * 1024;

/** Reads the live release (`GET /apply/v1/releases/active`, anon key). */
export function getActiveRelease(
  ctx: ActionContext,
  parameters: GetActiveReleaseParameters,
): Promise<GetActiveReleaseReturnType> {
  return call(
    ctx.transport,
    {
      method: "GET",
      path: "/apply/v1/releases/active",
      auth: { kind: "apikey", key: parameters.anonKey },
      // The inventory lists every site file (twice: paths and static manifest), so it grows with the
      // site; still bounded, so a hostile server cannot make the provider read without end.
      maxResponseBytes: inventoryLimitBytes,
    },
    schema,
  );
}
