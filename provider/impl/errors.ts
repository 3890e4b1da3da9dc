/** Error classification shared by the handlers. */
import { BaseError } from "../../sdk/errors/base.js";

// Codes that mean "this object or its project no longer exists", whatever the status. A frozen
// or dormant org (403 PROJECT_FROZEN / PROJECT_DORMANT) still has the object: not gone.
const goneCodes = new Set(["INVALID_KEY", "PROJECT_NOT_FOUND", "PROJECT_PURGED", "SECRET_NOT_FOUND"]);

/** True when the API says the object (or its project) no longer exists. */
export function isGoneError(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false;
  return error.status === 404 || goneCodes.has(error.code);
}
