import { readdir, realpath, stat } from "node:fs/promises";
import { isAbsolute, join, resolve, sep } from "node:path";
import {
  digestPortableManifest,
  parseReleaseSpec,
  ReleaseCoreError,
  type ReleaseSpec,
} from "@run402/release";
import type { AppManifest } from "../../schema/app.types.js";
import { type ManifestIssue, ManifestValidationError } from "../../schema/errors.js";
import { type ContentEntry, type ContentSource, toReleaseSpec } from "../../schema/release.js";
import { releaseIssue } from "../../schema/validate.js";
import { contentTypeFor } from "./contentType.js";
import { type HashedFile, hashFile, hashFiles } from "./hash.js";

export type { ContentEntry } from "../../schema/release.js";

/** A manifest turned into Run402's ReleaseSpec, the content it needs uploaded, and its digest. */
export type ResolvedRelease = {
  /** The SDK-native ReleaseSpec, accepted by `@run402/release`'s `parseReleaseSpec`. */
  spec: ReleaseSpec;
  /**
   * Content the spec references, keyed by sha256 (site files, function code, migration SQL, assets).
   * Files on disk are hashed, not held: their bytes are read again when an upload needs them.
   */
  content: Map<string, ContentEntry>;
  /** `@run402/release`'s portable manifest digest (`run402-portable-manifest-v1:…`): content only, no project. */
  digest: string;
  /** The manifest's `idempotency_key`, for the plan request. */
  idempotencyKey?: string;
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

type Wanted = { kind: "file" | "dir"; path: string; pointer: string };

/** Reads manifest-relative paths, refusing anything outside the manifest's folder. */
class Reader {
  readonly issues: ManifestIssue[] = [];
  constructor(readonly root: string) {}

  fail(pointer: string, message: string, hint?: string): undefined {
    this.issues.push(hint ? { pointer, message, hint } : { pointer, message });
    return undefined;
  }

  /** Resolves a manifest-relative path to its real location, refusing anything outside the root. */
  async locate(rel: string, pointer: string, expect: "file" | "dir"): Promise<string | undefined> {
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
    if (expect === "dir" && !info.isDirectory()) return this.fail(pointer, `${shown} is not a directory.`);
    return real;
  }

  inside(real: string): boolean {
    return real === this.root || real.startsWith(this.root.endsWith(sep) ? this.root : this.root + sep);
  }

  /** One file, hashed (its bytes are read again only for an upload). */
  async file(rel: string, pointer: string): Promise<HashedFile | undefined> {
    const real = await this.locate(rel, pointer, "file");
    return real ? hashFile(real) : undefined;
  }

  /** Every file under a folder, hashed: the walk lists them, then they are hashed a few at a time. */
  async dir(rel: string, pointer: string): Promise<Map<string, HashedFile> | undefined> {
    const real = await this.locate(rel, pointer, "dir");
    if (!real) return undefined;
    const found: [string, string][] = [];
    await this.walk(real, "", pointer, found, new Set([real]));
    if (found.length === 0) return this.fail(pointer, `${JSON.stringify(rel)} contains no files to upload.`);
    const hashed = await hashFiles(found.map(([, file]) => file));
    return new Map(found.map(([sitePath], i) => [sitePath, hashed[i] as HashedFile]));
  }

  /** Lists `[site path, real path]` of every file under `dir` (a real path), in code-unit order. */
  async walk(dir: string, prefix: string, pointer: string, out: [string, string][], seen: Set<string>) {
    const entries = (await readdir(dir, { withFileTypes: true })).filter(
      (e) => !SKIPPED_DIR_ENTRIES.includes(e.name),
    );
    // Code-unit order, not locale order, so every machine walks (and hashes) the same way.
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const sitePath = prefix ? `${prefix}/${entry.name}` : entry.name;
      // Inside a real folder, a plain file or folder is its own real path; only symlinks are resolved.
      let real = join(dir, entry.name);
      let kind: "file" | "dir" | "other" = entry.isFile() ? "file" : entry.isDirectory() ? "dir" : "other";
      if (entry.isSymbolicLink()) {
        try {
          real = await realpath(real);
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
        kind = info.isFile() ? "file" : info.isDirectory() ? "dir" : "other";
      }
      if (kind === "dir") {
        if (seen.has(real)) {
          this.fail(pointer, `${JSON.stringify(sitePath)} is a symlink loop.`);
          continue;
        }
        await this.walk(real, sitePath, pointer, out, new Set([...seen, real]));
      } else if (kind === "file") {
        out.push([sitePath, real]);
      } else {
        this.fail(pointer, `${JSON.stringify(sitePath)} is neither a file nor a directory.`);
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
  const { manifest, dir, projectId, file } = parameters;
  const reader = new Reader(await realpath(dir));
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
  const files = new Map<string, HashedFile | undefined>();
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
  return {
    spec,
    content: mapped.content,
    digest: digestPortableManifest(spec),
    ...(mapped.idempotencyKey !== undefined ? { idempotencyKey: mapped.idempotencyKey } : {}),
  };
}
