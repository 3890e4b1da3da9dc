import { type ErrorCode, isRegistered, type RegisteredCode } from "./codes.js";

/** Options shared by every error the package throws (SDK, schema, provider, CLI). */
export type BaseErrorOptions = {
  /** Stable machine-readable code (core/codes.ts); branch on this, never on the message. */
  code: ErrorCode;
  /** HTTP status when the error came from a response. */
  status?: number | undefined;
  /** Extra context, one line each, printed under the short message. */
  metaMessages?: string[] | undefined;
  /** Longer explanation (for wrapped errors, the cause's message). */
  details?: string | undefined;
  cause?: unknown;
};

/** Root of every error the package throws: `shortMessage`, `details`, `metaMessages`, `code`, `status`, `cause`, `walk()`. */
export class BaseError extends Error {
  override name = "Run402Error";
  readonly shortMessage: string;
  readonly details: string | undefined;
  readonly metaMessages: string[] | undefined;
  readonly code: ErrorCode;
  readonly status: number | undefined;

  constructor(shortMessage: string, options: BaseErrorOptions) {
    const details =
      options.details ?? (options.cause instanceof BaseError ? options.cause.shortMessage : undefined);
    const message = [
      shortMessage,
      ...(options.metaMessages?.length ? ["", ...options.metaMessages] : []),
      ...(details ? ["", `Details: ${details}`] : []),
    ].join("\n");
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.shortMessage = shortMessage;
    this.details = details;
    this.metaMessages = options.metaMessages;
    this.code = options.code;
    this.status = options.status;
  }

  /** Walks the cause chain; returns the first error matching `fn`, or the innermost one without `fn`. */
  walk(fn?: (err: unknown) => boolean): unknown {
    return walk(this, fn);
  }
}

function walk(err: unknown, fn?: (err: unknown) => boolean): unknown {
  if (fn?.(err)) return err;
  if (err && typeof err === "object" && "cause" in err && err.cause !== undefined) return walk(err.cause, fn);
  return fn ? null : err;
}

/**
 * The registered code an error is reported under: its own when registered (a BaseError, or any
 * error carrying a registered `code`), `RUN402_API_ERROR` for a BaseError relaying a code of Run402's
 * API (its message names that code), none for anything else (a bug, reported by whoever catches it).
 */
export function reportedCode(error: unknown): RegisteredCode | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (isRegistered(code)) return code;
  return error instanceof BaseError ? "RUN402_API_ERROR" : undefined;
}
