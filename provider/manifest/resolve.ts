import { readdir, readFile, realpath, stat } from "node:fs/promises";
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

export type { ContentEntry } from "../../schema/release.js";

/** A manifest turned into Run402's ReleaseSpec, the content it needs uploaded, and its digest. */
export type ResolvedRelease = {
  /** The SDK-native ReleaseSpec, accepted by `@run402/release`'s `parseReleaseSpec`. */
  spec: ReleaseSpec;
  /** Bytes the spec references, keyed by sha256 (site files, function code, migration SQL, assets). */
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

  async file(rel: string, pointer: string): Promise<Uint8Array | undefined> {
    const real = await this.locate(rel, pointer, "file");
    return real ? new Uint8Array(await readFile(real)) : undefined;
  }

  async dir(rel: string, pointer: string): Promise<Map<string, Uint8Array> | undefined> {
    const real = await this.locate(rel, pointer, "dir");
    if (!real) return undefined;
    const files = new Map<string, Uint8Array>();
    await this.walk(real, "", pointer, files, new Set([real]));
    if (files.size === 0) return this.fail(pointer, `${JSON.stringify(rel)} contains no files to upload.`);
    return files;
  }

  async walk(dir: string, prefix: string, pointer: string, out: Map<string, Uint8Array>, seen: Set<string>) {
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
        out.set(sitePath, new Uint8Array(await readFile(real)));
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
  const files = new Map<string, Uint8Array | undefined>();
  const dirs = new Map<string, Map<string, Uint8Array> | undefined>();
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
