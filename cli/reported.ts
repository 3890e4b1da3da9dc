/** An error as the CLI reports it: what cli/exit.ts, cli/locks.ts and the engine's classifier share. */
import type { RegisteredCode } from "../core/codes.js";

/** An error as reported in the JSON document. */
export interface ReportedError {
  code: RegisteredCode;
  message: string;
  /** The JSON pointer into the manifest (`MANIFEST_INVALID`). */
  pointer?: string;
  /** The manifest file (`MANIFEST_*`). */
  file?: string;
}
