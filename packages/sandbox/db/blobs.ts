/** Content-addressed bytes (site files, function sources): files under a directory, or memory. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Stores bytes by sha256. */
export interface BlobStore {
  put(sha256: string, bytes: Buffer): void;
  get(sha256: string): Buffer | undefined;
  has(sha256: string): boolean;
}

/** Opens a blob store in `dir`, or in memory without one. */
export function openBlobs(dir?: string): BlobStore {
  if (!dir) {
    const map = new Map<string, Buffer>();
    return { put: (k, b) => void map.set(k, b), get: (k) => map.get(k), has: (k) => map.has(k) };
  }
  mkdirSync(dir, { recursive: true });
  const path = (sha: string) => join(dir, sha.replace(/[^0-9a-f]/g, ""));
  return {
    put(sha, bytes) {
      const tmp = `${path(sha)}.${process.pid}.tmp`;
      writeFileSync(tmp, bytes);
      renameSync(tmp, path(sha));
    },
    get: (sha) => (existsSync(path(sha)) ? readFileSync(path(sha)) : undefined),
    has: (sha) => existsSync(path(sha)),
  };
}
