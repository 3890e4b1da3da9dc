import type { Dirent, Stats } from "node:fs";
import { readdir, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, resolve, sep } from "node:path";
import { performance } from "node:perf_hooks";
import {
  digestPortableManifest,
  parseReleaseSpec,
  ReleaseCoreError,
  type ReleaseSpec,
} from "@run402/release";
import { byCodeUnits } from "../../core/order.js";
import type { AppManifest } from "../../schema/app.types.js";
import { type ManifestIssue, ManifestValidationError } from "../../schema/errors.js";
import { type ContentEntry, type ContentSource, toReleaseSpec } from "../../schema/release.js";
import { isNeverUploaded, NEVER_UPLOADED } from "../../schema/semantics.js";
import { releaseIssue } from "../../schema/validate.js";
import { contentTypeFor } from "./contentType.js";
import { type HashedFile, hashBounded } from "./hash.js";
import { describeFsError, describeKind, formatBytes, READ_LIMITS, readBounded } from "./read.js";

export type { ContentEntry } from "../../schema/release.js";

/** A manifest turned into Run402's ReleaseSpec, the content it needs uploaded, and its digest. */
export type ResolvedRelease = {
  /** The SDK-native ReleaseSpec, accepted by `@run402/release`'s `parseReleaseSpec`. */
  spec: ReleaseSpec;
  /**
   * Content the spec references, keyed by sha256 (site files, function code, migration SQL, assets).
   * Files found by walking a folder are hashed, not held: their bytes are read again for an upload.
   */
  content: Map<string, ContentEntry>;
  /** `@run402/release`'s portable manifest digest (`run402-portable-manifest-v1:…`): content only, no project. */
  digest: string;
  /** The manifest's `idempotency_key`, for the plan request. */
  idempotencyKey?: string;
  /**
   * Entries the folder walk left out, as site paths (a folder ends with `/`), and why: dot entries
   * not listed in `site.include_dotfiles` (`dotfile`), and names that are never uploaded (`never`).
   */
  skipped: { path: string; why: "dotfile" | "never" }[];
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

/** Folder entries never uploaded (see `NEVER_UPLOADED` in schema/semantics.ts). */
export const SKIPPED_DIR_ENTRIES: readonly string[] = NEVER_UPLOADED;

type Wanted = { kind: "file" | "dir"; path: string; pointer: string };

/**
 * A path the resolution depended on: its `stat` (a file's content, a folder's entries), or with
 * `real`, where it resolves to (a symlink's target). provider/manifest/cache.ts checks them again.
 */
export type Touched = { path: string; real?: true };

/** Longest stretch of hashing before other work in this process (the provider's gRPC calls) gets a turn. */
const SLICE_MS = 25;

/** Reads manifest-relative paths, refusing anything outside the manifest's folder; bounded in bytes and files. */
class Reader {
  readonly issues: ManifestIssue[] = [];
  readonly skipped: ResolvedRelease["skipped"] = [];
  /** Every path read, listed or resolved, for provider/manifest/cache.ts. */
  readonly touched: Touched[] = [];
  private bytes = 0;
  private walked = 0;
  private budgetReported = false;
  /** Dot entries to upload, as site paths; a folder's ends with `/`. */
  private readonly dotfiles: readonly string[];

  constructor(
    readonly root: string,
    dotfiles: readonly string[] = [],
  ) {
    this.dotfiles = dotfiles;
  }

  fail(pointer: string, message: string, hint?: string): undefined {
    this.issues.push(hint ? { pointer, message, hint } : { pointer, message });
    return undefined;
  }

  /** Checks a manifest-relative path's spelling: relative, portable, inside the folder. */
  spelling(rel: string, pointer: string): boolean {
    const shown = JSON.stringify(rel);
    if (rel.includes("\u0000")) {
      this.fail(pointer, `${shown} contains a NUL character; no file has such a name.`);
      return false;
    }
    if (isAbsolute(rel) || /^[A-Za-z]:/.test(rel) || rel.startsWith("\\")) {
      this.fail(
        pointer,
        `${shown} is an absolute path; paths in a manifest are relative to the manifest's folder.`,
        `Write it relative to ${this.root}.`,
      );
      return false;
    }
    if (rel.startsWith("~")) {
      this.fail(
        pointer,
        `${shown} starts with "~", which is not expanded: paths in a manifest are relative to the manifest's folder.`,
        `Write it relative to ${this.root}.`,
      );
      return false;
    }
    if (rel.includes("\\")) {
      this.fail(
        pointer,
        `${shown} uses "\\" (a Windows separator); paths in a manifest use "/".`,
        `Write it as ${JSON.stringify(rel.replaceAll("\\", "/"))}.`,
      );
      return false;
    }
    if (rel.split("/").includes("..")) {
      this.fail(
        pointer,
        `${shown} leaves the manifest's folder; ".." segments are not allowed.`,
        "Move the file under the manifest's folder.",
      );
      return false;
    }
    return true;
  }

  /** Resolves a manifest-relative path to its real location, refusing anything outside the root. */
  async locate(rel: string, pointer: string, expect: "file" | "dir"): Promise<string | undefined> {
    if (!this.spelling(rel, pointer)) return undefined;
    const shown = JSON.stringify(rel);
    const abs = resolve(this.root, rel);
    this.touched.push({ path: abs, real: true });
    let real: string;
    try {
      real = await realpath(abs);
    } catch (error) {
      return this.fail(pointer, `${shown} ${describeFsError(error).reason} (looked for ${abs}).`);
    }
    if (!this.inside(real)) {
      return this.fail(
        pointer,
        `${shown} resolves outside the manifest's folder (to ${real}); symlinks must stay inside it.`,
      );
    }
    this.touched.push({ path: real });
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(real);
    } catch (error) {
      return this.fail(pointer, `${shown} ${describeFsError(error).reason}.`);
    }
    if (expect === "file" && !info.isFile())
      return this.fail(pointer, `${shown} is ${describeKind(info)}, not a regular file.`);
    if (expect === "dir" && !info.isDirectory())
      return this.fail(
        pointer,
        `${shown} is ${info.isFile() ? "a file" : describeKind(info)}, not a directory.`,
      );
    return real;
  }

  inside(real: string): boolean {
    return real === this.root || real.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep);
  }

  /** Reads one regular file within the per-file and total limits. */
  async read(real: string, shown: string, pointer: string): Promise<Uint8Array | undefined> {
    const left = READ_LIMITS.totalBytes - this.bytes;
    const result = await readBounded(real, Math.min(READ_LIMITS.fileBytes, Math.max(left, 0)));
    if (!result.ok) {
      if (result.kind === "too-large" && left < READ_LIMITS.fileBytes) return this.overBudget(pointer);
      return this.fail(pointer, `${shown} ${result.reason}.`);
    }
    this.bytes += result.bytes.byteLength;
    return result.bytes;
  }

  /**
   * Hashes one regular file within the same limits as {@link read}, streaming it through a reused
   * buffer (provider/manifest/hash.ts): a folder of any size costs its hashes, not its bytes.
   */
  hash(real: string, shown: string, pointer: string): HashedFile | undefined {
    const left = READ_LIMITS.totalBytes - this.bytes;
    const result = hashBounded(real, Math.min(READ_LIMITS.fileBytes, Math.max(left, 0)));
    if (!result.ok) {
      if (result.kind === "too-large" && left < READ_LIMITS.fileBytes) return this.overBudget(pointer);
      return this.fail(pointer, `${shown} ${result.reason}.`);
    }
    this.bytes += result.file.size;
    return result.file;
  }

  overBudget(pointer: string): undefined {
    if (!this.budgetReported) {
      this.budgetReported = true;
      this.fail(
        pointer,
        `The files this manifest names add up to more than ${formatBytes(READ_LIMITS.totalBytes)}, the most one deploy reads.`,
        "Deploy large media as assets uploaded separately, or split the site.",
      );
    }
    return undefined;
  }

  async file(rel: string, pointer: string): Promise<Uint8Array | undefined> {
    const real = await this.locate(rel, pointer, "file");
    return real ? this.read(real, JSON.stringify(rel), pointer) : undefined;
  }

  async dir(rel: string, pointer: string): Promise<Map<string, HashedFile> | undefined> {
    const real = await this.locate(rel, pointer, "dir");
    if (!real) return undefined;
    const files = new Map<string, HashedFile>();
    const before = this.issues.length;
    await this.walk(real, "", pointer, files, new Set([real]));
    if (files.size === 0 && this.issues.length === before)
      return this.fail(
        pointer,
        `${JSON.stringify(rel)} contains no files to upload${this.skipped.length > 0 ? ` (left out: ${this.skipped.map((s) => s.path).join(", ")})` : ""}.`,
      );
    return files;
  }

  /** Whether a dot entry (its site path, a folder's ending with `/`) is listed in `site.include_dotfiles`. */
  private dotfileIncluded(sitePath: string): boolean {
    return this.dotfiles.some((listed) =>
      listed.endsWith("/") ? sitePath === listed || sitePath.startsWith(listed) : sitePath === listed,
    );
  }

  /** Hashing runs synchronously; every {@link SLICE_MS} ms the walk lets the process do other work. */
  private slice = performance.now();

  async walk(dir: string, prefix: string, pointer: string, out: Map<string, HashedFile>, seen: Set<string>) {
    let entries: Dirent[];
    this.touched.push({ path: dir });
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      this.fail(pointer, `${JSON.stringify(prefix || ".")} ${describeFsError(error).reason}.`);
      return;
    }
    // Code-unit order, not locale order, so every machine walks (and hashes) the same way.
    entries.sort((a, b) => byCodeUnits(a.name, b.name));
    for (const entry of entries) {
      const { name } = entry;
      const sitePath = prefix ? `${prefix}/${name}` : name;
      if (isNeverUploaded(name)) {
        this.skipped.push({ path: sitePath, why: "never" });
        continue;
      }
      // `dir` is a real path: a plain file or folder in it is its own real path, and its type is in
      // the listing. Only a symlink is resolved (and checked to stay inside) and its target stat'ed.
      let real = join(dir, name);
      let info: Pick<Stats, "isFile" | "isDirectory"> = entry;
      if (entry.isSymbolicLink()) {
        this.touched.push({ path: real, real: true });
        try {
          real = await realpath(real);
        } catch (error) {
          const { reason, kind } = describeFsError(error);
          this.fail(
            pointer,
            `${JSON.stringify(sitePath)} ${kind === "missing" ? "is a broken symlink" : reason}.`,
          );
          continue;
        }
        if (!this.inside(real)) {
          this.fail(
            pointer,
            `${JSON.stringify(sitePath)} is a symlink that resolves outside the manifest's folder (to ${real}).`,
          );
          continue;
        }
      }
      if (entry.isSymbolicLink() || !(entry.isFile() || entry.isDirectory())) {
        try {
          info = await stat(real);
        } catch (error) {
          this.fail(pointer, `${JSON.stringify(sitePath)} ${describeFsError(error).reason}.`);
          continue;
        }
      }
      const shownPath = info.isDirectory() ? `${sitePath}/` : sitePath;
      if (name.startsWith(".") && !this.dotfileIncluded(shownPath)) {
        this.skipped.push({ path: shownPath, why: "dotfile" });
        continue;
      }
      if (info.isDirectory()) {
        if (seen.has(real)) {
          this.fail(pointer, `${JSON.stringify(sitePath)} is a symlink loop.`);
          continue;
        }
        await this.walk(real, sitePath, pointer, out, new Set([...seen, real]));
      } else if (info.isFile()) {
        this.walked += 1;
        if (this.walked > READ_LIMITS.dirFiles) {
          if (this.walked === READ_LIMITS.dirFiles + 1)
            this.fail(
              pointer,
              `The folders this manifest names hold more than ${READ_LIMITS.dirFiles} files, the most one deploy reads.`,
            );
          return;
        }
        this.touched.push({ path: real });
        const hashed = this.hash(real, JSON.stringify(sitePath), pointer);
        if (hashed) out.set(sitePath, hashed);
        if (performance.now() - this.slice > SLICE_MS) {
          await new Promise((resolve) => setImmediate(resolve));
          this.slice = performance.now();
        }
      } else {
        this.fail(
          pointer,
          `${JSON.stringify(sitePath)} is ${describeKind(info as Stats)}, not a regular file or folder.`,
        );
      }
    }
  }
}

/**
 * Reads every file a manifest names (never outside its folder), maps the manifest to Run402's
 * ReleaseSpec (schema/release.ts, the one mapping validation also uses) and has `@run402/release`
 * parse it. Throws `ManifestValidationError` listing every missing, escaping or unreadable path, or
 * Run402's own objection with its pointer.
 * @example
 * import { loadManifest, resolveManifest } from "pulumi-run402/provider/manifest";
 * const { manifest, dir } = await loadManifest("app.json");
 * const release = await resolveManifest({ manifest, dir, projectId: "prj_123" });
 */
export async function resolveManifest(parameters: ResolveManifestParameters): Promise<ResolvedRelease> {
  return (await resolveManifestTracked(parameters)).resolved;
}

/**
 * {@link resolveManifest}, and every path the resolution read, listed or resolved (for
 * provider/manifest/cache.ts, which checks them again before reusing the result).
 */
export async function resolveManifestTracked(
  parameters: ResolveManifestParameters,
): Promise<{ resolved: ResolvedRelease; touched: Touched[] }> {
  const { manifest, dir, projectId, file } = parameters;
  const reader = new Reader(await realpath(dir), manifest.site?.include_dotfiles ?? []);
  reader.touched.push({ path: dir, real: true });
  const options = { projectId, contentType: contentTypeFor };

  // The mapping is synchronous: a first pass names every path it needs, then they are read, then it runs for real.
  const wanted: Wanted[] = [];
  const recording: ContentSource = {
    file(path, pointer) {
      wanted.push({ kind: "file", path, pointer });
      return new Uint8Array();
    },
    dir(path, pointer) {
      wanted.push({ kind: "dir", path, pointer });
      return new Map();
    },
  };
  toReleaseSpec(manifest, { ...options, source: recording });
  const files = new Map<string, Uint8Array | undefined>();
  const dirs = new Map<string, Map<string, HashedFile> | undefined>();
  for (const w of wanted) {
    const key = `${w.path}\u0000${w.pointer}`;
    if (w.kind === "file") files.set(key, await reader.file(w.path, w.pointer));
    else dirs.set(key, await reader.dir(w.path, w.pointer));
  }
  const mapped = toReleaseSpec(manifest, {
    ...options,
    source: {
      file: (path, pointer) => files.get(`${path}\u0000${pointer}`),
      dir: (path, pointer) => dirs.get(`${path}\u0000${pointer}`),
    },
  });
  const issues = [...reader.issues, ...mapped.issues];
  if (issues.length > 0) throw new ManifestValidationError({ issues, file });
  let spec: ReleaseSpec;
  try {
    spec = parseReleaseSpec(mapped.spec);
  } catch (error) {
    if (!(error instanceof ReleaseCoreError)) throw error;
    throw new ManifestValidationError({ issues: [releaseIssue(error, manifest)], file, cause: error });
  }
  const resolved: ResolvedRelease = {
    spec,
    content: mapped.content,
    digest: digestPortableManifest(spec),
    ...(mapped.idempotencyKey !== undefined ? { idempotencyKey: mapped.idempotencyKey } : {}),
    skipped: reader.skipped,
  };
  return { resolved, touched: reader.touched };
}
