/** The canonical Run402 error envelope and the one error type every handler throws. */

/** One suggested follow-up in an error envelope. */
export interface NextAction {
  type: string;
  [key: string]: unknown;
}

/** What kind of failure an error is. */
export type Category =
  | "auth"
  | "payment"
  | "lifecycle"
  | "validation"
  | "conflict"
  | "not_found"
  | "rate_limit"
  | "internal";

/** Options of an ApiError. */
export interface ApiErrorOptions {
  category: Category;
  retryable?: boolean;
  safe_to_retry?: boolean;
  next_actions?: NextAction[];
  details?: unknown;
  /** Route-specific top-level fields (`lifecycle_state`, ...). */
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
  /**
   * Also carry the error nested as `error: { code, message, retryable, safe_to_retry, … }`, the form
   * Run402's deploy routes use (kychee-com/run402 sdk/src/namespaces/deploy.ts `extractGatewayError`,
   * deploy.test.ts "nested gateway error wrappers"); the canonical top-level fields stay beside it.
   */
  nested?: boolean;
}

/** An HTTP error answered with the canonical envelope. */
export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly options: ApiErrorOptions,
  ) {
    super(message);
  }

  /** The JSON body. */
  envelope(): Record<string, unknown> {
    const {
      category,
      retryable = false,
      safe_to_retry = false,
      next_actions = [],
      details,
      extra,
    } = this.options;
    return {
      code: this.code,
      message: this.message,
      category,
      retryable,
      safe_to_retry,
      next_actions,
      ...(details === undefined ? {} : { details }),
      ...extra,
      ...(this.options.nested
        ? {
            error: {
              code: this.code,
              message: this.message,
              retryable,
              safe_to_retry,
              ...(details === undefined ? {} : { details }),
            },
          }
        : {}),
    };
  }
}

/** 400 for a request the route cannot accept as written. */
export function badRequest(code: string, message: string, details?: unknown): ApiError {
  return new ApiError(400, code, message, { category: "validation", details });
}

/** 401 when no credential was sent. */
export function authRequired(auth: "SIWX" | "service_key" | "anon_key"): ApiError {
  const header = { SIWX: "SIGN-IN-WITH-X", service_key: "Authorization: Bearer", anon_key: "apikey" }[auth];
  return new ApiError(401, "AUTH_REQUIRED", `This route needs ${auth} authentication (${header}).`, {
    category: "auth",
    next_actions: [{ type: "authenticate", auth }],
  });
}

/** 403 for anything the caller may not see or touch (also for absent projects: authorize before reveal). */
export function notAuthorized(message = "Not authorized for this project."): ApiError {
  return new ApiError(403, "NOT_AUTHORIZED", message, { category: "auth" });
}

/** 404 for a missing resource the caller is allowed to know about. */
export function notFound(code: string, message: string): ApiError {
  return new ApiError(404, code, message, { category: "not_found" });
}

/** 409 for a conflict with current state. */
export function conflict(code: string, message: string, options: Partial<ApiErrorOptions> = {}): ApiError {
  return new ApiError(409, code, message, { category: "conflict", ...options });
}
