/**
 * Exit codes of run402-pulumi. The provider prefixes every error it raises with a bracketed
 * registered code (`[POLICY_MAX_SPEND] …`); the engine hands those back only as text, so this is where
 * text becomes a code, and the registry (core/codes.ts) gives the code its exit.
 */

import { type ExitCodeValue, exit, exitCodeFor, isRegistered, type RegisteredCode } from "../core/codes.js";

/** The process exit codes (docs/cli.md lists them; core/codes.ts gives each error code its exit). */
export const ExitCode = exit;
export type { ExitCodeValue };
/** Maps a stable error code to the exit code: the registry's (core/codes.ts), 5 for any other. */
export { exitCodeFor };

/** An error as reported in the JSON document. */
export interface ReportedError {
  code: RegisteredCode;
  message: string;
  /** The JSON pointer into the manifest (`MANIFEST_INVALID`). */
  pointer?: string;
  /** The manifest file (`MANIFEST_*`). */
  file?: string;
}

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

const codePattern = /\[([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\]\s*/g;

/**
 * Finds the coded errors in engine text (diagnostics, stderr): one per `[CODE] message` occurrence of
 * a registered code, the message running to the end of its line. Text without one yields nothing.
 */
export function codedErrors(text: string): ReportedError[] {
  const found: ReportedError[] = [];
  const seen = new Set<string>();
  for (const match of text.matchAll(codePattern)) {
    const code = match[1];
    if (!isRegistered(code)) continue;
    const start = (match.index ?? 0) + match[0].length;
    const end = text.indexOf("\n", start);
    const message = text
      .slice(start, end === -1 ? undefined : end)
      .trim()
      .replace(/:\s*$/, "");
    if (seen.has(`${code}\u0000${message}`)) continue;
    seen.add(`${code}\u0000${message}`);
    found.push({ code, message });
  }
  return found;
}

/** Classifies an engine failure: its coded errors, or one ENGINE_ERROR with the most telling line. */
export function engineErrors(text: string): ReportedError[] {
  const coded = codedErrors(text);
  if (coded.length > 0) return coded;
  const lines = text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "");
  const telling =
    lines.find((line) => /^error:/i.test(line) && !/^error:\s*update failed$/i.test(line)) ??
    lines.find((line) => !/^error:\s*update failed$/i.test(line)) ??
    "The Pulumi engine failed.";
  return [{ code: "ENGINE_ERROR", message: telling.replace(/^error:\s*/i, "") }];
}
