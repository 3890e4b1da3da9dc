import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hashBounded, PIECE } from "./hash.js";

const dir = mkdtempSync(join(tmpdir(), "run402-hash-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Writes a file of `size` random bytes and returns its path and bytes. */
function file(name: string, size: number): { path: string; bytes: Buffer } {
  const bytes = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}

describe("hashBounded", () => {
  // Sizes around the reused buffer: empty, one read, exactly one buffer (a second read finds the end),
  // one byte more, several buffers and a part.
  for (const size of [0, 1, 4096, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 12345]) {
    it(`hashes a file of ${size} bytes as its bytes hash, and reads them back`, async () => {
      const { path, bytes } = file(`f${size}`, size);
      const result = hashBounded(path, 2 ** 30);
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.file.size).toBe(size);
      expect(result.file.sha256).toBe(sha256(bytes));
      expect(Buffer.from(await result.file.read()).equals(bytes)).toBe(true);
    });
  }

  it("keeps hashes apart when one file follows another through the shared buffer", () => {
    const big = file("big", PIECE + 7);
    const small = file("small", 10);
    const a = hashBounded(big.path, 2 ** 30);
    const b = hashBounded(small.path, 2 ** 30);
    expect(a.ok && a.file.sha256).toBe(sha256(big.bytes));
    expect(b.ok && b.file.sha256).toBe(sha256(small.bytes));
  });

  it("refuses a file over the limit, in one read or across several", () => {
    const small = file("over-small", 100);
    expect(hashBounded(small.path, 99)).toMatchObject({ ok: false, kind: "too-large" });
    expect(hashBounded(small.path, 100).ok).toBe(true);
    const large = file("over-large", 2 * PIECE + 1);
    expect(hashBounded(large.path, 2 * PIECE)).toMatchObject({ ok: false, kind: "too-large" });
  });

  it("refuses what is not a regular file, and says what is missing", () => {
    const sub = join(dir, "sub");
    mkdirSync(sub);
    expect(hashBounded(sub, 2 ** 30)).toMatchObject({
      ok: false,
      kind: "refused",
      reason: "is a directory, not a regular file",
    });
    expect(hashBounded(join(dir, "absent"), 2 ** 30)).toMatchObject({ ok: false, kind: "missing" });
  });

  it("refuses to read back a file that changed after it was hashed", async () => {
    const { path } = file("changing", 64);
    const result = hashBounded(path, 2 ** 30);
    if (!result.ok) throw new Error("not hashed");
    writeFileSync(path, randomBytes(64));
    await expect(result.file.read()).rejects.toMatchObject({ code: "CONTENT_CHANGED" });
  });
});
