import type { LocalAccount } from "viem";
import type { z } from "zod";
import {
  ApiError,
  CancelledError,
  type ErrorEnvelope,
  HttpRequestError,
  RedirectError,
  ResponseTooLargeError,
  ResponseValidationError,
  TimeoutError,
} from "../errors/http.js";
import * as Siwx from "../Siwx.js";
import type { Run402Event } from "./events.js";

/** How a request authenticates. */
export type Auth =
  | { kind: "none" }
  | { kind: "siwx" }
  | { kind: "bearer"; token: string }
  | { kind: "apikey"; key: string };

/** Everything a request needs from its client. */
export type Transport = {
  apiBase: URL;
  fetch: typeof globalThis.fetch;
  timeoutMs: number;
  account: LocalAccount;
  emit: (event: Run402Event) => void;
  /** Attempts for requests that may be retried (429 with Retry-After, 5xx with `safe_to_retry`). @default 3 */
  maxAttempts?: number | undefined;
  /** Longest Retry-After honoured, seconds. @default 30 */
  maxRetryAfterSeconds?: number | undefined;
  /** Largest response body read, bytes; a larger one is cut off with an error. @default 16 MiB */
  maxResponseBytes?: number | undefined;
  /** Origins besides the API's own that content may be uploaded to (e.g. a storage bucket's). @default none */
  uploadOrigins?: readonly string[] | undefined;
  /** The API server's clock as its latest response stated it (HTTP `Date`), and when that was here. */
  clock?: { server: number; local: number } | undefined;
  /** The run's stop: every request and wait ends with a {@link CancelledError} once it fires. */
  signal?: AbortSignal | undefined;
};

/** The default of {@link Transport.maxResponseBytes}. */
export const defaultMaxResponseBytes = 16 * 1024 * 1024;

/** One API call, before auth headers. */
export type RequestSpec = {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path and query, relative to the API base (`/tiers/v1/status`), or an absolute URL (upload targets). */
  path: string;
  body?: unknown;
  /** Raw bytes instead of JSON. */
  bytes?: { data: Uint8Array; contentType: string } | undefined;
  auth: Auth;
  headers?: Record<string, string> | undefined;
  /** This response's body limit, for reads that grow with the project (a release inventory lists every file). @default the transport's */
  maxResponseBytes?: number | undefined;
};

/** A response with its body already read (JSON when the server says so, else text). */
export type Exchange = { response: Response; body: unknown; url: string };

/** Throws {@link CancelledError} when `signal` has fired. */
export function throwIfCancelled(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new CancelledError({ while: what });
}

/** Waits `ms`, or throws {@link CancelledError} as soon as `signal` fires. */
export function pause(
  ms: number,
  signal: AbortSignal | undefined,
  what = "waiting to ask again",
): Promise<void> {
  throwIfCancelled(signal, what);
  return new Promise((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer);
      reject(new CancelledError({ while: what }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    signal?.addEventListener("abort", stop, { once: true });
  });
}

/** Resolves `path` against the API base, keeping the base's own path prefix. */
export function urlFor(apiBase: URL, path: string): URL {
  if (/^https?:\/\//.test(path)) return new URL(path);
  const base = apiBase.href.endsWith("/") ? apiBase.href.slice(0, -1) : apiBase.href;
  return new URL(base + path);
}

/** Builds a fresh Request (a fresh SIWX each time). */
export async function build(
  t: Transport,
  spec: RequestSpec,
  extra: Record<string, string> = {},
): Promise<Request> {
  const url = urlFor(t.apiBase, spec.path);
  const headers = new Headers(spec.headers);
  headers.set("accept", "application/json");
  let body: string | Blob | undefined;
  if (spec.bytes) {
    headers.set("content-type", spec.bytes.contentType);
    body = new Blob([spec.bytes.data as Uint8Array<ArrayBuffer>]);
  } else if (spec.body !== undefined) {
    headers.set("content-type", "application/json");
    body = JSON.stringify(spec.body);
  }
  if (spec.auth.kind === "siwx") {
    headers.set(Siwx.header, Siwx.serialize(await Siwx.create({ account: t.account, url })));
  } else if (spec.auth.kind === "bearer") {
    headers.set("authorization", `Bearer ${spec.auth.token}`);
  } else if (spec.auth.kind === "apikey") {
    headers.set("apikey", spec.auth.key);
  }
  for (const [k, v] of Object.entries(extra)) headers.set(k, v);
  return new Request(url, { method: spec.method, headers, ...(body !== undefined ? { body } : {}) });
}

/**
 * Sends one request with the client's timeout and reads the body up to `maxResponseBytes`. Never
 * retries and never follows a redirect: a 3xx is a {@link RedirectError} naming its target, so no
 * credential, SIWX or key is ever re-sent to another URL.
 */
export async function sendOnce(t: Transport, request: Request, maxResponseBytes?: number): Promise<Exchange> {
  const url = request.url;
  const limit = maxResponseBytes ?? t.maxResponseBytes ?? defaultMaxResponseBytes;
  const stop = new AbortController();
  const signal = AbortSignal.any([
    AbortSignal.timeout(t.timeoutMs),
    stop.signal,
    ...(t.signal ? [t.signal] : []),
  ]);
  const waiting = `waiting for ${request.method} ${url}`;
  if (t.signal?.aborted) throw new CancelledError({ while: `about to send ${request.method} ${url}` });
  const timedOut = (err: unknown) =>
    err instanceof Error &&
    (err.name === "TimeoutError" || err.name === "AbortError") &&
    !stop.signal.aborted;
  let response: Response;
  try {
    response = await t.fetch(request, { signal, redirect: "manual" });
  } catch (err) {
    if (t.signal?.aborted) throw new CancelledError({ while: waiting, cause: err });
    if (timedOut(err)) throw new TimeoutError({ method: request.method, url, timeoutMs: t.timeoutMs });
    throw new HttpRequestError({ method: request.method, url, cause: err });
  }
  t.emit({ type: "request", method: request.method, url, status: response.status });
  const date = Date.parse(response.headers.get("date") ?? "");
  if (Number.isFinite(date) && new URL(url).origin === t.apiBase.origin)
    t.clock = { server: date, local: Date.now() };
  if (response.status >= 300 && response.status < 400) {
    stop.abort();
    const location = response.headers.get("location");
    throw new RedirectError({
      method: request.method,
      url,
      status: response.status,
      location: location === null ? null : new URL(location, url).href,
    });
  }
  const tooLarge = () => {
    stop.abort();
    return new ResponseTooLargeError({
      method: request.method,
      url,
      status: response.status,
      limitBytes: limit,
    });
  };
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > limit) throw tooLarge();
  let text: string;
  try {
    text = await readLimited(response, limit, tooLarge);
  } catch (err) {
    if (err instanceof ResponseTooLargeError) throw err;
    if (t.signal?.aborted) throw new CancelledError({ while: waiting, cause: err });
    if (timedOut(err)) throw new TimeoutError({ method: request.method, url, timeoutMs: t.timeoutMs });
    text = "";
  }
  let body: unknown = text;
  if ((response.headers.get("content-type") ?? "").includes("json")) {
    try {
      body = text ? JSON.parse(text) : text;
    } catch {
      body = null;
    }
  }
  return { response, body, url };
}

/** Reads a body as UTF-8, streaming, and throws `tooLarge()` as soon as it passes `limit` bytes. */
async function readLimited(response: Response, limit: number, tooLarge: () => Error): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString("utf8");
}

/** Seconds to wait from `Retry-After` (seconds or HTTP date), or the body's `retry_after`. */
export function retryAfterSeconds(response: Response, body: unknown): number | undefined {
  const header = response.headers.get("retry-after");
  if (header) {
    if (/^\d+(\.\d+)?$/.test(header.trim())) return Number(header.trim());
    const at = Date.parse(header);
    if (!Number.isNaN(at)) return Math.max(0, (at - Date.now()) / 1000);
  }
  const fromBody =
    body && typeof body === "object" ? (body as Record<string, unknown>)["retry_after"] : undefined;
  return typeof fromBody === "number" ? fromBody : undefined;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * The error envelope in `body`, when it has one. Run402 answers errors in three shapes (kychee-com/
 * run402 sdk/src/namespaces/deploy.ts `extractGatewayError`): nested `{error: {code, message, …}}`,
 * top-level `{code, message, …}`, and `{error: "<message>", code}`. All three give the same envelope;
 * a nested envelope's missing fields (category, retry hints, details, next actions) are read from the
 * top level.
 */
export function envelopeOf(body: unknown): ErrorEnvelope | null {
  if (!isRecord(body)) return null;
  const nested = body["error"];
  if (isRecord(nested) && typeof nested["code"] === "string") {
    const merged: Record<string, unknown> = { ...nested };
    for (const key of ["category", "retryable", "safe_to_retry", "details", "next_actions", "trace_id"])
      if (merged[key] === undefined && body[key] !== undefined) merged[key] = body[key];
    return tidy(merged, nested["code"]);
  }
  if (typeof body["code"] !== "string") return null;
  const details = isRecord(body["details"]) ? body["details"] : undefined;
  const message =
    typeof body["message"] === "string"
      ? body["message"]
      : typeof body["error"] === "string"
        ? body["error"]
        : typeof details?.["message"] === "string"
          ? details["message"]
          : undefined;
  return tidy({ ...body, ...(message !== undefined ? { message } : {}) }, body["code"]);
}

/** An envelope with its typed fields checked (a field of the wrong type is dropped, not trusted). */
function tidy(raw: Record<string, unknown>, code: string): ErrorEnvelope {
  const out: ErrorEnvelope = {
    ...raw,
    code,
    message: typeof raw["message"] === "string" ? raw["message"] : code,
  };
  for (const key of ["retryable", "safe_to_retry"] as const)
    if (out[key] !== undefined && typeof out[key] !== "boolean") delete out[key];
  if (out.category !== undefined && typeof out.category !== "string") delete out.category;
  if (out.next_actions !== undefined && !Array.isArray(out.next_actions)) delete out.next_actions;
  return out;
}

/** Maps a non-2xx exchange to an {@link ApiError}. */
export function toApiError(method: string, ex: Exchange): ApiError {
  return new ApiError({
    method,
    url: ex.url,
    status: ex.response.status,
    envelope: envelopeOf(ex.body),
    body: ex.body,
    retryAfterSeconds: retryAfterSeconds(ex.response, ex.body),
  });
}

/**
 * Sends a request that carries no payment, retrying only where the server says it is safe:
 * 429 with a Retry-After, and 5xx whose envelope has `safe_to_retry: true`. Returns any final status.
 */
export async function send(t: Transport, spec: RequestSpec): Promise<Exchange> {
  const maxAttempts = t.maxAttempts ?? 3;
  const cap = t.maxRetryAfterSeconds ?? 30;
  for (let attempt = 1; ; attempt++) {
    const ex = await sendOnce(t, await build(t, spec), spec.maxResponseBytes);
    const status = ex.response.status;
    if (attempt >= maxAttempts || (status !== 429 && status < 500)) return ex;
    const wait = retryAfterSeconds(ex.response, ex.body);
    const retry = status === 429 ? wait !== undefined : envelopeOf(ex.body)?.safe_to_retry === true;
    if (!retry || (wait ?? 0) > cap) return ex;
    const waitMs = Math.round((wait ?? 2 ** (attempt - 1) * 0.25) * 1000);
    t.emit({ type: "retry", method: spec.method, url: ex.url, status, attempt, waitMs });
    await pause(waitMs, t.signal, `waiting ${waitMs} ms to retry ${spec.method} ${ex.url}`);
  }
}

/** Validates a 2xx body against `schema`, or throws {@link ResponseValidationError}. */
export function parse<S extends z.ZodType>(schema: S, ex: Exchange): z.output<S> {
  const result = schema.safeParse(ex.body);
  if (!result.success) {
    throw new ResponseValidationError({
      url: ex.url,
      issues: result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`),
      cause: result.error,
    });
  }
  return result.data;
}

/** Sends, throws {@link ApiError} on non-2xx, validates the body. */
export async function call<S extends z.ZodType>(
  t: Transport,
  spec: RequestSpec,
  schema: S,
): Promise<z.output<S>> {
  const ex = await send(t, spec);
  if (!ex.response.ok) throw toApiError(spec.method, ex);
  return parse(schema, ex);
}
