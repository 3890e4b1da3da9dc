export type * from "./app.types.js";
export {
  formatIssue,
  type ManifestIssue,
  ManifestValidationError,
  type ManifestValidationErrorType,
} from "./errors.js";
export {
  APP_SCHEMA_ID,
  appSchema,
  assertManifest,
  didYouMean,
  type ValidateManifestResult,
  validateManifest,
} from "./validate.js";
