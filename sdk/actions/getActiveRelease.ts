import { z } from "zod";
import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { call } from "../internal/http.js";

/**
 * The live release as Run402 reports it: an inventory, not the full release state (kychee-com/run402
 * sdk/src/namespaces/deploy.types.ts `ReleaseInventoryBase`). Site paths are listed up to a limit
 * (`site_limit`, gateway default 5,000, maximum 25,000) with the full count in `site.totals.paths`;
 * functions carry no deps or auth gates; migrations are those applied. Fields a sandbox or an older
 * gateway adds (the full `static_manifest`, `migrations`) pass through.
 */
const schema = z.looseObject({
  kind: z.string().optional(),
  release_id: z.string().nullable(),
  project_id: z.string().optional(),
  manifest_digest: z.string().nullable().optional(),
  activated_at: z.string().nullable().optional(),
  state_kind: z.string().optional(),
  static_manifest_sha256: z.string().nullable().optional(),
  site: z.looseObject({
    paths: z.array(
      z.looseObject({
        path: z.string(),
        content_sha256: z.string(),
        content_type: z.string(),
        size_bytes: z.number().optional(),
      }),
    ),
    totals: z.looseObject({ paths: z.number() }).optional(),
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
export type GetActiveReleaseParameters = {
  anonKey: string;
  /** Most site paths listed (`site_limit`). @default {@link SITE_LIMIT_MAX} */
  siteLimit?: number | undefined;
};
/** What is live now: Run402's release inventory. */
export type ReleaseInventory = z.output<typeof schema>;
/** What `getActiveRelease` resolves to. */
export type GetActiveReleaseReturnType = ReleaseInventory;
/** Errors `getActiveRelease` can throw. */
export type GetActiveReleaseErrorType = ApiError;

/** Run402's hard maximum of `site_limit` (deploy.types.ts `ReleaseInventoryOptions.siteLimit`). */
export const SITE_LIMIT_MAX = 25_000;

/** Largest release inventory read: room for sites of tens of thousands of files. */
export const inventoryLimitBytes = 32 * 1024 * 1024;

/** True when the inventory lists fewer site paths than the release has (`site.totals.paths`). */
export function siteTruncated(inventory: ReleaseInventory): boolean {
  const total = inventory.site.totals?.paths;
  return total !== undefined && total > inventory.site.paths.length;
}

/** Reads the live release (`GET /apply/v1/releases/active?site_limit=…`, anon key). */
export function getActiveRelease(
  ctx: ActionContext,
  parameters: GetActiveReleaseParameters,
): Promise<GetActiveReleaseReturnType> {
  const limit = parameters.siteLimit ?? SITE_LIMIT_MAX;
  return call(
    ctx.transport,
    {
      method: "GET",
      path: `/apply/v1/releases/active?site_limit=${limit}`,
      auth: { kind: "apikey", key: parameters.anonKey },
      // The inventory lists every site file up to the limit, so it grows with the site; still
      // bounded, so a hostile server cannot make the provider read without end.
      maxResponseBytes: inventoryLimitBytes,
    },
    schema,
  );
}
