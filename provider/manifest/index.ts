export { checkManifest } from "./check.js";
export { contentTypeFor } from "./contentType.js";
export {
  findManifest,
  type LoadedManifest,
  loadManifest,
  MANIFEST_NAMES,
  ManifestNotFoundError,
  type ManifestNotFoundErrorType,
  ManifestUnreadableError,
  type ManifestUnreadableErrorType,
} from "./load.js";
export { READ_LIMITS } from "./read.js";
export {
  type ContentEntry,
  type ResolvedRelease,
  type ResolveManifestParameters,
  resolveManifest,
  SKIPPED_DIR_ENTRIES,
} from "./resolve.js";
