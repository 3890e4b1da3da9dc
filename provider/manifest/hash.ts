/**
 * Content hashing for the files a manifest names, without holding them in memory. Each file is read in
 * pieces through one reused buffer and hashed as it goes; what the release needs from it is its
 * sha256 and size, and its bytes only when the server asks for them (an upload), read again then and
 * checked against the hash. A site of any size costs a few buffers, not its own size.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { BaseError } from "../../sdk/errors/base.js";

/** A file known by its hash: bytes are read on demand ({@link HashedFile.read}). */
export interface HashedFile {
  sha256: string;
  size: number;
  /** The bytes, read now; throws `CONTENT_CHANGED` when they no longer hash to {@link sha256}. */
  read(): Promise<Uint8Array>;
}

/** A file changed between hashing and reading it for upload. */
export class ContentChangedError extends BaseError {
  override name = "ContentChangedError" as const;
  readonly path: string;
  constructor(options: { path: string }) {
    super(`${options.path} changed after it was hashed; nothing was uploaded from it.`, {
      code: "CONTENT_CHANGED",
      metaMessages: ["Run the command again once the files stop changing."],
    });
    this.path = options.path;
  }
}

/** Bytes read per call; also the size of the reusable buffer. */
const PIECE = 1 << 20;
/** Longest stretch of hashing before other work in this process (gRPC calls) gets a turn. */
const SLICE_MS = 25;

let shared: Buffer | undefined;

function hashed(path: string, sha256: string, size: number): HashedFile {
  return {
    sha256,
    size,
    async read() {
      const bytes = await readFile(path);
      if (bytes.byteLength !== size || createHash("sha256").update(bytes).digest("hex") !== sha256) {
        throw new ContentChangedError({ path });
      }
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
  };
}

/**
 * Hashes one file: read to its end through one reused buffer, fed to the hash piece by piece. A read
 * shorter than asked is the end of a regular file, so a small file takes one read. Synchronous
 * reads: for many small files already in the page cache they cost a fraction of the asynchronous
 * ones (measured by `npm run bench`, section 5), and no more memory than the buffer.
 */
export function hashFileSync(path: string): HashedFile {
  shared ??= Buffer.allocUnsafe(PIECE);
  const buffer = shared;
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  let size = 0;
  try {
    for (;;) {
      const read = readSync(fd, buffer, 0, buffer.length, size);
      hash.update(buffer.subarray(0, read));
      size += read;
      if (read < buffer.length) break;
    }
  } finally {
    closeSync(fd);
  }
  return hashed(path, hash.digest("hex"), size);
}

/** Hashes one file (see {@link hashFileSync}). */
export async function hashFile(path: string): Promise<HashedFile> {
  return hashFileSync(path);
}

/**
 * Hashes many files, results in the order of `paths`; the process stays responsive (it yields every
 * {@link SLICE_MS} ms). Memory: one buffer of {@link PIECE} bytes, whatever the files' sizes.
 */
export async function hashFiles(paths: readonly string[]): Promise<HashedFile[]> {
  const out: HashedFile[] = [];
  let slice = performance.now();
  for (const path of paths) {
    out.push(hashFileSync(path));
    if (performance.now() - slice > SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      slice = performance.now();
    }
  }
  return out;
}
