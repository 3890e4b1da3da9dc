/** Error classification shared by the handlers. */
import { BaseError } from "../../sdk/errors/base.js";

/** True when the API says the object (or its project) no longer exists or is no longer ours. */
export function isGoneError(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false;
  const status = (error as BaseError & { status?: number }).status;
  return status === 401 || status === 403 || status === 404;
}
