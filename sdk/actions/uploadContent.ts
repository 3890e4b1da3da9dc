import type { ApiError } from "../errors/http.js";
import type { ActionContext } from "../internal/context.js";
import { send, toApiError, urlFor } from "../internal/http.js";

/** Parameters of `uploadContent`. */
export type UploadContentParameters = {
  /** Upload URL from a content plan. */
  url: string;
  bytes: Uint8Array;
  contentType: string;
  anonKey: string;
};
/** Errors `uploadContent` can throw. */
export type UploadContentErrorType = ApiError;

/** PUTs bytes to an upload URL from {@link planContent}; the server checks them against their sha256. */
export async function uploadContent(ctx: ActionContext, parameters: UploadContentParameters): Promise<void> {
  const target = urlFor(ctx.transport.apiBase, parameters.url);
  // The anon key goes only to the API's own origin, never to a third-party upload host.
  const sameOrigin = target.origin === ctx.transport.apiBase.origin;
  const ex = await send(ctx.transport, {
    method: "PUT",
    path: target.href,
    bytes: { data: parameters.bytes, contentType: parameters.contentType },
    auth: sameOrigin ? { kind: "apikey", key: parameters.anonKey } : { kind: "none" },
  });
  if (!ex.response.ok) throw toApiError("PUT", ex);
}
