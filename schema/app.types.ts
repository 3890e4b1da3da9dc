// Generated from schema/app.schema.json by scripts/gen-schema-types.ts. DO NOT MODIFY BY HAND.
// Edit the schema, then run `npx tsx scripts/gen-schema-types.ts`.

/** app.json: one Run402 stack (tier, project, deploy). A superset of the `run402 deploy apply --manifest` deploy manifest. */
export type AppManifest = {
  /** JSON Schema URL for editors; ignored. */
  $schema?: string;
  /** Existing project to deploy into (run402 deploy-manifest field). */
  project_id?: string;
  /** Idempotency key sent with the deploy plan and commit. */
  idempotency_key?: string;
  /** The project: `{ name, adoptProjectId? }`, or a project id string (run402 deploy-manifest form). */
  project?: ProjectId | ProjectConfig;
  /** The organization's tier: a tier name, or `{ name, renewBeforeDays?, autoRenew? }`. */
  tier?: TierName | TierConfig;
  /** Release the deploy builds on. Default `{ "release": "current" }`. */
  base?: BaseRelease | BaseReleaseId;
  database?: Database;
  secrets?: Secrets;
  functions?: Functions;
  site?: Site;
  /** Shorthand for `subdomains: { set: [name] }`. */
  subdomain?: SubdomainName;
  subdomains?: Subdomains;
  routes?: Routes;
};

/** An existing project id (same as `project_id`). */
export type ProjectId = string;

export type ProjectConfig = {
  /** Project name. */
  name: string;
  /** Adopt this existing project instead of creating one (Pulumi import does not work for dynamic providers). */
  adoptProjectId?: string;
};

/** prototype $0.10 / 7 days, hobby $5 / 30 days, team $20 / 30 days. */
export type TierName = "prototype" | "hobby" | "team";

export type TierConfig = {
  name: TierName;
  /** Renew the lease when it expires within this many days. */
  renewBeforeDays?: number;
  /** Renew the lease on `pulumi up` when it is due. Default true. */
  autoRenew?: boolean;
};

export type BaseRelease = {
  release: "current" | "empty";
};

export type BaseReleaseId = {
  release_id: string;
};

export type Database = {
  migrations?: Migration[];
  zero_downtime?: boolean;
};

/** A SQL migration: `id` (kept as is) or `name` (id becomes `<name>_<sha256(sql)[0:16]>`), and the SQL inline or from a file. */
export type Migration = {
  id?: string;
  name?: string;
  checksum?: string;
  sql?: string;
  /** SQL file, relative to the manifest. */
  sql_path?: string;
  /** Alias of `sql_path`. */
  sql_file?: string;
  transaction?: "required" | "none";
};

export type SecretName = string;

/** Secret names only; values are set out of band (never in a manifest). */
export type Secrets = {
  require?: SecretName[];
  delete?: SecretName[];
};

/** A string is the file's text itself; `{ path }` reads a file relative to the manifest; `{ data, encoding? }` is inline content. */
export type FileEntry = string | FileEntryObject;

/** The object form of {@link FileEntry}. */
export type FileEntryObject = {
  path?: string;
  data?: string;
  encoding?: "utf-8" | "base64";
  content_type?: string;
  contentType?: string;
};

/** Site path → file entry. */
export type FileSet = {
  [key: string]: FileEntry;
};

/** A directory next to the manifest, uploaded whole. */
export type LocalDirRef = {
  __source: "local-dir";
  path: string;
};

/** One site file: `path` is where it is served; it is read from `source` (default: `path`), relative to the manifest, unless `data` is given. */
export type SiteFileListEntry = {
  path: string;
  source?: string;
  data?: string;
  encoding?: "utf-8" | "base64";
  content_type?: string;
  contentType?: string;
};

/** A list of `{ path, source?, data?, contentType? }`, or a map of site path → file entry. */
export type SiteFiles = SiteFileListEntry[] | SiteFilesObject;

/** The object form of {@link SiteFiles}. */
export type SiteFilesObject = {
  [key: string]: FileEntry;
};

export type SiteSource = LocalDirRef | FileSet;

export type PublicPaths = {
  mode: "implicit" | "explicit";
  replace?: {
    [key: string]: {
      asset: string;
      cache_class?: "html" | "immutable_versioned" | "revalidating_asset";
    };
  };
};

/** Static site: `dir` (a folder), `files` (list or map), or the run402 forms `replace` / `patch`. */
export type Site = {
  /** Folder next to the manifest whose files are the whole site. */
  dir?: string;
  files?: SiteFiles;
  replace?: SiteSource;
  patch?: {
    put?: SiteSource;
    delete?: string[];
  };
  public_paths?: PublicPaths;
};

export type FunctionName = string;

export type FunctionConfig = {
  timeout_seconds?: number;
  memory_mb?: number;
  timeoutSeconds?: number;
  memoryMb?: number;
};

export type FunctionSpec = {
  runtime?: "node22";
  source: FileEntry;
  config?: FunctionConfig;
  schedule?: string | null;
  /** npm package specs, e.g. "zod@4". */
  deps?: string[];
  require_auth?: boolean;
};

export type FunctionMap = {
  [key: string]: FunctionSpec;
};

export type Functions = {
  replace?: FunctionMap;
  patch?: {
    set?: FunctionMap;
    delete?: FunctionName[];
  };
};

export type SubdomainName = string;

export type Subdomains = {
  set?: SubdomainName[];
  add?: SubdomainName[];
  remove?: SubdomainName[];
};

export type FunctionTarget = {
  type: "function";
  name: FunctionName;
};

export type StaticTarget = {
  type: "static";
  file: string;
};

export type Route = {
  pattern: string;
  methods?: ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS")[];
  target: RouteTarget;
  acknowledge_readonly?: true;
};

export type RouteTarget = FunctionTarget | StaticTarget;

/** `null` clears the routes; `{ replace: [...] }` sets them all. */
export type Routes = RoutesObject | null;

/** The object form of {@link Routes}. */
export type RoutesObject = {
  replace: Route[];
};
