export { contentTypeFor } from "./contentType.js";
export { type ChangeSet, diffResolved, type ResolvedDiff } from "./diff.js";
export { canonicalJson, sha256Hex } from "./hash.js";
export {
  type LoadedManifest,
  loadManifest,
  ManifestNotFoundError,
  type ManifestNotFoundErrorType,
} from "./load.js";
export {
  type ContentEntry,
  type ResolvedRelease,
  type ResolvedSummary,
  type ResolveManifestParameters,
  resolveManifest,
  SKIPPED_DIR_ENTRIES,
  type WireContentRef,
  type WireFunction,
  type WireMigration,
  type WireReleaseSpec,
} from "./resolve.js";
