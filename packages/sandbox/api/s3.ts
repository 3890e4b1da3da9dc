/**
 * The sandbox's upload origin: a separate HTTP server that takes content as S3 takes it, through
 * presigned URLs the API signs with the AWS SDK's presigner (`@aws-sdk/s3-request-presigner`), as
 * Run402's gateway signs them (kychee-com/run402 sdk/src/namespaces/deploy.ts `putToS3`: SigV4 query
 * signatures, `x-amz-checksum-sha256` as a query parameter, only `host` and `content-length` signed).
 *
 * Why a checker and not an S3 server: the S3 servers on npm (s3rver and its forks) do not check
 * presigned SigV4 query signatures, signed headers or the flexible checksums, which is exactly what a
 * client gets wrong; a Go server would add a toolchain to the sandbox. So this origin checks what S3
 * checks on a presigned PUT, each the way S3 answers it: the SigV4 query signature (recomputed here
 * from the canonical request), its expiry, headers it did not sign (`x-amz-*` headers a client adds
 * are refused, 403), the signed `content-length`, the `x-amz-checksum-sha256` value (query or
 * header) against the bytes (400 BadDigest), and multipart uploads: parts under an upload id, each
 * answered with its ETag, assembled when the API completes the upload.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** The bucket the sandbox stages content in. */
export const BUCKET = "run402-sandbox-content";
const REGION = "us-east-1";

/** Content larger than this is uploaded in parts (S3's smallest part, 5 MiB, is the part size). */
export const MULTIPART_THRESHOLD_BYTES = 8 * 1024 * 1024;
/** Size of every part but the last. */
export const PART_SIZE_BYTES = 5 * 1024 * 1024;

interface Upload {
  key: string;
  parts: Map<number, { bytes: Buffer; etag: string }>;
}

/** A running upload origin. */
export interface UploadOrigin {
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** A presigned PUT of the whole object, its sha256 (base64) signed as the checksum. */
  presignPut(
    key: string,
    size: number,
    sha256Hex: string,
    expiresInSeconds: number,
    signingDate?: Date,
  ): Promise<string>;
  /** Starts a multipart upload; returns its id. */
  createMultipart(key: string): string;
  /** A presigned PUT of one part (no checksum in the URL: the client sends each part's own). */
  presignPart(
    key: string,
    uploadId: string,
    partNumber: number,
    size: number,
    expiresInSeconds: number,
  ): Promise<string>;
  /** The object at `key`, if it was uploaded whole. */
  object(key: string): Buffer | undefined;
  /** Completes a multipart upload from its parts in order, or returns undefined when a part is missing. */
  complete(uploadId: string, partCount: number): Buffer | undefined;
  /** Drops staged bytes. */
  forget(key: string, uploadId?: string): void;
  close(): Promise<void>;
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest();
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();

/** RFC 3986 encoding, as SigV4 canonicalizes query strings. */
function encode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An S3-style XML error. */
function fail(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
  res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/** Starts the upload origin on 127.0.0.1 (any free port). */
export async function startUploadOrigin(options: { maxBytes?: number } = {}): Promise<UploadOrigin> {
  const maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
  const accessKeyId = `SANDBOX${randomBytes(6).toString("hex").toUpperCase()}`;
  const secretAccessKey = randomBytes(30).toString("base64");
  const objects = new Map<string, Buffer>();
  const uploads = new Map<string, Upload>();

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch(() => fail(res, 500, "InternalError", "The sandbox upload origin failed."));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  /** Checks the SigV4 query signature of `req` as S3 does; answers and returns false when it fails. */
  function verify(req: IncomingMessage, url: URL, res: ServerResponse): boolean {
    const q = url.searchParams;
    const algorithm = q.get("X-Amz-Algorithm");
    const credential = q.get("X-Amz-Credential");
    const date = q.get("X-Amz-Date");
    const expires = q.get("X-Amz-Expires");
    const signedHeaders = q.get("X-Amz-SignedHeaders");
    const signature = q.get("X-Amz-Signature");
    if (
      algorithm !== "AWS4-HMAC-SHA256" ||
      !credential ||
      !date ||
      !expires ||
      !signedHeaders ||
      !signature
    ) {
      fail(res, 403, "AccessDenied", "Query-string authentication requires the X-Amz-* parameters.");
      return false;
    }
    const [keyId, day, region, service, terminal] = credential.split("/");
    if (keyId !== accessKeyId) {
      fail(
        res,
        403,
        "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
      );
      return false;
    }
    const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(date);
    if (
      !m ||
      day !== date.slice(0, 8) ||
      region !== REGION ||
      service !== "s3" ||
      terminal !== "aws4_request"
    ) {
      fail(res, 403, "AuthorizationQueryParametersError", "X-Amz-Credential or X-Amz-Date is malformed.");
      return false;
    }
    const signedAt = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
    const lifetime = Number(expires);
    if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > 604_800) {
      fail(res, 403, "AuthorizationQueryParametersError", "X-Amz-Expires must be 1 to 604800 seconds.");
      return false;
    }
    if (Date.now() > signedAt + lifetime * 1000) {
      fail(res, 403, "AccessDenied", "Request has expired");
      return false;
    }
    const signed = signedHeaders.split(";");
    // S3 refuses x-amz-* headers the signature does not cover. The one exception is the checksum of a
    // URL that carries none (a multipart part): Run402's client sends it then, and only then, as S3
    // accepts it (kychee-com/run402 sdk/src/namespaces/deploy.ts `putToS3`); with the checksum in the
    // query too, the header is refused like any other.
    const partChecksum = !q.has("x-amz-checksum-sha256");
    const unsigned = Object.keys(req.headers).filter(
      (h) =>
        h.startsWith("x-amz-") && !signed.includes(h) && !(partChecksum && h === "x-amz-checksum-sha256"),
    );
    if (unsigned.length > 0) {
      fail(
        res,
        403,
        "AccessDenied",
        `There were headers present in the request which were not signed: ${unsigned.join(", ")}`,
      );
      return false;
    }
    for (const h of signed) {
      if (req.headers[h] === undefined) {
        fail(res, 403, "SignatureDoesNotMatch", `The signed header ${h} is missing.`);
        return false;
      }
    }
    const query = [...q.entries()]
      .filter(([k]) => k !== "X-Amz-Signature")
      .map(([k, v]) => [encode(k), encode(v)] as const)
      .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join("&");
    const headers = signed
      .map((h) => `${h}:${String(req.headers[h]).trim().replace(/\s+/g, " ")}\n`)
      .join("");
    const canonical = [
      req.method,
      url.pathname,
      query,
      headers,
      signedHeaders,
      q.get("X-Amz-Content-Sha256") ?? "UNSIGNED-PAYLOAD",
    ].join("\n");
    const scope = `${day}/${region}/s3/aws4_request`;
    const toSign = ["AWS4-HMAC-SHA256", date, scope, sha256(canonical).toString("hex")].join("\n");
    const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day!), region!), "s3"), "aws4_request");
    const expected = hmac(key, toSign);
    const given = Buffer.from(signature, "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      fail(
        res,
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
      );
      return false;
    }
    return true;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", origin);
    if (req.method !== "PUT")
      return fail(res, 405, "MethodNotAllowed", "Only presigned PUTs are served here.");
    if (!verify(req, url, res)) {
      req.resume();
      return;
    }
    const declared = Number(req.headers["content-length"]);
    if (!Number.isInteger(declared) || declared < 0)
      return fail(res, 411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
    if (declared > maxBytes)
      return fail(res, 400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.");
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > declared) return fail(res, 400, "IncompleteBody", "The body is longer than Content-Length.");
      chunks.push(chunk as Buffer);
    }
    const body = Buffer.concat(chunks, size);
    if (size !== declared)
      return fail(
        res,
        400,
        "IncompleteBody",
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
      );
    const q = url.searchParams;
    const checksum =
      q.get("x-amz-checksum-sha256") ?? (req.headers["x-amz-checksum-sha256"] as string | undefined);
    if (checksum !== undefined && sha256(body).toString("base64") !== checksum)
      return fail(res, 400, "BadDigest", "The SHA256 you specified did not match the calculated checksum.");
    const prefix = `/${BUCKET}/`;
    if (!url.pathname.startsWith(prefix))
      return fail(res, 404, "NoSuchBucket", "The specified bucket does not exist.");
    const key = decodeURIComponent(url.pathname.slice(prefix.length));
    const etag = `"${createHash("md5").update(body).digest("hex")}"`;
    const uploadId = q.get("uploadId");
    if (uploadId !== null) {
      const upload = uploads.get(uploadId);
      const part = Number(q.get("partNumber"));
      if (!upload || upload.key !== key)
        return fail(res, 404, "NoSuchUpload", "The specified upload does not exist.");
      if (!Number.isInteger(part) || part < 1 || part > 10_000)
        return fail(res, 400, "InvalidArgument", "Part number must be an integer between 1 and 10000.");
      upload.parts.set(part, { bytes: body, etag });
    } else {
      objects.set(key, body);
    }
    res.writeHead(200, { etag, "content-length": 0 });
    res.end();
  }

  // The presigner signs as Run402's gateway does. The AWS SDK's Node version notice is for its own
  // users; the sandbox prints nothing of it.
  process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";
  const [{ S3Client, PutObjectCommand, UploadPartCommand }, { getSignedUrl }] = await Promise.all([
    import("@aws-sdk/client-s3"),
    import("@aws-sdk/s3-request-presigner"),
  ]);
  const client = new S3Client({
    region: REGION,
    endpoint: origin,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    // Checksums only where given (the whole object's sha256), none computed over an empty body.
    requestChecksumCalculation: "WHEN_REQUIRED",
  });

  return {
    origin,
    presignPut(key, size, sha256Hex, expiresIn, signingDate) {
      const command = new PutObjectCommand({
        Bucket: BUCKET,
        Key: key,
        ContentLength: size,
        ChecksumSHA256: Buffer.from(sha256Hex, "hex").toString("base64"),
      });
      return getSignedUrl(client, command, { expiresIn, ...(signingDate ? { signingDate } : {}) });
    },
    createMultipart(key) {
      const id = randomBytes(16).toString("hex");
      uploads.set(id, { key, parts: new Map() });
      return id;
    },
    presignPart(key, uploadId, partNumber, size, expiresIn) {
      const command = new UploadPartCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        ContentLength: size,
      });
      return getSignedUrl(client, command, { expiresIn });
    },
    object: (key) => objects.get(key),
    complete(uploadId, partCount) {
      const upload = uploads.get(uploadId);
      if (!upload) return undefined;
      const parts: Buffer[] = [];
      for (let n = 1; n <= partCount; n++) {
        const part = upload.parts.get(n);
        if (!part) return undefined;
        parts.push(part.bytes);
      }
      return Buffer.concat(parts);
    },
    forget(key, uploadId) {
      objects.delete(key);
      if (uploadId) uploads.delete(uploadId);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
