import { readdir, readFile, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, resolve, sep } from "node:path";
import type {
  AppManifest,
  FileEntry,
  FunctionMap,
  FunctionSpec,
  LocalDirRef,
  PublicPaths,
  Route,
  SiteFiles,
  SiteSource,
} from "../../schema/app.types.js";
import { type ManifestIssue, ManifestValidationError } from "../../schema/errors.js";
import { contentTypeFor } from "./contentType.js";
import { canonicalJson, sha256Hex } from "./hash.js";

/** A content reference on the wire: the bytes are uploaded separately, by sha256. */
export type WireContentRef = { sha256: string; size: number; content_type: string };

/** A migration on the wire: the id is final (names are already compiled to ids). */
export type WireMigration = { id: string; checksum: string; sql: string; transaction: "required" | "none" };

/** A function on the wire. */
export type WireFunction = {
  runtime: "node22";
  source: WireContentRef;
  config: { timeout_seconds?: number; memory_mb?: number };
  schedule: string | null;
  deps?: string[];
  require_auth?: boolean;
};

/** The snake_case ReleaseSpec sent to `POST /apply/v1/plans` (docs/ARCHITECTURE.md); absent slices carry forward. */
export type WireReleaseSpec = {
  project_id: string;
  base: { release: "current" | "empty" } | { release_id: string };
  database?: { migrations?: WireMigration[]; zero_downtime?: boolean };
  site?: {
    replace?: Record<string, WireContentRef>;
    patch?: { put?: Record<string, WireContentRef>; delete?: string[] };
    public_paths?: PublicPaths;
  };
  functions?: {
    replace?: Record<string, WireFunction>;
    patch?: { set?: Record<string, WireFunction>; delete?: string[] };
  };
  secrets?: { require?: string[]; delete?: string[] };
  subdomains?: { set?: string[]; add?: string[]; remove?: string[] };
  routes?: { replace: Route[] } | null;
};

/** Bytes to upload for one sha256 (the first path that produced them). */
export type ContentEntry = { bytes: Uint8Array; contentType: string; path: string };

/** What a resolved manifest declares, small enough for Pulumi state and previews. */
export type ResolvedSummary = {
  files: { path: string; sha256: string; size: number; contentType: string }[];
  migrations: { id: string; checksum: string }[];
  functions: { name: string; sha256: string }[];
};

/** A manifest turned into its wire spec, the content it needs uploaded, a summary and a digest. */
export type ResolvedRelease = {
  spec: WireReleaseSpec;
  content: Map<string, ContentEntry>;
  summary: ResolvedSummary;
  /** sha256 hex of the canonical JSON (sorted keys) of `spec`. */
  digest: string;
};

/** Input of {@link resolveManifest}. */
export type ResolveManifestParameters = {
  /** A manifest that passed `validateManifest`. */
  manifest: AppManifest;
  /** The manifest's folder; every path in the manifest is relative to it and may not leave it. */
  dir: string;
  /** The project the release is for (the provider knows it; the manifest's own project fields are ignored). */
  projectId: string;
  /** The manifest's file name, for error messages. */
  file?: string;
};

/** Directory entries never uploaded when a site comes from a folder (version control and package caches). */
export const SKIPPED_DIR_ENTRIES: readonly string[] = [".git", "node_modules"];

type Loaded = { bytes: Uint8Array; sha256: string; contentType: string };

class Resolver {
  readonly issues: ManifestIssue[] = [];
  readonly content = new Map<string, ContentEntry>();
  constructor(readonly root: string) {}

  fail(pointer: string, message: string, hint?: string): undefined {
    this.issues.push(hint ? { pointer, message, hint } : { pointer, message });
    return undefined;
  }

  /** Resolves a manifest-relative path to its real location, refusing anything outside the root. */
  async locate(rel: string, pointer: string, expect: "file" | "directory"): Promise<string | undefined> {
    const shown = JSON.stringify(rel);
    if (isAbsolute(rel) || /^[A-Za-z]:/.test(rel) || rel.startsWith("\\")) {
      return this.fail(
        pointer,
        `${shown} is an absolute path; paths in a manifest are relative to the manifest's folder.`,
        `Write it relative to ${this.root}.`,
      );
    }
    if (rel.split(/[\\/]/).includes("..")) {
      return this.fail(
        pointer,
        `${shown} leaves the manifest's folder; ".." segments are not allowed.`,
        "Move the file under the manifest's folder.",
      );
    }
    const abs = resolve(this.root, rel);
    let real: string;
    try {
      real = await realpath(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      return this.fail(pointer, `${shown} does not exist (looked for ${abs}).`);
    }
    if (!this.inside(real)) {
      return this.fail(
        pointer,
        `${shown} resolves outside the manifest's folder (to ${real}); symlinks must stay inside it.`,
      );
    }
    const info = await stat(real);
    if (expect === "file" && !info.isFile()) return this.fail(pointer, `${shown} is not a file.`);
    if (expect === "directory" && !info.isDirectory())
      return this.fail(pointer, `${shown} is not a directory.`);
    return real;
  }

  inside(real: string): boolean {
    return real === this.root || real.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep);
  }

  keep(bytes: Uint8Array, contentType: string, path: string): Loaded {
    const sha256 = sha256Hex(bytes);
    if (!this.content.has(sha256)) this.content.set(sha256, { bytes, contentType, path });
    return { bytes, sha256, contentType };
  }

  decode(data: string, encoding: "utf-8" | "base64" | undefined, pointer: string): Uint8Array | undefined {
    if (encoding !== "base64") return new Uint8Array(Buffer.from(data, "utf8"));
    if (
      !/^[A-Za-z0-9+/]*={0,2}$/.test(data.replace(/\s+/g, "")) ||
      data.replace(/\s+/g, "").length % 4 === 1
    ) {
      return this.fail(`${pointer}/data`, "Is not valid base64.");
    }
    return new Uint8Array(Buffer.from(data, "base64"));
  }

  /** A file entry (string = the text itself, `{ path }`, `{ data, encoding? }`). */
  async entry(
    entry: FileEntry,
    pointer: string,
    name: string,
    defaultType?: string,
  ): Promise<Loaded | undefined> {
    if (typeof entry === "string") {
      return this.keep(new Uint8Array(Buffer.from(entry, "utf8")), defaultType ?? contentTypeFor(name), name);
    }
    const contentType = entry.content_type ?? entry.contentType ?? defaultType ?? contentTypeFor(name);
    if (entry.path !== undefined) {
      const real = await this.locate(entry.path, `${pointer}/path`, "file");
      if (!real) return undefined;
      return this.keep(new Uint8Array(await readFile(real)), contentType, name);
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
    return true;
  }

  async dir(rel: string, pointer: string): Promise<Map<string, Loaded> | undefined> {
    const real = await this.locate(rel, pointer, "directory");
    if (!real) return undefined;
    const files = new Map<string, Loaded>();
    await this.walk(real, "", pointer, files, new Set([real]));
    if (files.size === 0) this.fail(pointer, `${JSON.stringify(rel)} contains no files to upload.`);
    return files;
  }

  async walk(dir: string, prefix: string, pointer: string, out: Map<string, Loaded>, seen: Set<string>) {
    const names = (await readdir(dir)).filter((n) => !SKIPPED_DIR_ENTRIES.includes(n));
    // Code-unit order, not locale order, so every machine walks (and hashes) the same way.
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      const sitePath = prefix ? `${prefix}/${name}` : name;
      let real: string;
      try {
        real = await realpath(join(dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
        this.fail(pointer, `${JSON.stringify(sitePath)} is a broken symlink.`);
        continue;
      }
      if (!this.inside(real)) {
        this.fail(
          pointer,
          `${JSON.stringify(sitePath)} is a symlink that resolves outside the manifest's folder (to ${real}).`,
        );
        continue;
      }
      const info = await stat(real);
      if (info.isDirectory()) {
        if (seen.has(real)) {
          this.fail(pointer, `${JSON.stringify(sitePath)} is a symlink loop.`);
          continue;
        }
        await this.walk(real, sitePath, pointer, out, new Set([...seen, real]));
      } else if (info.isFile()) {
        out.set(
          sitePath,
          this.keep(new Uint8Array(await readFile(real)), contentTypeFor(sitePath), sitePath),
        );
      } else {
        this.fail(pointer, `${JSON.stringify(sitePath)} is neither a file nor a directory.`);
      }
    }
  }

  async siteSource(source: SiteSource, pointer: string): Promise<Map<string, Loaded> | undefined> {
    if (isLocalDir(source)) return this.dir(source.path, `${pointer}/path`);
    return this.fileSet(source, pointer);
  }

  async fileSet(set: Record<string, FileEntry>, pointer: string): Promise<Map<string, Loaded>> {
    const out = new Map<string, Loaded>();
    for (const [path, entry] of Object.entries(set)) {
      const at = `${pointer}/${path.replaceAll("~", "~0").replaceAll("/", "~1")}`;
      if (!this.sitePath(path, at)) continue;
      const loaded = await this.entry(entry, at, path);
      if (loaded) out.set(path, loaded);
    }
    return out;
  }

  async siteFiles(files: SiteFiles, pointer: string): Promise<Map<string, Loaded>> {
    if (!Array.isArray(files)) return this.fileSet(files, pointer);
    const out = new Map<string, Loaded>();
    for (const [index, file] of files.entries()) {
      const at = `${pointer}/${index}`;
      if (!this.sitePath(file.path, `${at}/path`)) continue;
      const contentType = file.content_type ?? file.contentType ?? contentTypeFor(file.path);
      let loaded: Loaded | undefined;
      if (file.data !== undefined) {
        const bytes = this.decode(file.data, file.encoding, at);
        loaded = bytes && this.keep(bytes, contentType, file.path);
      } else {
        const field = file.source !== undefined ? "source" : "path";
        const real = await this.locate(file.source ?? file.path, `${at}/${field}`, "file");
        if (real) loaded = this.keep(new Uint8Array(await readFile(real)), contentType, file.path);
      }
      if (loaded) out.set(file.path, loaded);
    }
    return out;
  }

  async functions(map: FunctionMap, pointer: string): Promise<Record<string, WireFunction>> {
    const out: Record<string, WireFunction> = {};
    for (const name of Object.keys(map).sort()) {
      const fn = map[name] as FunctionSpec;
      const source = await this.entry(
        fn.source,
        `${pointer}/${name}/source`,
        `${name}.js`,
        "text/javascript",
      );
      if (!source) continue;
      const config: WireFunction["config"] = {};
      const timeout = fn.config?.timeout_seconds ?? fn.config?.timeoutSeconds;
      const memory = fn.config?.memory_mb ?? fn.config?.memoryMb;
      if (timeout !== undefined) config.timeout_seconds = timeout;
      if (memory !== undefined) config.memory_mb = memory;
      out[name] = {
        runtime: fn.runtime ?? "node22",
        source: ref(source),
        config,
        schedule: fn.schedule ?? null,
        ...(fn.deps ? { deps: [...fn.deps] } : {}),
        ...(fn.require_auth !== undefined ? { require_auth: fn.require_auth } : {}),
      };
    }
    return out;
  }
}

function isLocalDir(source: SiteSource): source is LocalDirRef {
  return (source as { __source?: unknown }).__source === "local-dir";
}

function ref(loaded: Loaded): WireContentRef {
  return { sha256: loaded.sha256, size: loaded.bytes.byteLength, content_type: loaded.contentType };
}

function refs(files: Map<string, Loaded>): Record<string, WireContentRef> {
  const out: Record<string, WireContentRef> = {};
  for (const path of [...files.keys()].sort()) out[path] = ref(files.get(path) as Loaded);
  return out;
}

/**
 * Reads every file a manifest names (never outside its folder) and builds the wire ReleaseSpec, the
 * content to upload, a summary for previews and a digest. Throws `ManifestValidationError` listing every
 * missing, escaping or unreadable path.
 * @example
 * import { loadManifest, resolveManifest } from "pulumi-run402/provider/manifest";
 * const { manifest, dir } = await loadManifest("app.json");
 * const release = await resolveManifest({ manifest, dir, projectId: "prj_123" });
 */
export async function resolveManifest(parameters: ResolveManifestParameters): Promise<ResolvedRelease> {
  const { manifest, dir, projectId, file } = parameters;
  const r = new Resolver(await realpath(dir));
  const spec: WireReleaseSpec = { project_id: projectId, base: manifest.base ?? { release: "current" } };
  const summary: ResolvedSummary = { files: [], migrations: [], functions: [] };

  if (manifest.database) {
    const database: NonNullable<WireReleaseSpec["database"]> = {};
    if (manifest.database.migrations) {
      database.migrations = [];
      const ids = new Map<string, number>();
      for (const [index, m] of manifest.database.migrations.entries()) {
        const at = `/database/migrations/${index}`;
        let sql = m.sql;
        const sqlField = m.sql_path !== undefined ? "sql_path" : "sql_file";
        const sqlPath = m.sql_path ?? m.sql_file;
        if (sql === undefined && sqlPath !== undefined) {
          const real = await r.locate(sqlPath, `${at}/${sqlField}`, "file");
          if (real) sql = await readFile(real, "utf8");
        }
        if (sql === undefined) continue;
        const checksum = sha256Hex(sql);
        if (m.checksum !== undefined && m.checksum !== checksum) {
          r.fail(
            `${at}/checksum`,
            `Does not match the SQL, whose sha256 is ${checksum}.`,
            "Remove it or fix it.",
          );
        }
        // run402 compiles content-tracked names the same way, so a changed SQL becomes a new migration.
        const id = m.id ?? `${m.name}_${checksum.slice(0, 16)}`;
        const first = ids.get(id);
        if (first !== undefined) r.fail(at, `Migration id ${JSON.stringify(id)} repeats migration ${first}.`);
        ids.set(id, index);
        database.migrations.push({ id, checksum, sql, transaction: m.transaction ?? "required" });
        summary.migrations.push({ id, checksum });
      }
    }
    if (manifest.database.zero_downtime !== undefined)
      database.zero_downtime = manifest.database.zero_downtime;
    spec.database = database;
  }

  if (manifest.site) {
    const site = manifest.site;
    const wire: NonNullable<WireReleaseSpec["site"]> = {};
    let files: Map<string, Loaded> | undefined;
    if (site.dir !== undefined) files = await r.dir(site.dir, "/site/dir");
    else if (site.files !== undefined) files = await r.siteFiles(site.files, "/site/files");
    else if (site.replace !== undefined) files = await r.siteSource(site.replace, "/site/replace");
    if (files) wire.replace = refs(files);
    if (site.patch) {
      const put = site.patch.put ? await r.siteSource(site.patch.put, "/site/patch/put") : undefined;
      wire.patch = {
        ...(put ? { put: refs(put) } : {}),
        ...(site.patch.delete ? { delete: [...site.patch.delete] } : {}),
      };
      files = put;
    }
    if (site.public_paths) wire.public_paths = site.public_paths;
    for (const [path, loaded] of [...(files ?? new Map<string, Loaded>())].sort(([a], [b]) =>
      a < b ? -1 : 1,
    )) {
      summary.files.push({
        path,
        sha256: loaded.sha256,
        size: loaded.bytes.byteLength,
        contentType: loaded.contentType,
      });
    }
    spec.site = wire;
  }

  if (manifest.functions) {
    const wire: NonNullable<WireReleaseSpec["functions"]> = {};
    let declared: Record<string, WireFunction> = {};
    if (manifest.functions.replace) {
      wire.replace = await r.functions(manifest.functions.replace, "/functions/replace");
      declared = wire.replace;
    }
    if (manifest.functions.patch) {
      const set = manifest.functions.patch.set
        ? await r.functions(manifest.functions.patch.set, "/functions/patch/set")
        : undefined;
      wire.patch = {
        ...(set ? { set } : {}),
        ...(manifest.functions.patch.delete ? { delete: [...manifest.functions.patch.delete] } : {}),
      };
      declared = set ?? {};
    }
    for (const [name, fn] of Object.entries(declared))
      summary.functions.push({ name, sha256: fn.source.sha256 });
    spec.functions = wire;
  }

  if (manifest.secrets) spec.secrets = structuredClone(manifest.secrets);
  if (manifest.subdomain !== undefined) spec.subdomains = { set: [manifest.subdomain] };
  if (manifest.subdomains) spec.subdomains = structuredClone(manifest.subdomains);
  if (manifest.routes !== undefined) spec.routes = structuredClone(manifest.routes);

  if (r.issues.length > 0) throw new ManifestValidationError({ issues: r.issues, file });
  return { spec, content: r.content, summary, digest: sha256Hex(canonicalJson(spec)) };
}
