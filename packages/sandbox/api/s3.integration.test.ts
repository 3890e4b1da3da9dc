/**
 * The sandbox's upload origin checks a presigned PUT as S3 does: URLs signed by the AWS SDK's
 * presigner (as Run402's gateway signs them) are accepted with the right bytes; an unsigned x-amz-*
 * header, a wrong checksum, an expired or tampered signature, and a body longer or shorter than the
 * signed length are refused; multipart parts answer ETags and assemble in order.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startUploadOrigin, type UploadOrigin } from "./s3.js";

let s3: UploadOrigin;
beforeAll(async () => {
  s3 = await startUploadOrigin();
});
afterAll(async () => {
  await s3?.close();
});

const bytes = Buffer.from("<h1>content</h1>");
const hex = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const b64 = (b: Buffer) => createHash("sha256").update(b).digest("base64");
const put = (url: string, body: Buffer, headers: Record<string, string> = {}) =>
  fetch(url, { method: "PUT", body, headers });

describe("presigned PUTs checked as S3 checks them", () => {
  test("behavior: the presigner's URL signs host and content-length, the checksum in the query; the right bytes are taken", async () => {
    const url = await s3.presignPut("k/ok", bytes.length, hex(bytes), 3600);
    const q = new URL(url).searchParams;
    expect(q.get("X-Amz-SignedHeaders")).toBe("content-length;host");
    expect(q.get("x-amz-checksum-sha256")).toBe(b64(bytes));
    const res = await put(url, bytes);
    expect(res.status).toBe(200);
    expect(res.headers.get("etag")).toMatch(/^"[0-9a-f]{32}"$/);
    expect(s3.object("k/ok")?.equals(bytes)).toBe(true);
  });

  test("error: an unsigned x-amz-* header is refused (403), the checksum header too when the query has it", async () => {
    const url = await s3.presignPut("k/hdr", bytes.length, hex(bytes), 3600);
    const cases: Record<string, string>[] = [
      { "x-amz-meta-owner": "me" },
      { "x-amz-checksum-sha256": b64(bytes) },
    ];
    for (const headers of cases) {
      const res = await put(url, bytes, headers);
      expect(res.status).toBe(403);
      expect(await res.text()).toContain("not signed");
    }
    expect(s3.object("k/hdr")).toBeUndefined();
  });

  test("error: bytes that do not match the signed checksum are refused (400 BadDigest)", async () => {
    const url = await s3.presignPut("k/digest", bytes.length, hex(bytes), 3600);
    const other = Buffer.from(bytes);
    other[0] = 0x20;
    const res = await put(url, other);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("BadDigest");
    expect(s3.object("k/digest")).toBeUndefined();
  });

  test("error: an expired signature is refused (403 Request has expired)", async () => {
    const url = await s3.presignPut("k/old", bytes.length, hex(bytes), 60, new Date(Date.now() - 3_600_000));
    const res = await put(url, bytes);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("Request has expired");
  });

  test("error: a tampered query, key or length fails the signature (403)", async () => {
    const url = new URL(await s3.presignPut("k/sig", bytes.length, hex(bytes), 3600));
    const otherKey = url.href.replace("/k/sig?", "/k/sig2?");
    const longer = url.href.replace("X-Amz-Expires=3600", "X-Amz-Expires=7200");
    for (const target of [otherKey, longer]) {
      const res = await put(target, bytes);
      expect(res.status, target).toBe(403);
      expect(await res.text()).toContain("SignatureDoesNotMatch");
    }
    // A body of another length than the signed content-length.
    const shorter = await put(url.href, bytes.subarray(1));
    expect(shorter.status).toBe(403);
    const unsigned = new URL(url);
    unsigned.searchParams.delete("X-Amz-Signature");
    expect((await put(unsigned.href, bytes)).status).toBe(403);
  });

  test("behavior: multipart parts answer ETags, take their own checksum header, and assemble in order", async () => {
    const whole = Buffer.alloc(11, 7);
    whole.write("abc", 4);
    const id = s3.createMultipart("k/multi");
    const parts = [whole.subarray(0, 6), whole.subarray(6)];
    const etags: string[] = [];
    for (const [i, part] of parts.entries()) {
      const url = await s3.presignPart("k/multi", id, i + 1, part.length, 3600);
      expect(new URL(url).searchParams.has("x-amz-checksum-sha256")).toBe(false);
      const wrong = await put(url, part, { "x-amz-checksum-sha256": b64(Buffer.from("nope")) });
      expect(wrong.status).toBe(400);
      const res = await put(url, part, { "x-amz-checksum-sha256": b64(part) });
      expect(res.status).toBe(200);
      etags.push(res.headers.get("etag") ?? "");
    }
    expect(etags.every((e) => /^"[0-9a-f]{32}"$/.test(e))).toBe(true);
    expect(s3.complete(id, 2)?.equals(whole)).toBe(true);
    expect(s3.complete(id, 3)).toBeUndefined();
    const unknown = await s3.presignPart("k/multi", "no-such-upload", 1, 1, 3600);
    expect((await put(unknown, Buffer.from("x"))).status).toBe(404);
  });
});
