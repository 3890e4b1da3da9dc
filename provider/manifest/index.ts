export { contentTypeFor } from "./contentType.js";
export {
  findManifest,
  type LoadedManifest,
  loadManifest,
  MANIFEST_NAMES,
  ManifestNotFoundError,
  type ManifestNotFoundErrorType,
} from "./load.js";
export {
  type ContentEntry,
  type ResolvedRelease,
  type ResolveManifestParameters,
  resolveManifest,
  SKIPPED_DIR_ENTRIES,
} from "./resolve.js";
