/**
 * Content hashing for the files a manifest's folders hold, without holding them in memory. Each file
 * is read in pieces through one reused buffer and hashed as it goes; what the release needs from it
 * is its sha256 and size, and its bytes only when the server asks for them (an upload), read again
 * then and checked against the hash. A site of any size costs one buffer, not its own size.
 *
 * The reads are synchronous: for many small files already in the page cache they cost a fraction of
 * the asynchronous ones (`npm run bench`, section 6, measures this against `openssl dgst -sha256`,
 * both as whole processes). Per file that is open, fstat, one read (a file smaller than the buffer
 * ends with a short read) and close, and a file that fits in one read is hashed in one call
 * (`crypto.hash`), with no hash object. This module imports nothing heavier than node:crypto and
 * node:fs (and read.ts's helpers), so a process that only hashes starts fast.
 * The same guards as provider/manifest/read.ts apply: regular files only (opened non-blocking, so a
 * FIFO or device never blocks), and a size limit checked before reading and enforced while reading.
 */
import { createHash, hash as hashOnce } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { BaseError } from "../../core/errors.js";
import { describeFsError, describeKind, formatBytes, type ReadResult, readBounded } from "./read.js";

/** A file known by its hash: bytes are read on demand ({@link HashedFile.read}). */
export interface HashedFile {
  sha256: string;
  size: number;
  /** The bytes, read now; throws `CONTENT_CHANGED` when they no longer hash to {@link sha256}. */
  read(): Promise<Uint8Array>;
}

/** A file changed (or went) between hashing it and reading it for upload. */
export class ContentChangedError extends BaseError {
  override name = "ContentChangedError" as const;
  readonly path: string;
  constructor(options: { path: string; reason?: string }) {
    super(
      `${options.path} ${options.reason ?? "changed"} after it was hashed; nothing was uploaded from it.`,
      {
        code: "CONTENT_CHANGED",
        metaMessages: ["Run the command again once the files stop changing."],
      },
    );
    this.path = options.path;
  }
}

/** Bytes read per call; also the size of the reused buffer. */
export const PIECE = 1 << 20;

let shared: Buffer | undefined;

function hashed(path: string, sha256: string, size: number): HashedFile {
  return {
    sha256,
    size,
    // Callers keep `read` apart from its object (schema/release.ts): it closes over what it needs.
    async read() {
      const result = await readBounded(path, size);
      if (!result.ok) throw new ContentChangedError({ path, reason: result.reason });
      const { bytes } = result;
      if (bytes.byteLength !== size || hashOnce("sha256", bytes, "hex") !== sha256)
        throw new ContentChangedError({ path });
      return bytes;
    },
  };
}

/** The outcome of {@link hashBounded}: the hashed file, or why not (as {@link readBounded} says it). */
export type HashResult = { ok: true; file: HashedFile } | Extract<ReadResult, { ok: false }>;

/**
 * Hashes a regular file of at most `limit` bytes. A read shorter than asked is the end of a regular
 * file, so a small file takes one read; a file that grows past the limit meanwhile stops the reading
 * one piece past it.
 */
export function hashBounded(path: string, limit: number): HashResult {
  if (path.includes("\u0000")) return { ok: false, reason: "contains a NUL character", kind: "refused" };
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return { ok: false, ...describeFsError(error) };
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile())
      return { ok: false, reason: `is ${describeKind(info)}, not a regular file`, kind: "refused" };
    const tooLarge = (size: number): HashResult => ({
      ok: false,
      reason: `is ${formatBytes(size)}, more than the ${formatBytes(limit)} a file may have here`,
      kind: "too-large",
    });
    if (info.size > limit) return tooLarge(info.size);
    shared ??= Buffer.allocUnsafe(PIECE);
    const buffer = shared;
    let read = readSync(fd, buffer, 0, PIECE, 0);
    // Most files end within the first piece: one call hashes them.
    if (read < PIECE) {
      if (read > limit) return tooLarge(read);
      return { ok: true, file: hashed(path, hashOnce("sha256", buffer.subarray(0, read), "hex"), read) };
    }
    const hash = createHash("sha256");
    let size = 0;
    for (;;) {
      hash.update(buffer.subarray(0, read));
      size += read;
      if (size > limit) return tooLarge(size);
      if (read < PIECE) break;
      read = readSync(fd, buffer, 0, PIECE, size);
    }
    return { ok: true, file: hashed(path, hash.digest("hex"), size) };
  } catch (error) {
    return { ok: false, ...describeFsError(error) };
  } finally {
    closeSync(fd);
  }
}
