/**
 * The one reader of engine text (stderr, diagnostics): the provider's coded errors (`[CODE] message`,
 * CODE one of core/codes.ts's), the engine's own failures (a locked stack, a missing stack, a backend
 * another runner is setting up at the same moment), and the most telling line of anything else.
 * Only text crosses from the engine and the provider to the CLI, so this is where text becomes a code.
 */
import { isRegistered } from "../../core/codes.js";
import { describeLock, lockedError } from "../locks.js";
import type { ReportedError } from "../reported.js";

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

/**
 * The engine's "stack is locked" failure (its text is all the Automation API hands back), as
 * cli/locks.ts's `lockedError`; undefined for any other text.
 */
export function lockedFromEngine(stack: string, text: string): ReportedError | undefined {
  if (!/the stack is currently locked/i.test(text)) return undefined;
  const holders = [...text.matchAll(/created by (\S+)@(\S+) \(pid (\d+)\) at (\S+)/g)].map((m) =>
    describeLock({
      pid: Number(m[3]),
      username: m[1] as string,
      hostname: m[2] as string,
      timestamp: m[4] as string,
    }),
  );
  return lockedError(stack, holders.length > 0 ? holders : ["another engine process"]);
}

/**
 * `pulumi stack select` lost a race to another runner sharing the backend (a fleet on one
 * postgres:// first-using it, or creating the same stack, at the same moment): worth another try.
 */
export function racedOnBackend(stderr: string): boolean {
  return /already exists|unable to open state database|could not create stack|could not list bucket/i.test(
    stderr,
  );
}

/** `pulumi stack select` (without `--create`) found no such stack. */
export function noSuchStack(stderr: string): boolean {
  return /no stack named|not found|does not exist/i.test(stderr);
}
