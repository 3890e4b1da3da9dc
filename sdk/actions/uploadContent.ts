import { type ApiError, UploadUrlError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { send, toApiError } from "../internal/http.js";

/** Parameters of `uploadContent`. */
export type UploadContentParameters = {
  /** Upload URL from a content plan. */
  url: string;
  bytes: Uint8Array;
  contentType: string;
  anonKey: string;
};
/** Errors `uploadContent` can throw. */
export type UploadContentErrorType = ApiError | UploadUrlError;

const loopback = new Set(["127.0.0.1", "localhost", "[::1]"]);

/**
 * Where a content plan may send bytes: the API's own origin or one of `uploadOrigins`, over https
 * unless the API itself is on loopback (a local sandbox). Anything else (another host, another
 * port, a private address) is refused before a byte leaves: the plan comes from the server, and a
 * hostile one could otherwise aim the client at any URL it can reach.
 */
export function checkUploadUrl(apiBase: URL, url: string, uploadOrigins: readonly string[] = []): URL {
  const allowed = [apiBase.origin, ...uploadOrigins.map((o) => new URL(o).origin)];
  let target: URL;
  try {
    target = new URL(url, apiBase);
  } catch {
    throw new UploadUrlError({ url, reason: "it is not a URL", allowed });
  }
  if (!allowed.includes(target.origin)) {
    throw new UploadUrlError({
      url: target.href,
      reason: `its origin ${target.origin} is neither the API's nor in uploadOrigins`,
      allowed,
    });
  }
  if (target.protocol !== "https:" && !loopback.has(apiBase.hostname)) {
    throw new UploadUrlError({ url: target.href, reason: "it is not https", allowed });
  }
  return target;
}

/** PUTs bytes to an upload URL from {@link planContent}; the server checks them against their sha256. */
export async function uploadContent(ctx: ActionContext, parameters: UploadContentParameters): Promise<void> {
  const { apiBase, uploadOrigins } = ctx.transport;
  const target = checkUploadUrl(apiBase, parameters.url, uploadOrigins);
  // The anon key goes only to the API's own origin, never to an upload host on the allow-list.
  const sameOrigin = target.origin === apiBase.origin;
  const ex = await send(ctx.transport, {
    method: "PUT",
    path: target.href,
    bytes: { data: parameters.bytes, contentType: parameters.contentType },
    auth: sameOrigin ? { kind: "apikey", key: parameters.anonKey } : { kind: "none" },
  });
  if (!ex.response.ok) throw toApiError("PUT", ex);
}
