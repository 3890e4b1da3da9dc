/**
 * Exit codes of run402-pulumi. The provider prefixes every error it raises with a bracketed
 * registered code (`[POLICY_MAX_SPEND] …`); the engine hands those back only as text, which
 * cli/engine/classify.ts turns into codes, and the registry (core/codes.ts) gives the code its exit.
 */

import { type ExitCodeValue, exit, exitCodeFor } from "../core/codes.js";
import type { ReportedError } from "./reported.js";

/** The process exit codes (docs/cli.md lists them; core/codes.ts gives each error code its exit). */
export const ExitCode = exit;
export type { ExitCodeValue };
/** Maps a stable error code to the exit code: the registry's (core/codes.ts), 5 for any other. */
export { exitCodeFor };

/**
 * The most telling exit among several errors: an interrupted run says so; then policy over input
 * over conflict over API over engine.
 */
export function exitCodeOf(errors: readonly ReportedError[]): ExitCodeValue {
  if (errors.length === 0) return ExitCode.ok;
  const exits = errors.map((e) => exitCodeFor(e.code));
  for (const preferred of [
    ExitCode.interrupted,
    ExitCode.policy,
    ExitCode.invalid,
    ExitCode.conflict,
    ExitCode.run402,
    ExitCode.engine,
  ]) {
    if (exits.includes(preferred)) return preferred;
  }
  return ExitCode.engine;
}
