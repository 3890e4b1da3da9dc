import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createRun402 } from "../client.js";
import type { UploadUrlError } from "../errors/http.js";
import { isInternalAddress, put, resolveUploadTarget, uploadContent } from "./uploadContent.js";

const api = new URL("https://api.run402.com");
const dns = (table: Record<string, string[]>) => async (host: string) => {
  const addresses = table[host];
  if (!addresses) throw new Error(`ENOTFOUND ${host}`);
  return addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
};
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: UploadUrlError) => e,
  );

describe("the upload policy", () => {
  test("behavior: a presigned URL on a public https origin is allowed by default, pinned to the address checked", async () => {
    const target = await resolveUploadTarget(
      api,
      "https://bucket.s3.us-east-1.amazonaws.com/k?X-Amz-Signature=1",
      [],
      dns({ "bucket.s3.us-east-1.amazonaws.com": ["52.216.1.2", "52.216.1.3"] }),
    );
    expect(target).toMatchObject({ address: "52.216.1.2", family: 4 });
  });

  test.each([
    ["http://127.0.0.1:9999/steal", "127.0.0.1"],
    ["https://127.0.0.1:9999/steal", "127.0.0.1"],
    ["https://169.254.169.254/latest/meta-data/", "169.254.169.254"],
    ["https://10.0.0.5/x", "10.0.0.5"],
    ["https://172.20.1.1/x", "172.20.1.1"],
    ["https://192.168.1.10/x", "192.168.1.10"],
    ["https://[::1]:8443/x", "::1"],
    ["https://[fe80::1]/x", "fe80::1"],
    ["https://[::ffff:127.0.0.1]/x", "::ffff:7f00:1"],
    ["https://[fd00:ec2::254]/x", "fd00:ec2::254"],
  ])("error: %s is refused unless listed", async (url) => {
    const err = await refusal(resolveUploadTarget(api, url, [], dns({})));
    expect(err?.code).toBe("HTTP_UPLOAD_URL_REFUSED");
  });

  test.each([
    ["loopback", ["127.0.0.1"]],
    ["metadata", ["169.254.169.254"]],
    ["private", ["10.1.2.3"]],
    ["one private among public", ["52.216.1.2", "192.168.0.7"]],
    ["IPv6 unique-local", ["fd12:3456::1"]],
  ])("error: a name resolving to %s is refused", async (_what, addresses) => {
    const err = await refusal(
      resolveUploadTarget(
        api,
        "https://uploads.evil.example/x",
        [],
        dns({ "uploads.evil.example": addresses }),
      ),
    );
    expect(err?.code).toBe("HTTP_UPLOAD_URL_REFUSED");
    expect(err?.shortMessage).toContain("uploads.evil.example resolves to");
  });

  test("behavior: a listed origin may be on loopback (a local sandbox's upload origin), plain http only there", async () => {
    const listed = ["http://127.0.0.1:9000", "http://uploads.lan:9000"];
    const lan = dns({ "uploads.lan": ["192.168.1.9"] });
    expect((await resolveUploadTarget(api, "http://127.0.0.1:9000/b/k?x=1", listed, lan)).address).toBe(
      "127.0.0.1",
    );
    expect((await refusal(resolveUploadTarget(api, "http://uploads.lan:9000/b/k", listed, lan)))?.code).toBe(
      "HTTP_UPLOAD_URL_REFUSED",
    );
    // Another port of the listed host is another origin.
    expect((await refusal(resolveUploadTarget(api, "http://127.0.0.1:9001/b/k", listed, lan)))?.code).toBe(
      "HTTP_UPLOAD_URL_REFUSED",
    );
  });

  test("error: plain http to a public host, credentials in the URL, other schemes", async () => {
    const pub = dns({ "bucket.example.com": ["93.184.216.34"] });
    for (const url of [
      "http://bucket.example.com/x",
      "https://u:p@bucket.example.com/x",
      "ftp://bucket.example.com/x",
    ])
      expect((await refusal(resolveUploadTarget(api, url, [], pub)))?.code, url).toBe(
        "HTTP_UPLOAD_URL_REFUSED",
      );
  });

  test("behavior: the address classes", () => {
    for (const a of [
      "127.0.0.1",
      "10.0.0.1",
      "172.31.255.255",
      "192.168.0.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "fe80::1",
      "fc00::1",
      "::ffff:10.0.0.1",
    ])
      expect(isInternalAddress(a), a).toBe(true);
    for (const a of ["8.8.8.8", "52.216.1.2", "172.32.0.1", "2600:1f18::1"])
      expect(isInternalAddress(a), a).toBe(false);
  });
});

describe("a hostile content plan is refused before a byte is sent", () => {
  let listener: Server;
  let port = 0;
  let hits = 0;
  beforeAll(async () => {
    listener = createServer((req, res) => {
      hits++;
      req.resume();
      res.writeHead(200, { etag: '"x"' }).end();
    });
    await new Promise<void>((r) => listener.listen(0, "127.0.0.1", () => r()));
    port = (listener.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => listener.close(() => r())));

  const account = privateKeyToAccount(`0x${"33".repeat(32)}`);
  function deployTo(uploadUrls: string[], uploadOrigins: string[] = []) {
    const bytes = new TextEncoder().encode("<h1>hi</h1>");
    const sha = "a".repeat(64);
    const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
      const req = new Request(input, init);
      const path = new URL(req.url).pathname;
      const json = (status: number, body: unknown) =>
        new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
      if (path === "/apply/v1/plans")
        return json(201, {
          plan_id: "pln_1",
          operation_id: "op_1",
          base_release_id: null,
          manifest_digest: "f".repeat(64),
          missing_content: [{ sha256: sha, size: bytes.length, present: false }],
        });
      if (path === "/content/v1/plans")
        return json(200, {
          plan_id: "cpl_1",
          missing: [
            {
              sha256: sha,
              mode: uploadUrls.length > 1 ? "multipart" : "single",
              parts: uploadUrls.map((url, i) => ({
                part_number: i + 1,
                url,
                byte_start: 0,
                byte_end: bytes.length - 1,
              })),
            },
          ],
        });
      return json(404, { code: "NOT_FOUND", message: path });
    }) as typeof globalThis.fetch;
    const r402 = createRun402({
      apiBase: "https://api.run402.test",
      wallet: { account },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: false,
      fetch,
      uploadOrigins,
    });
    return r402.deploy
      .apply({
        projectId: "prj_1",
        anonKey: "anon-key-secret",
        spec: {
          site: { replace: { "index.html": { sha256: sha, size: bytes.length, contentType: "text/html" } } },
        },
        content: new Map([[sha, { bytes, contentType: "text/html" }]]),
      })
      .then(
        () => null,
        (e: { code?: string }) => e,
      );
  }

  test.each([
    ["an unlisted 127.0.0.1 port", () => `http://127.0.0.1:${port}/upload`],
    ["the same port over https", () => `https://127.0.0.1:${port}/upload`],
    ["a name resolving to loopback", () => `https://localhost:${port}/upload`],
    ["the metadata service", () => "https://169.254.169.254/latest/meta-data/"],
    ["a private range", () => "https://10.255.255.1/upload"],
  ])("error: %s", async (_what, url) => {
    const before = hits;
    const err = await deployTo([url()]);
    expect(err?.code).toBe("HTTP_UPLOAD_URL_REFUSED");
    expect(hits).toBe(before);
  });

  test("error: a hostile later part stops the upload before the first part is sent", async () => {
    const before = hits;
    const err = await deployTo(
      [`http://127.0.0.1:${port}/ok`, "https://169.254.169.254/x"],
      [`http://127.0.0.1:${port}`],
    );
    expect(err?.code).toBe("HTTP_UPLOAD_URL_REFUSED");
    expect(hits).toBe(before);
  });

  test("behavior: the connection goes to the address checked, whatever the name resolves to later", async () => {
    const target = await resolveUploadTarget(
      api,
      `http://uploads.sandbox.test:${port}/b/k`,
      [`http://uploads.sandbox.test:${port}`],
      dns({ "uploads.sandbox.test": ["127.0.0.1"] }),
    );
    // uploads.sandbox.test does not resolve on this machine: only the pinned address can answer.
    const before = hits;
    const res = await put(target, new Uint8Array([1, 2, 3]), {}, 5_000);
    expect(res.status).toBe(200);
    expect(hits).toBe(before + 1);
  });
});

describe("how bytes are sent to an upload host", () => {
  let host: Server;
  let origin = "";
  const seen: { headers: Record<string, string | string[] | undefined>; url: string; body: Buffer }[] = [];
  let answers: number[] = [];
  beforeAll(async () => {
    host = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ headers: req.headers, url: req.url ?? "", body: Buffer.concat(chunks) });
        const status = answers.shift() ?? 200;
        if (status === 0) return req.socket.destroy();
        res.writeHead(status, status === 200 ? { etag: '"e1"' } : {}).end(status === 200 ? "" : "<Error/>");
      });
    });
    await new Promise<void>((r) => host.listen(0, "127.0.0.1", () => r()));
    origin = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => host.close(() => r())));

  const account = privateKeyToAccount(`0x${"44".repeat(32)}`);
  const events: { type: string }[] = [];
  const ctx = () =>
    ({
      transport: {
        apiBase: new URL("https://api.run402.test"),
        fetch: globalThis.fetch,
        timeoutMs: 5_000,
        account,
        emit: (e: { type: string }) => events.push(e),
        uploadOrigins: [origin],
      },
      payer: undefined,
    }) as unknown as Parameters<typeof uploadContent>[0];
  const bytes = new Uint8Array(Buffer.from("part bytes"));
  const b64 = Buffer.from(createHash("sha256").update(bytes).digest()).toString("base64");

  test("behavior: no credential and no Content-Type; the checksum header only when the URL lacks it", async () => {
    seen.length = 0;
    answers = [200, 200];
    expect(await uploadContent(ctx(), { url: `${origin}/b/part?partNumber=1&uploadId=u`, bytes })).toEqual({
      etag: '"e1"',
    });
    await uploadContent(ctx(), {
      url: `${origin}/b/k?x-amz-checksum-sha256=${encodeURIComponent(b64)}`,
      bytes,
    });
    const [part, single] = seen;
    for (const s of [part!, single!]) {
      for (const h of ["authorization", "apikey", "sign-in-with-x", "content-type", "cookie"])
        expect(s.headers[h]).toBeUndefined();
      expect(s.body.equals(Buffer.from(bytes))).toBe(true);
    }
    expect(part!.headers["x-amz-checksum-sha256"]).toBe(b64);
    expect(single!.headers["x-amz-checksum-sha256"]).toBeUndefined();
  });

  test("behavior: S3 403, 5xx and a dropped connection are tried again, 1 s then 2 s apart", async () => {
    seen.length = 0;
    answers = [503, 0, 200];
    const started = Date.now();
    expect(await uploadContent(ctx(), { url: `${origin}/b/retry`, bytes })).toEqual({ etag: '"e1"' });
    expect(seen.length).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
  });

  test("error: a 403 every time ends after 3 attempts as HTTP_UPLOAD_FAILED; a 400 is not retried", async () => {
    seen.length = 0;
    answers = [403, 403, 403];
    const err = await uploadContent(ctx(), { url: `${origin}/b/denied?X-Amz-Signature=s3cr3t`, bytes }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "HTTP_UPLOAD_FAILED", status: 403 });
    expect(seen.length).toBe(3);
    // The presigned query (a credential for that object) is not in the error.
    expect(String((err as Error).message)).not.toContain("s3cr3t");
    seen.length = 0;
    answers = [400];
    expect(
      await uploadContent(ctx(), { url: `${origin}/b/bad`, bytes }).catch((e: unknown) => e),
    ).toMatchObject({
      code: "HTTP_UPLOAD_FAILED",
      status: 400,
    });
    expect(seen.length).toBe(1);
  });
});
