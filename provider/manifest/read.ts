/**
 * Bounded, safe reads of the files a manifest is made of: regular files only (a FIFO, socket, device
 * or directory is refused without blocking on it), a size limit checked before reading and enforced
 * while reading, and every failure as a sentence instead of a raw Node error.
 */

import type { Stats } from "node:fs";
import { constants, type FileHandle, open } from "node:fs/promises";

/**
 * Limits on what a manifest may make this process read. They bound time and memory whatever the
 * input; none is a Run402 limit (Run402 caps storage per tier: 250 MB prototype, 1 GB hobby, 10 GB team).
 */
export const READ_LIMITS = {
  /** The manifest file itself (JSON or YAML). */
  manifestBytes: 4 * 1024 * 1024,
  /** One file a manifest names (site file, function source, SQL, asset). */
  fileBytes: 256 * 1024 * 1024,
  /** Every file one manifest names, together. */
  totalBytes: 1024 * 1024 * 1024,
  /** Files found by walking the folders a manifest names. */
  dirFiles: 100_000,
  /** Nesting of objects and lists in a manifest. */
  depth: 64,
} as const;

/** The outcome of {@link readBounded}. */
export type ReadResult =
  | { ok: true; bytes: Uint8Array }
  | {
      ok: false;
      /** Why, as a sentence fragment: "does not exist", "is a FIFO (named pipe), not a regular file". */
      reason: string;
      /** `missing` when nothing is there (ENOENT, ENOTDIR); `too-large` over the limit; `refused` otherwise. */
      kind: "missing" | "refused" | "too-large";
    };

/** "1.5 MiB" */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** What a non-regular file is, in words. */
export function describeKind(info: Stats): string {
  if (info.isDirectory()) return "a directory";
  if (info.isFIFO()) return "a FIFO (named pipe)";
  if (info.isSocket()) return "a socket";
  if (info.isCharacterDevice()) return "a character device";
  if (info.isBlockDevice()) return "a block device";
  if (info.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

/** A Node file-system error as a sentence fragment (never the raw `ELOOP: …` text). */
export function describeFsError(error: unknown): { reason: string; kind: "missing" | "refused" } {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case "ENOENT":
      return { reason: "does not exist", kind: "missing" };
    case "ENOTDIR":
      return { reason: "does not exist (a part of its path is not a directory)", kind: "missing" };
    case "ELOOP":
      return { reason: "is a symlink loop (or a chain of too many symlinks)", kind: "refused" };
    case "EACCES":
    case "EPERM":
      return { reason: "cannot be read: permission denied", kind: "refused" };
    case "EISDIR":
      return { reason: "is a directory, not a file", kind: "refused" };
    case "ENXIO":
      return { reason: "is a socket or device without a reader, not a regular file", kind: "refused" };
    case "ENAMETOOLONG":
      return { reason: "has a name that is too long", kind: "refused" };
    case "EMFILE":
    case "ENFILE":
      return { reason: "cannot be opened now: too many open files", kind: "refused" };
    default:
      return {
        reason: `cannot be read (${code ?? (error instanceof Error ? error.message : String(error))})`,
        kind: "refused",
      };
  }
}

/**
 * Reads a regular file of at most `limit` bytes. The file is opened non-blocking, so a FIFO or a
 * device never blocks the process, and checked (fstat) before a byte is read; the read itself stops
 * one byte past the limit, so a file that grows meanwhile cannot make it read more.
 */
export async function readBounded(path: string, limit: number): Promise<ReadResult> {
  if (path.includes("\u0000")) return { ok: false, reason: "contains a NUL character", kind: "refused" };
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    return { ok: false, ...describeFsError(error) };
  }
  try {
    const info = await handle.stat();
    if (!info.isFile())
      return { ok: false, reason: `is ${describeKind(info)}, not a regular file`, kind: "refused" };
    const tooLarge = (size: number): ReadResult => ({
      ok: false,
      reason: `is ${formatBytes(size)}, more than the ${formatBytes(limit)} a file may have here`,
      kind: "too-large",
    });
    if (info.size > limit) return tooLarge(info.size);
    // Regular files may report size 0 (procfs) or grow: read until EOF, one byte past the limit at most.
    let buffer = Buffer.allocUnsafe(Math.min(limit + 1, Math.max(info.size + 1, 64 * 1024)));
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (buffer.length > limit) return tooLarge(length);
        const bigger = Buffer.allocUnsafe(Math.min(limit + 1, buffer.length * 2));
        buffer.copy(bigger, 0, 0, length);
        buffer = bigger;
      }
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > limit) return tooLarge(length);
    return { ok: true, bytes: new Uint8Array(buffer.buffer, buffer.byteOffset, length) };
  } catch (error) {
    return { ok: false, ...describeFsError(error) };
  } finally {
    await handle.close().catch(() => {});
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

/**
 * Decodes strict UTF-8 (a leading BOM is dropped); undefined when the bytes are not UTF-8 (invalid
 * sequences, overlongs, encoded surrogates), with the byte offset of the first bad byte.
 */
export function decodeUtf8(bytes: Uint8Array): { text: string } | { badByte: number } {
  try {
    return { text: utf8.decode(bytes) };
  } catch {
    return { badByte: firstInvalidUtf8Byte(bytes) };
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8Byte(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    let need = 0;
    let min = 0;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    if (b >= 0xc2 && b <= 0xdf) [need, min] = [1, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [need, min] = [2, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    let code = b & (0xff >> (need + 2));
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      code = (code << 6) | (c & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += need + 1;
  }
  return bytes.length;
}
