/**
 * A per-process cache of resolved manifest files. A program that declares many Deployments of one
 * manifest (or a provider that checks one Deployment in preview, then in the update) would otherwise
 * read, parse, validate, walk and hash the same files once per check.
 *
 * An entry is reused only while every path its resolution depended on is as it was: the manifest
 * path (a folder's entries, when it names a folder), the manifest file, and each file read or
 * hashed, folder listed and symlink resolved (provider/manifest/resolve.ts records them), compared
 * by `stat` (device, inode, mode, size, mtime and ctime in nanoseconds) or, for a symlink, by where
 * it resolves. Timestamps are only as fine as the kernel's clock tick, so two same-size writes
 * within one tick look alike: a resolution whose files changed within {@link MANIFEST_CACHE}'s
 * `racyMs` of it (by mtime or ctime) is not kept (git's "racily clean" rule). Failures are never
 * kept. The key holds everything else resolution depends on: the absolute path, the project id,
 * the file name errors show, and the read limits.
 */
import { realpathSync, statSync } from "node:fs";
import type { AppManifest } from "../../schema/app.types.js";
import { loadManifest } from "./load.js";
import { READ_LIMITS } from "./read.js";
import { type ResolvedRelease, resolveManifestTracked, type Touched } from "./resolve.js";

/** The cache's settings: `racyMs`, how recent a change keeps a resolution out; `entries`, how many are kept. */
export const MANIFEST_CACHE = { racyMs: 2000, entries: 32 };

/** A loaded manifest file and its resolution. */
export type ResolvedManifestFile = { manifest: AppManifest; file: string; resolved: ResolvedRelease };

type Seen = { path: string; real?: true; was: string };
type Entry = { value: ResolvedManifestFile; seen: Seen[] };

const cache = new Map<string, Entry>();

/** What a path is now: its stat (or "missing"), or with `real`, its real path. */
function now(touched: Touched): { sig: string; changedNs: bigint } {
  if (touched.real) {
    try {
      return { sig: realpathSync(touched.path), changedNs: 0n };
    } catch {
      return { sig: "missing", changedNs: 0n };
    }
  }
  const s = statSync(touched.path, { bigint: true, throwIfNoEntry: false });
  if (!s) return { sig: "missing", changedNs: 0n };
  // ctime follows every change (mtime can be set back); mtime is the later one only when set ahead.
  let changedNs = s.ctimeNs;
  if (s.mtimeNs > changedNs) changedNs = s.mtimeNs;
  return { sig: `${s.dev}:${s.ino}:${s.mode}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`, changedNs };
}

function unchanged(entry: Entry): boolean {
  for (const seen of entry.seen) if (now(seen).sig !== seen.was) return false;
  return true;
}

/**
 * {@link loadManifest} and {@link resolveManifestTracked} of the manifest at `path` (a file, or a
 * folder holding one), from the cache when nothing it read has changed.
 */
export async function resolveManifestFile(
  path: string,
  options: { projectId: string; file?: string },
): Promise<ResolvedManifestFile> {
  const key = JSON.stringify([path, options.projectId, options.file ?? null, READ_LIMITS]);
  const hit = cache.get(key);
  if (hit) {
    if (unchanged(hit)) return hit.value;
    cache.delete(key);
  }
  const startedNs = BigInt(Date.now()) * 1_000_000n;
  const loaded = await loadManifest(path);
  const { resolved, touched } = await resolveManifestTracked({
    manifest: loaded.manifest,
    dir: loaded.dir,
    projectId: options.projectId,
    ...(options.file !== undefined ? { file: options.file } : {}),
  });
  const value = { manifest: loaded.manifest, file: loaded.file, resolved };
  // Read after the resolution: a change made while it ran shows as a recent change, so it is not kept.
  const seen: Seen[] = [];
  let racy = false;
  const racyNs = startedNs - BigInt(Math.round(MANIFEST_CACHE.racyMs)) * 1_000_000n;
  for (const t of [{ path }, { path: loaded.file }, ...touched]) {
    const { sig, changedNs } = now(t);
    if (changedNs >= racyNs) racy = true;
    seen.push({ ...t, was: sig });
  }
  if (!racy && MANIFEST_CACHE.entries > 0) {
    if (cache.size >= MANIFEST_CACHE.entries) cache.delete(cache.keys().next().value as string);
    cache.set(key, { value, seen });
  }
  return value;
}

/** Empties the cache (tests). */
export function clearManifestCache(): void {
  cache.clear();
}
