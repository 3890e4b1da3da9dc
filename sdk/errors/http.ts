import { apiCode } from "../../core/codes.js";
import { BaseError } from "../../core/errors.js";

/** One suggested follow-up from the error envelope (`{ type, ... }`). */
export type NextAction = { type: string } & Record<string, unknown>;

/** The canonical Run402 error envelope, as received. */
export type ErrorEnvelope = {
  code: string;
  message: string;
  category?: string | undefined;
  retryable?: boolean | undefined;
  safe_to_retry?: boolean | undefined;
  next_actions?: NextAction[] | undefined;
  details?: unknown;
} & Record<string, unknown>;

/** The request never produced an HTTP response (connection refused, reset, DNS). */
export class HttpRequestError extends BaseError {
  override name = "HttpRequestError" as const;
  readonly method: string;
  readonly url: string;
  constructor(options: { method: string; url: string; cause?: unknown }) {
    super(`${options.method} ${options.url} failed before a response arrived.`, {
      code: "HTTP_REQUEST_FAILED",
      cause: options.cause,
      details: options.cause instanceof Error ? options.cause.message : undefined,
    });
    this.method = options.method;
    this.url = options.url;
  }
}
/** `HttpRequestError` narrowed by `name`. */
export type HttpRequestErrorType = HttpRequestError & { name: "HttpRequestError" };

/**
 * The run was stopped (its abort signal fired: SIGINT/SIGTERM, or the engine's cancel) while this
 * waited. Nothing more is sent; a payment already made stays `pending` in the journal, and the next
 * run resolves it (keyed replay, then the chain) without paying again.
 */
export class CancelledError extends BaseError {
  override name = "CancelledError" as const;
  constructor(options: { while: string; cause?: unknown }) {
    super(`Stopped while ${options.while}.`, { code: "RUN_CANCELLED", cause: options.cause });
  }
}

/** The request took longer than the client's `timeoutMs`. */
export class TimeoutError extends BaseError {
  override name = "TimeoutError" as const;
  readonly method: string;
  readonly url: string;
  readonly timeoutMs: number;
  constructor(options: { method: string; url: string; timeoutMs: number }) {
    super(`${options.method} ${options.url} timed out after ${options.timeoutMs} ms.`, { code: "TIMEOUT" });
    this.method = options.method;
    this.url = options.url;
    this.timeoutMs = options.timeoutMs;
  }
}
/** `TimeoutError` narrowed by `name`. */
export type TimeoutErrorType = TimeoutError & { name: "TimeoutError" };

/**
 * The server answered with a non-2xx status; `code` is the envelope's code (or `HTTP_<status>` without
 * one), Run402's own: the CLI and the provider report it as `RUN402_API_ERROR`, naming it in the message.
 */
export class ApiError extends BaseError {
  override name: string = "ApiError";
  readonly method: string;
  readonly url: string;
  readonly category: string | undefined;
  readonly retryable: boolean;
  readonly safeToRetry: boolean;
  readonly nextActions: NextAction[];
  readonly body: unknown;
  /** Seconds from `Retry-After`, when the server sent one. */
  readonly retryAfterSeconds: number | undefined;

  constructor(options: {
    method: string;
    url: string;
    status: number;
    envelope: ErrorEnvelope | null;
    body: unknown;
    retryAfterSeconds?: number | undefined;
  }) {
    const env = options.envelope;
    const code = apiCode(env?.code ?? `HTTP_${options.status}`);
    const meta = [`Request: ${options.method} ${options.url}`, `Status: ${options.status}`];
    if (env?.next_actions?.length)
      meta.push(`Next actions: ${env.next_actions.map((a) => a.type).join(", ")}`);
    super(`${env?.message ?? `The server answered ${options.status}`} (${code}).`, {
      code,
      status: options.status,
      metaMessages: meta,
    });
    this.method = options.method;
    this.url = options.url;
    this.category = env?.category;
    this.retryable = env?.retryable ?? false;
    this.safeToRetry = env?.safe_to_retry ?? false;
    this.nextActions = env?.next_actions ?? [];
    this.body = options.body;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}
/** `ApiError` narrowed by `name`. */
export type ApiErrorType = ApiError & { name: "ApiError" };

/** A 2xx response whose body does not match the contract. */
export class ResponseValidationError extends BaseError {
  override name = "ResponseValidationError" as const;
  readonly url: string;
  constructor(options: { url: string; issues: string[]; cause?: unknown }) {
    super(`The response from ${options.url} does not match the expected shape.`, {
      code: "RESPONSE_INVALID",
      metaMessages: options.issues.slice(0, 5),
      cause: options.cause,
    });
    this.url = options.url;
  }
}
/** `ResponseValidationError` narrowed by `name`. */
export type ResponseValidationErrorType = ResponseValidationError & { name: "ResponseValidationError" };

/**
 * A deploy operation ended `failed` or `rolled_back`; `code` is the operation's error code (Run402's,
 * named in the message), or `DEPLOY_FAILED` without one.
 */
export class DeployFailedError extends BaseError {
  override name = "DeployFailedError" as const;
  readonly operationId: string;
  readonly operationStatus: string;
  constructor(options: {
    operationId: string;
    status: string;
    code?: string | undefined;
    message?: string | undefined;
  }) {
    super(
      `Deploy operation ${options.operationId} ended ${options.status}${options.code ? ` (${options.code})` : ""}.`,
      {
        code: options.code ? apiCode(options.code) : "DEPLOY_FAILED",
        details: options.message,
      },
    );
    this.operationId = options.operationId;
    this.operationStatus = options.status;
  }
}
/** `DeployFailedError` narrowed by `name`. */
export type DeployFailedErrorType = DeployFailedError & { name: "DeployFailedError" };

/**
 * The server answered with a redirect. The SDK never follows one: a redirect could carry payment
 * credentials, SIWX or keys to another origin.
 */
export class RedirectError extends BaseError {
  override name = "RedirectError" as const;
  readonly method: string;
  readonly url: string;
  /** Where the server pointed (the `Location` header), or null without one. */
  readonly location: string | null;
  constructor(options: { method: string; url: string; status: number; location: string | null }) {
    super(
      `${options.method} ${options.url} was redirected (${options.status}) to ${options.location ?? "an unnamed location"}; redirects are not followed.`,
      {
        code: "HTTP_REDIRECT",
        status: options.status,
        metaMessages: ["Set run402:apiBase (apiBase) to the API's final URL if it moved."],
      },
    );
    this.method = options.method;
    this.url = options.url;
    this.location = options.location;
  }
}
/** `RedirectError` narrowed by `name`. */
export type RedirectErrorType = RedirectError & { name: "RedirectError" };

/** A response body grew past the client's limit; reading stopped there. */
export class ResponseTooLargeError extends BaseError {
  override name = "ResponseTooLargeError" as const;
  readonly url: string;
  readonly limitBytes: number;
  constructor(options: { method: string; url: string; status: number; limitBytes: number }) {
    super(
      `The response to ${options.method} ${options.url} is larger than ${options.limitBytes} bytes; reading stopped there.`,
      {
        code: "HTTP_RESPONSE_TOO_LARGE",
        status: options.status,
        metaMessages: ["Raise maxResponseBytes only if the API is trusted to send bodies this large."],
      },
    );
    this.url = options.url;
    this.limitBytes = options.limitBytes;
  }
}
/** `ResponseTooLargeError` narrowed by `name`. */
export type ResponseTooLargeErrorType = ResponseTooLargeError & { name: "ResponseTooLargeError" };

/** A content plan named an upload URL the client may not send bytes to. Nothing was uploaded. */
export class UploadUrlError extends BaseError {
  override name = "UploadUrlError" as const;
  readonly url: string;
  constructor(options: { url: string; reason: string; allowed: string[] }) {
    super(`Refused to upload to ${options.url}: ${options.reason}. Nothing was sent there.`, {
      code: "HTTP_UPLOAD_URL_REFUSED",
      metaMessages: [
        `Allowed: ${options.allowed.join(", ")}`,
        "Add the upload host's origin to uploadOrigins if the API really uploads there.",
      ],
    });
    this.url = options.url;
  }
}
/** `UploadUrlError` narrowed by `name`. */
export type UploadUrlErrorType = UploadUrlError & { name: "UploadUrlError" };
