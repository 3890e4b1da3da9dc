// Generated from schema/app.schema.json by scripts/gen-schema-types.ts. DO NOT MODIFY BY HAND.
// Edit the schema, then run `npx tsx scripts/gen-schema-types.ts`.

/** app.json: one Run402 stack. Run402's deploy manifest (run402.deploy.json; each slice checked against the ReleaseSpec v1 schema of @run402/release) plus the `tier` and `project` blocks and local-path conveniences. */
export type AppManifest = {
  /** JSON Schema URL for editors; ignored. */
  $schema?: string;
  /** Run402 app-kit annotation for people and agents; ignored. */
  "x-run402-omitted_features"?: unknown[];
  /** Ours: the organization's tier, a tier name or `{ name, renewBeforeDays?, autoRenew? }`. */
  tier?: TierName | TierConfig;
  /** A project id (Run402's field), or ours: `{ name, adoptProjectId? }`, the project to create or adopt. */
  project?: ProjectId | ProjectConfig;
  /** Run402: deploy into this existing project. */
  project_id?: string;
  /** Run402: sent as the deploy plan's idempotency_key. */
  idempotency_key?: string;
  /** Release the deploy builds on. Default `{ "release": "current" }`. */
  base?: {
    release: "current" | "empty";
  } | {
    release_id: string;
  };
  database?: Database;
  /** Secret names only; values are set out of band (never in a manifest). */
  secrets?: {
    require?: string[];
    delete?: string[];
  };
  functions?: Functions;
  site?: Site;
  assets?: Assets;
  subdomains?: Subdomains;
  routes?: Routes;
  checks?: null;
  i18n?: I18n;
  verify?: Verify;
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

export type Database = {
  migrations?: Migration[];
  /** Run402's expose manifest (tables, policies); stored and reported by the sandbox. */
  expose?: {
    [key: string]: unknown;
  };
  zero_downtime?: boolean;
};

/** A SQL migration: `id` (kept as is) or `name` (id becomes `<name>_<sha256(sql)[0:16]>`); the SQL inline, from a file, or a content reference already uploaded. */
export type Migration = {
  id?: string;
  name?: string;
  checksum?: string;
  sql?: string;
  /** SQL file, relative to the manifest. */
  sql_path?: string;
  /** Alias of `sql_path`. */
  sql_file?: string;
  /** SQL already uploaded as content (sha256 and size). */
  sql_ref?: {
    sha256: string;
    size: number;
    contentType?: string;
    integrity?: string;
  };
  transaction?: "required" | "none";
};

/** A string is the file's text itself; `{ path }` reads a file relative to the manifest; `{ data, encoding? }` is inline content; `{ sha256, size }` is content already uploaded. */
export type FileEntry = string | FileEntryObject;

/** The object form of {@link FileEntry}. */
export type FileEntryObject = {
  path?: string;
  data?: string;
  encoding?: "utf-8" | "base64";
  sha256?: string;
  size?: number;
  integrity?: string;
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

/** Ours: one site file. `path` is where it is served; it is read from `source` (default: `path`), relative to the manifest, unless `data` is given. */
export type SiteFileListEntry = {
  path: string;
  source?: string;
  data?: string;
  encoding?: "utf-8" | "base64";
  content_type?: string;
  contentType?: string;
};

/** Ours: a list of `{ path, source?, data?, contentType? }`, or a map of site path → file entry. */
export type SiteFiles = SiteFileListEntry[] | SiteFilesObject;

/** The object form of {@link SiteFiles}. */
export type SiteFilesObject = {
  [key: string]: FileEntry;
};

export type SiteSource = LocalDirRef | FileSet;

/** Static site: Run402's `replace` / `patch` (a file map or a local folder) and `public_paths`, or ours: `dir` (a folder) or `files` (a list or map). */
export type Site = {
  /** Ours: a folder next to the manifest whose files are the whole site. */
  dir?: string;
  files?: SiteFiles;
  replace?: SiteSource;
  patch?: {
    put?: SiteSource;
    delete?: string[];
  };
  public_paths?: {
    mode: "implicit" | "explicit";
    replace?: {
      [key: string]: {
        asset: string;
        cache_class?: "html" | "immutable_versioned" | "revalidating_asset";
      };
    };
  };
  /** Ours: dot files and folders to upload from the site's folders (`site.dir`, `{ "__source": "local-dir" }`), as site paths: `.well-known/` (a folder: ends with `/`), `.nojekyll`. Every other entry whose name starts with `.` is skipped. Secret-bearing names (`.env*`, `.npmrc`, keys) and tool folders (`.git/`, `.run402/`, `.pulumi/`) are never uploaded. */
  include_dotfiles?: string[];
};

export type FunctionConfig = {
  timeout_seconds?: number;
  memory_mb?: number;
  timeoutSeconds?: number;
  memoryMb?: number;
};

export type TriggerRun = {
  event_type: string;
  payload?: {
    [key: string]: unknown;
  };
  retry?: {
    [key: string]: unknown;
  };
  expires_after_seconds?: number;
};

/** A schedule trigger (`cron`) or an email trigger (`mailbox`, `events`); each firing creates a durable function run. */
export type Trigger = {
  id: string;
  type: "schedule" | "email";
  cron?: string;
  timezone?: string;
  misfire_policy?: "skip";
  overlap_policy?: "allow";
  mailbox?: string;
  events?: ("reply_received" | "delivery" | "bounced" | "complained")[];
  run: TriggerRun;
};

/** Run402's role gate, with camelCase (`idColumn`) or snake_case (`id_column`) keys. */
export type RoleGate = {
  table?: string;
  idColumn?: string;
  id_column?: string;
  roleColumn?: string;
  role_column?: string;
  allowed?: string[];
  cacheTtl?: number;
  cache_ttl?: number;
  onDeny?: "envelope" | "redirect";
  on_deny?: "envelope" | "redirect";
  signInPath?: string;
  sign_in_path?: string;
};

/** A Node 22 function: its code (`source`, or `files` and an `entrypoint`) and its settings. */
export type FunctionSpec = {
  /** Default "node22". */
  runtime?: "node22";
  source?: FileEntry;
  files?: FileSet;
  entrypoint?: string;
  config?: FunctionConfig;
  /** Legacy 5-field cron; prefer `triggers`. */
  schedule?: string | null;
  /** npm package specs, e.g. "zod@4". */
  deps?: string[];
  triggers?: Trigger[];
  requireAuth?: boolean;
  require_auth?: boolean;
  requireRole?: null | RoleGate;
  require_role?: null | RoleGate;
  class?: "standard" | "ssr";
  capabilities?: string[];
};

export type FunctionMap = {
  [key: string]: FunctionSpec;
};

export type Functions = {
  replace?: FunctionMap;
  patch?: {
    set?: FunctionMap;
    delete?: string[];
  };
};

/** Managed subdomains: one of `set`, `add` or `remove`. */
export type Subdomains = {
  set?: string[];
  add?: string[];
  remove?: string[];
};

export type FunctionTarget = {
  type: "function";
  name: string;
};

export type StaticTarget = {
  type: "static";
  file: string;
};

export type RouteTarget = FunctionTarget | StaticTarget;

export type Route = {
  pattern: string;
  methods?: ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS")[];
  target: RouteTarget;
  pricing?: {
    mode: "always";
    amount_usd_micros: number;
    pay_to: "org_default_payout";
    networks?: ("mainnet" | "testnet")[];
  };
  /** Acknowledges a read-only (GET/HEAD) final-wildcard function route; not sent on the wire. */
  acknowledge_readonly?: true;
};

/** `null` carries the routes forward like an absent slice; `{ replace: [...] }` sets them all (`[]` clears). */
export type Routes = RoutesObject | null;

/** The object form of {@link Routes}. */
export type RoutesObject = {
  replace: Route[];
};

/** Run402's manifest spelling of the i18n slice. */
export type I18nSnake = {
  default_locale: string;
  locales: string[];
  detect?: string[];
  unknown_locale_policy?: "reject" | "pass-through";
};

export type I18nCamel = {
  defaultLocale: string;
  locales: string[];
  detect?: string[];
  unknownLocalePolicy?: "reject" | "pass-through";
};

/** Routed locales: `{ default_locale, locales, detect?, unknown_locale_policy? }` (or camelCase); `null` clears. */
export type I18n = null | I18nSnake | I18nCamel;

export type AssetPut = {
  key: string;
  source?: FileEntry;
  sha256?: string;
  size_bytes?: number;
  content_type?: string;
  visibility?: "public" | "private";
  immutable?: boolean;
};

/** Per-key assets committed with the release. */
export type Assets = {
  put?: AssetPut[];
  delete?: string[];
  sync?: {
    prefix: string;
    prune: true;
    confirm?: {
      base_revision: string;
      delete_set_digest: string;
      expected_delete_count: number;
    };
  };
};

export type VerifyHttp = {
  id: string;
  path?: string;
  url?: string;
  expect?: {
    status: number;
  };
  expected_status?: number;
  retries?: number;
};

/** Run402's post-deploy HTTP checks; validated, never sent on the wire. */
export type Verify = {
  http?: VerifyHttp[];
};
