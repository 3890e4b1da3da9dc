import { createHash } from "node:crypto";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { BlockList, isIP } from "node:net";
import { BaseError } from "../../core/errors.js";
import { UploadUrlError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";

/** Parameters of `uploadContent`. */
export type UploadContentParameters = {
  /** Upload URL from a content plan (presigned). */
  url: string;
  bytes: Uint8Array;
  /**
   * The checksum S3 checks the bytes against (`x-amz-checksum-sha256`, base64), sent as a header only
   * when the URL does not carry it already: a presigned URL signs it as a query parameter, and the
   * same value again as an unsigned header is refused. @default the sha256 of `bytes`
   */
  checksumBase64?: string | undefined;
};
/** What `uploadContent` resolves to: the upload host's ETag (a multipart part needs it). */
export type UploadContentReturnType = { etag: string | null };
/** Errors `uploadContent` can throw. */
export type UploadContentErrorType = UploadUrlError | UploadFailedError;

/** An upload host refused the bytes, or could not be reached, after every attempt. */
export class UploadFailedError extends BaseError {
  override name = "UploadFailedError" as const;
  readonly url: string;
  constructor(options: { url: string; status: number | null; detail: string; attempts: number }) {
    super(
      `Uploading to ${options.url} failed${options.status === null ? "" : ` (HTTP ${options.status})`} after ${options.attempts} attempt(s).`,
      {
        code: "HTTP_UPLOAD_FAILED",
        ...(options.status === null ? {} : { status: options.status }),
        details: options.detail,
      },
    );
    this.url = options.url;
  }
}

/** Attempts of one upload (S3 403, 5xx and network failures are retried, 1 s then 2 s apart), as Run402's client. */
export const UPLOAD_ATTEMPTS = 3;

/**
 * Addresses no content plan may send bytes to unless the operator listed the origin: loopback,
 * private, shared, link-local (the cloud metadata service at 169.254.169.254 among them), unspecified,
 * multicast and reserved ranges, in IPv4 and IPv6 (IPv4-mapped included).
 */
const internal = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const)
  internal.addSubnet(net, bits, "ipv4");
for (const [net, bits] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
  ["64:ff9b::", 96],
] as const)
  internal.addSubnet(net, bits, "ipv6");

/** True when `address` is loopback, private, link-local, metadata or otherwise not public. */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return internal.check(address, "ipv4");
  if (family !== 6) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return internal.check(mapped[1]!, "ipv4");
  return internal.check(address, "ipv6");
}

/** Where an upload goes: the URL, and the one address every connection for it uses. */
export type UploadTarget = { url: URL; address: string; family: 4 | 6 };

type Lookup = (hostname: string) => Promise<LookupAddress[]>;
const systemLookup: Lookup = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) =>
      err ? reject(err) : resolve(addresses),
    ),
  );

/**
 * Checks a content plan's upload URL, resolves its host once and returns the address to connect to.
 * Presigned URLs on any public https origin are allowed. The API's own origin, and the origins the
 * operator lists in `uploadOrigins`, may be on loopback or a private network (a local sandbox's
 * upload origin; plain http only on loopback). Anything else that is, or resolves to, a loopback,
 * private, link-local or metadata address is refused, before a byte is sent: the plan comes from the
 * server, and a hostile one could otherwise aim the client at anything it can reach. The address
 * checked is the one connected to (no second lookup, so no DNS rebinding).
 */
export async function resolveUploadTarget(
  apiBase: URL,
  url: string,
  uploadOrigins: readonly string[] = [],
  lookup: Lookup = systemLookup,
): Promise<UploadTarget> {
  const listed = [apiBase.origin, ...uploadOrigins.map((o) => new URL(o).origin)];
  const allowedText = [...listed.slice(1), "any public https origin"];
  let target: URL;
  try {
    target = new URL(url, apiBase);
  } catch {
    throw new UploadUrlError({ url, reason: "it is not a URL", allowed: allowedText });
  }
  const refuse = (reason: string) =>
    new UploadUrlError({ url: redact(target), reason, allowed: allowedText });
  if (target.protocol !== "https:" && target.protocol !== "http:") throw refuse("it is not http(s)");
  if (target.username || target.password) throw refuse("it carries credentials");
  const isListed = listed.includes(target.origin);
  const host = target.hostname.replace(/^\[|\]$/g, "");
  let addresses: LookupAddress[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) as 4 | 6 }];
  else {
    try {
      addresses = await lookup(host);
    } catch (err) {
      throw refuse(`its host ${host} does not resolve (${err instanceof Error ? err.message : String(err)})`);
    }
  }
  if (addresses.length === 0) throw refuse(`its host ${host} does not resolve`);
  const chosen = addresses[0]!;
  if (target.protocol === "http:" && !(isListed && addresses.every((a) => isLoopback(a.address))))
    throw refuse("it is not https (plain http only to a listed origin on loopback)");
  if (!isListed) {
    const bad = addresses.find((a) => isInternalAddress(a.address));
    if (bad)
      throw refuse(
        `${host === bad.address ? "it is" : `its host ${host} resolves to`} ${bad.address}, a loopback, private, link-local or metadata address, and its origin ${target.origin} is not in uploadOrigins`,
      );
  }
  return { url: target, address: chosen.address, family: chosen.family === 6 ? 6 : 4 };
}

const isLoopback = (address: string) =>
  isIP(address) === 4 ? address.startsWith("127.") : address === "::1" || /^::ffff:127\./i.test(address);

/** The URL without its query (a presigned URL's signature is a credential for that object). */
function redact(url: URL): string {
  return `${url.origin}${url.pathname}${url.search ? "?…" : ""}`;
}

/** One PUT to the pinned address (exported for its test). */
export function put(
  target: UploadTarget,
  bytes: Uint8Array,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; etag: string | null; body: string }> {
  const send = target.url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      target.url,
      {
        method: "PUT",
        headers: { ...headers, "content-length": String(bytes.byteLength) },
        // The address resolved and checked above, for every connection of this request.
        lookup: (_host, options, callback) => {
          if ((options as { all?: boolean }).all)
            (callback as (e: null, a: LookupAddress[]) => void)(null, [
              { address: target.address, family: target.family },
            ]);
          else (callback as (e: null, a: string, f: number) => void)(null, target.address, target.family);
        },
        timeout: timeoutMs,
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          // An error body is read only so far: S3's are small.
          if (size < 64 * 1024) chunks.push(c);
          size += c.length;
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            etag: (res.headers["etag"] as string | undefined) ?? null,
            body: Buffer.concat(chunks).toString("utf8").slice(0, 500),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(bytes);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * PUTs bytes to an upload URL from a content plan, as Run402's client does (kychee-com/run402
 * sdk/src/namespaces/deploy.ts `putToS3`, `uploadOneWithRetry`): no credential and no Content-Type,
 * the checksum as a header only when the presigned URL lacks it, S3 403, 5xx and network failures
 * tried 3 times (1 s, then 2 s apart). Resolves to the ETag the host answered.
 */
export async function uploadContent(
  ctx: ActionContext,
  parameters: UploadContentParameters,
): Promise<UploadContentReturnType> {
  const t = ctx.transport;
  const target = await resolveUploadTarget(t.apiBase, parameters.url, t.uploadOrigins);
  const headers: Record<string, string> = {};
  if (!target.url.searchParams.has("x-amz-checksum-sha256"))
    headers["x-amz-checksum-sha256"] =
      parameters.checksumBase64 ?? createHash("sha256").update(parameters.bytes).digest("base64");
  const where = redact(target.url);
  for (let attempt = 1; ; attempt++) {
    let status: number | null = null;
    let detail: string;
    try {
      const res = await put(target, parameters.bytes, headers, t.timeoutMs);
      t.emit({ type: "request", method: "PUT", url: where, status: res.status });
      if (res.status >= 200 && res.status < 300) return { etag: res.etag };
      status = res.status;
      detail = res.body;
    } catch (err) {
      detail = err instanceof Error ? err.message : String(err);
    }
    const retryable = status === null || status === 403 || status >= 500;
    if (!retryable || attempt >= UPLOAD_ATTEMPTS)
      throw new UploadFailedError({ url: where, status, detail, attempts: attempt });
    const waitMs = 1000 * 2 ** (attempt - 1);
    t.emit({ type: "retry", method: "PUT", url: where, status: status ?? 0, attempt, waitMs });
    await sleep(waitMs);
  }
}
