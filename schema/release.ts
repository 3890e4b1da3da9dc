/**
 * app.json → Run402's ReleaseSpec (the SDK-native form `@run402/release` validates, digests and
 * materializes). Pure: every byte a manifest names on disk comes from a {@link ContentSource}, so
 * validation (placeholder content) and loading (real files, provider/manifest) run this same mapping.
 */
import { createHash } from "node:crypto";
import type {
  ContentRefHex,
  FileSet,
  FunctionSpec,
  I18nSpec,
  MigrationSpec,
  ReleaseSpec,
  RoleGateSpec,
  RouteSpec,
} from "@run402/release";
import { canonicalizeStaticManifestPath, StaticManifestError } from "@run402/release";
import type {
  AppManifest,
  AssetPut,
  FileEntry,
  FunctionMap,
  FunctionSpec as ManifestFunction,
  RoleGate,
  Route,
  SiteFiles,
  SiteSource,
} from "./app.types.js";
import type { ManifestIssue } from "./errors.js";

/** A file known by its sha256 and size, whose bytes are read when needed (provider/manifest/hash.ts). */
export type HashedContent = { sha256: string; size: number; read(): Promise<Uint8Array> };

/**
 * Content the release needs uploaded, by sha256: its bytes, or (a file on disk) its size and a reader.
 * `path` is the first site path or file that produced it.
 */
export type ContentEntry = { contentType: string; path: string } & (
  | { bytes: Uint8Array }
  | { size: number; read(): Promise<Uint8Array> }
);

/** Where the files a manifest names come from. Every path is relative to the manifest's folder. */
export interface ContentSource {
  /** One file's bytes; undefined after recording an issue (missing, outside the folder, …). */
  file(path: string, pointer: string): Uint8Array | undefined;
  /** Every file under a folder: site path → bytes (or hash), in code-unit order; undefined after an issue. */
  dir(path: string, pointer: string): Map<string, Uint8Array | HashedContent> | undefined;
}

/** The result of {@link toReleaseSpec}. */
export type ManifestRelease = {
  spec: ReleaseSpec;
  /** Content the spec references, keyed by sha256 (refs given as `{ sha256, size }` have none). */
  content: Map<string, ContentEntry>;
  /** The manifest's `idempotency_key`, sent with the plan (never part of the spec). */
  idempotencyKey?: string;
  issues: ManifestIssue[];
};

/** Options of {@link toReleaseSpec}. */
export type ToReleaseSpecOptions = {
  /** The project the release is for (the provider knows it; a preview uses a placeholder). */
  projectId: string;
  /** File and folder contents. */
  source: ContentSource;
  /** Content type for a served path or function file. */
  contentType(path: string): string;
  /**
   * The source gives stand-in bytes (validation reads no files): checks that need a file's real bytes,
   * such as a migration's `checksum`, wait for the real ones.
   */
  placeholders?: boolean;
};

const SQL_CONTENT_TYPE = "application/sql";
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** sha256 of bytes or UTF-8 text, as lowercase hex. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Escapes one JSON-pointer segment. */
export function pointerSegment(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

class Mapper {
  readonly issues: ManifestIssue[] = [];
  readonly content = new Map<string, ContentEntry>();
  constructor(readonly options: ToReleaseSpecOptions) {}

  fail(pointer: string, message: string, hint?: string): undefined {
    this.issues.push(hint ? { pointer, message, hint } : { pointer, message });
    return undefined;
  }

  keep(data: Uint8Array | HashedContent, contentType: string, path: string): ContentRefHex {
    if (!(data instanceof Uint8Array)) {
      const { sha256, size, read } = data;
      if (!this.content.has(sha256)) this.content.set(sha256, { size, read, contentType, path });
      return { sha256, size, contentType };
    }
    const sha256 = sha256Hex(data);
    if (!this.content.has(sha256)) this.content.set(sha256, { bytes: data, contentType, path });
    return { sha256, size: data.byteLength, contentType };
  }

  decode(data: string, encoding: "utf-8" | "base64" | undefined, pointer: string): Uint8Array | undefined {
    if (encoding !== "base64") return new Uint8Array(Buffer.from(data, "utf8"));
    const compact = data.replace(/\s+/g, "");
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 === 1) {
      return this.fail(`${pointer}/data`, "Is not valid base64.");
    }
    return new Uint8Array(Buffer.from(compact, "base64"));
  }

  /** A file entry: text, `{ path }`, `{ data, encoding? }` or an uploaded `{ sha256, size }`. */
  entry(entry: FileEntry, pointer: string, name: string): ContentRefHex | undefined {
    if (typeof entry === "string") {
      return this.keep(new Uint8Array(Buffer.from(entry, "utf8")), this.options.contentType(name), name);
    }
    const declared = entry.contentType ?? entry.content_type;
    if (entry.sha256 !== undefined) {
      return {
        sha256: entry.sha256,
        size: entry.size ?? 0,
        ...(declared ? { contentType: declared } : {}),
        ...(entry.integrity ? { integrity: entry.integrity } : {}),
      };
    }
    const contentType = declared ?? this.options.contentType(name);
    if (entry.path !== undefined) {
      const bytes = this.options.source.file(entry.path, `${pointer}/path`);
      return bytes && this.keep(bytes, contentType, name);
    }
    const bytes = this.decode(entry.data ?? "", entry.encoding, pointer);
    return bytes && this.keep(bytes, contentType, name);
  }

  sitePath(path: string, pointer: string): boolean {
    const segments = path.split("/");
    if (
      path.startsWith("/") ||
      path.includes("\\") ||
      segments.some((s) => s === "" || s === "." || s === "..")
    ) {
      this.fail(
        pointer,
        `Site path ${JSON.stringify(path)} is not a clean relative path.`,
        'Use forward slashes, no leading "/", and no empty, "." or ".." segments (e.g. "assets/app.css").',
      );
      return false;
    }
    // Run402 canonicalizes every site path when it materializes a release: no query or fragment, no
    // control characters, no encoded separators or bad percent encoding, nothing under /_cas or /_run402.
    try {
      canonicalizeStaticManifestPath(path, `site.${path}`);
    } catch (error) {
      if (!(error instanceof StaticManifestError)) throw error;
      this.fail(
        pointer,
        `Site path ${JSON.stringify(path)} is refused by Run402: ${error.message.replace(/\.$/, "")}.`,
        "Rename the file or the path.",
      );
      return false;
    }
    return true;
  }

  dir(path: string, pointer: string): FileSet | undefined {
    const files = this.options.source.dir(path, pointer);
    if (!files) return undefined;
    const out: FileSet = {};
    for (const [sitePath, bytes] of files) {
      if (!this.sitePath(sitePath, pointer)) continue;
      out[sitePath] = this.keep(bytes, this.options.contentType(sitePath), sitePath);
    }
    return out;
  }

  fileSet(set: Record<string, FileEntry>, pointer: string): FileSet {
    const out: FileSet = {};
    for (const path of Object.keys(set).sort(byCodeUnit)) {
      const at = `${pointer}/${pointerSegment(path)}`;
      if (!this.sitePath(path, at)) continue;
      const ref = this.entry(set[path] as FileEntry, at, path);
      if (ref) out[path] = ref;
    }
    return out;
  }

  siteSource(source: SiteSource, pointer: string): FileSet | undefined {
    if ((source as { __source?: unknown }).__source === "local-dir") {
      return this.dir((source as { path: string }).path, `${pointer}/path`);
    }
    return this.fileSet(source as Record<string, FileEntry>, pointer);
  }

  siteFiles(files: SiteFiles, pointer: string): FileSet {
    if (!Array.isArray(files)) return this.fileSet(files, pointer);
    const out: FileSet = {};
    for (const [index, file] of files.entries()) {
      const at = `${pointer}/${index}`;
      if (!this.sitePath(file.path, `${at}/path`)) continue;
      const contentType = file.contentType ?? file.content_type ?? this.options.contentType(file.path);
      let ref: ContentRefHex | undefined;
      if (file.data !== undefined) {
        const bytes = this.decode(file.data, file.encoding, at);
        ref = bytes && this.keep(bytes, contentType, file.path);
      } else {
        const field = file.source !== undefined ? "source" : "path";
        const bytes = this.options.source.file(file.source ?? file.path, `${at}/${field}`);
        ref = bytes && this.keep(bytes, contentType, file.path);
      }
      if (ref) out[file.path] = ref;
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => byCodeUnit(a, b)));
  }

  roleGate(gate: RoleGate): RoleGateSpec {
    const cacheTtl = gate.cacheTtl ?? gate.cache_ttl;
    const onDeny = gate.onDeny ?? gate.on_deny;
    const signInPath = gate.signInPath ?? gate.sign_in_path;
    return {
      table: gate.table as string,
      idColumn: (gate.idColumn ?? gate.id_column) as string,
      roleColumn: (gate.roleColumn ?? gate.role_column) as string,
      allowed: [...(gate.allowed ?? [])],
      ...(cacheTtl !== undefined ? { cacheTtl } : {}),
      ...(onDeny !== undefined ? { onDeny } : {}),
      ...(signInPath !== undefined ? { signInPath } : {}),
    };
  }

  fn(name: string, fn: ManifestFunction, pointer: string): FunctionSpec | undefined {
    const out: FunctionSpec = { runtime: fn.runtime ?? "node22" };
    if (fn.entrypoint !== undefined) out.entrypoint = fn.entrypoint;
    if (fn.source !== undefined) {
      const source = this.entry(fn.source, `${pointer}/source`, `${name}.js`);
      if (!source) return undefined;
      out.source = source;
    }
    if (fn.files !== undefined) out.files = this.fileSet(fn.files, `${pointer}/files`);
    if (fn.config !== undefined) {
      const timeoutSeconds = fn.config.timeoutSeconds ?? fn.config.timeout_seconds;
      const memoryMb = fn.config.memoryMb ?? fn.config.memory_mb;
      out.config = {
        ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
        ...(memoryMb !== undefined ? { memoryMb } : {}),
      };
    }
    if (fn.schedule !== undefined) out.schedule = fn.schedule;
    if (fn.deps !== undefined) out.deps = [...fn.deps];
    if (fn.triggers !== undefined) out.triggers = structuredClone(fn.triggers) as FunctionSpec["triggers"];
    const requireAuth = fn.requireAuth ?? fn.require_auth;
    if (requireAuth !== undefined) out.requireAuth = requireAuth;
    const requireRole = fn.requireRole !== undefined ? fn.requireRole : fn.require_role;
    if (requireRole !== undefined) out.requireRole = requireRole === null ? null : this.roleGate(requireRole);
    if (fn.class !== undefined) out.class = fn.class;
    if (fn.capabilities !== undefined) out.capabilities = [...fn.capabilities];
    return out;
  }

  functions(map: FunctionMap, pointer: string): Record<string, FunctionSpec> {
    const out: Record<string, FunctionSpec> = {};
    for (const name of Object.keys(map).sort(byCodeUnit)) {
      const fn = this.fn(name, map[name] as ManifestFunction, `${pointer}/${pointerSegment(name)}`);
      if (fn) out[name] = fn;
    }
    return out;
  }

  migration(m: NonNullable<NonNullable<AppManifest["database"]>["migrations"]>[number], at: string) {
    let ref: ContentRefHex | undefined;
    let checksum: string;
    if (m.sql_ref !== undefined) {
      ref = { ...m.sql_ref };
      checksum = m.checksum ?? m.sql_ref.sha256;
    } else {
      let bytes: Uint8Array | undefined;
      const field = m.sql !== undefined ? "sql" : m.sql_path !== undefined ? "sql_path" : "sql_file";
      if (m.sql !== undefined) bytes = new Uint8Array(Buffer.from(m.sql, "utf8"));
      else bytes = this.options.source.file((m.sql_path ?? m.sql_file) as string, `${at}/${field}`);
      if (!bytes) return undefined;
      if (!this.sqlText(bytes, `${at}/${field}`)) return undefined;
      ref = this.keep(bytes, SQL_CONTENT_TYPE, m.sql_path ?? m.sql_file ?? `${m.id ?? m.name}.sql`);
      checksum = ref.sha256;
      const standIn = m.sql === undefined && this.options.placeholders === true;
      if (m.checksum !== undefined && m.checksum !== checksum && !standIn) {
        this.fail(
          `${at}/checksum`,
          `Does not match the SQL, whose sha256 is ${checksum}.`,
          "Remove it or fix it.",
        );
      }
    }
    // Content-tracked names compile as Run402 compiles them: changed SQL becomes a new migration.
    const id = m.id ?? `${m.name}_${checksum.slice(0, 16)}`;
    const out: MigrationSpec = { id, checksum, sql_ref: ref };
    if (m.transaction !== undefined) out.transaction = m.transaction;
    return out;
  }

  /** SQL is text: strict UTF-8 (never deployed with U+FFFD in place of bad bytes) and no NUL, which Postgres refuses. */
  sqlText(bytes: Uint8Array, pointer: string): boolean {
    let text: string;
    try {
      text = strictUtf8.decode(bytes);
    } catch {
      this.fail(
        pointer,
        "The SQL is not UTF-8 text: Run402 runs migrations as UTF-8, and bad bytes would be replaced (U+FFFD), changing the SQL.",
        "Save the file as UTF-8.",
      );
      return false;
    }
    const nul = text.indexOf("\u0000");
    if (nul >= 0) {
      this.fail(
        pointer,
        `The SQL contains a NUL character (at offset ${nul}); Postgres refuses it in SQL text.`,
      );
      return false;
    }
    return true;
  }

  asset(put: AssetPut, at: string) {
    let sha256 = put.sha256;
    let size = put.size_bytes;
    let contentType = put.content_type;
    if (put.source !== undefined) {
      const ref = this.entry(put.source, `${at}/source`, put.key);
      if (!ref) return undefined;
      sha256 = ref.sha256;
      size = ref.size;
      contentType ??= ref.contentType;
    }
    // Run402's defaults, as its SDK fills them in before the wire: public, immutable, typed by key.
    return {
      key: put.key,
      sha256: sha256 as string,
      size_bytes: size as number,
      content_type: contentType ?? this.options.contentType(put.key),
      visibility: put.visibility ?? "public",
      immutable: put.immutable ?? true,
    };
  }
}

function i18nOf(value: NonNullable<AppManifest["i18n"]>): I18nSpec {
  if ("defaultLocale" in value) return structuredClone(value) as I18nSpec;
  const snake = value as {
    default_locale: string;
    locales: string[];
    detect?: string[];
    unknown_locale_policy?: string;
  };
  return {
    defaultLocale: snake.default_locale,
    locales: [...snake.locales],
    ...(snake.detect !== undefined ? { detect: [...snake.detect] as I18nSpec["detect"] } : {}),
    ...(snake.unknown_locale_policy !== undefined
      ? { unknownLocalePolicy: snake.unknown_locale_policy as I18nSpec["unknownLocalePolicy"] }
      : {}),
  };
}

function routeOf(route: Route): RouteSpec {
  // `acknowledge_readonly` silences one of Run402's plan warnings; it is not part of the release.
  const { acknowledge_readonly: _ack, ...rest } = route;
  return structuredClone(rest) as RouteSpec;
}

/**
 * Maps a schema-valid manifest to the ReleaseSpec it deploys, reading local files through `source`.
 * Authoring-only fields (`$schema`, `x-run402-omitted_features`, `verify`, `tier`, a `project` block)
 * are dropped; `idempotency_key` is returned beside the spec. Problems found on the way (missing files,
 * checksum mismatches, unclean site paths) come back as `issues` with their JSON pointers.
 */
export function toReleaseSpec(manifest: AppManifest, options: ToReleaseSpecOptions): ManifestRelease {
  const m = new Mapper(options);
  const spec: ReleaseSpec = { project: options.projectId };
  if (manifest.base !== undefined) spec.base = structuredClone(manifest.base) as ReleaseSpec["base"];

  if (manifest.database) {
    const database: NonNullable<ReleaseSpec["database"]> = {};
    if (manifest.database.migrations) {
      database.migrations = [];
      for (const [index, migration] of manifest.database.migrations.entries()) {
        const out = m.migration(migration, `/database/migrations/${index}`);
        if (out) database.migrations.push(out);
      }
    }
    if (manifest.database.expose !== undefined) database.expose = structuredClone(manifest.database.expose);
    if (manifest.database.zero_downtime !== undefined)
      database.zero_downtime = manifest.database.zero_downtime;
    spec.database = database;
  }

  if (manifest.secrets) spec.secrets = structuredClone(manifest.secrets) as ReleaseSpec["secrets"];

  if (manifest.functions) {
    const functions: NonNullable<ReleaseSpec["functions"]> = {};
    if (manifest.functions.replace)
      functions.replace = m.functions(manifest.functions.replace, "/functions/replace");
    if (manifest.functions.patch) {
      const { set, delete: remove } = manifest.functions.patch;
      functions.patch = {
        ...(set ? { set: m.functions(set, "/functions/patch/set") } : {}),
        ...(remove ? { delete: [...remove] } : {}),
      };
    }
    spec.functions = functions;
  }

  if (manifest.site) {
    const site = manifest.site;
    let files: FileSet | undefined;
    if (site.dir !== undefined) files = m.dir(site.dir, "/site/dir");
    else if (site.files !== undefined) files = m.siteFiles(site.files, "/site/files");
    else if (site.replace !== undefined) files = m.siteSource(site.replace, "/site/replace");
    const out: Record<string, unknown> = {};
    if (files) out["replace"] = files;
    if (site.patch) {
      const put = site.patch.put ? m.siteSource(site.patch.put, "/site/patch/put") : undefined;
      out["patch"] = {
        ...(put ? { put } : {}),
        ...(site.patch.delete ? { delete: [...site.patch.delete] } : {}),
      };
    }
    if (site.public_paths) out["public_paths"] = structuredClone(site.public_paths);
    spec.site = out as ReleaseSpec["site"];
  }

  if (manifest.subdomains)
    spec.subdomains = structuredClone(manifest.subdomains) as ReleaseSpec["subdomains"];
  if (manifest.routes !== undefined)
    spec.routes = manifest.routes === null ? null : { replace: manifest.routes.replace.map(routeOf) };
  if (manifest.checks !== undefined) spec.checks = manifest.checks;
  if (manifest.i18n !== undefined) spec.i18n = manifest.i18n === null ? null : i18nOf(manifest.i18n);

  if (manifest.assets) {
    const { put, delete: remove, sync } = manifest.assets;
    const assets: NonNullable<ReleaseSpec["assets"]> = {};
    if (put) {
      assets.put = [];
      for (const [index, entry] of put.entries()) {
        const out = m.asset(entry, `/assets/put/${index}`);
        if (out) assets.put.push(out);
      }
    }
    if (remove) assets.delete = [...remove];
    if (sync) assets.sync = structuredClone(sync) as NonNullable<ReleaseSpec["assets"]>["sync"];
    spec.assets = assets;
  }

  return {
    spec,
    content: m.content,
    ...(manifest.idempotency_key !== undefined ? { idempotencyKey: manifest.idempotency_key } : {}),
    issues: m.issues,
  };
}
