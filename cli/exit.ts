/**
 * Exit codes of run402-pulumi and the one place where error codes map to them. The provider
 * prefixes every error it raises with a bracketed stable code (`[POLICY_MAX_SPEND] …`); the engine
 * hands those back only as text, so this is where text becomes a code and a code becomes an exit.
 */

/** The process exit codes (docs/cli.md lists them). */
export const ExitCode = {
  ok: 0,
  /** Invalid manifest or configuration, or bad flags. */
  invalid: 2,
  /** Refused by the spend policy (nothing was paid). */
  policy: 3,
  /** The Run402 API or a payment failed. */
  run402: 4,
  /** The Pulumi engine failed (or is missing). */
  engine: 5,
  /**
   * Another run holds the stack or the payment journal, or the world changed since the plan:
   * nothing was changed or paid; run again.
   */
  conflict: 6,
  /** Stopped by SIGINT/SIGTERM before it finished. */
  interrupted: 130,
} as const;

/** One of {@link ExitCode}'s values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error as reported in the JSON document. */
export interface ReportedError {
  code: string;
  message: string;
  /** The JSON pointer into the manifest (`MANIFEST_INVALID`). */
  pointer?: string;
  /** The manifest file (`MANIFEST_*`). */
  file?: string;
}

/** Maps a stable error code to the exit code. */
export function exitCodeFor(code: string): ExitCodeValue {
  // RUN_CANCELLED: the provider stopped by the engine's cancel (a run stopped by a signal).
  if (code === "ENGINE_CANCELLED" || code === "RUN_CANCELLED") return ExitCode.interrupted;
  // A credential that differs from what the policy approved is discarded unsent: a refusal.
  if (code.startsWith("POLICY_") || code === "PAYMENT_CREDENTIAL_MISMATCH") return ExitCode.policy;
  if (
    code.startsWith("MANIFEST_") ||
    code.startsWith("CONFIG_") ||
    code.startsWith("CLI_") ||
    code === "JOURNAL_CORRUPT" ||
    code === "JOURNAL_IO"
  )
    return ExitCode.invalid;
  if (code.startsWith("CONFLICT_") || code === "JOURNAL_LOCKED" || code === "INTENT_IN_PROGRESS")
    return ExitCode.conflict;
  if (
    code.startsWith("RUN402_") ||
    code.startsWith("HTTP_") ||
    code.startsWith("PAYMENT_") ||
    code.startsWith("INTENT_") ||
    code === "RAIL_NOT_OFFERED"
  )
    return ExitCode.run402;
  return ExitCode.engine;
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
 * Finds the coded errors in engine text (diagnostics, stderr): one per `[CODE] message` occurrence,
 * the message running to the end of its line. Text without a code yields nothing.
 */
export function codedErrors(text: string): ReportedError[] {
  const found: ReportedError[] = [];
  const seen = new Set<string>();
  for (const match of text.matchAll(codePattern)) {
    const code = match[1] as string;
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
