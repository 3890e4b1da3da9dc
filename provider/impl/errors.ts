/** Error classification shared by the handlers, and the errors the reconciler itself raises. */
import { BaseError } from "../../core/errors.js";

// Codes that mean "this object or its project no longer exists", whatever the status. A frozen
// or dormant org (403 PROJECT_FROZEN / PROJECT_DORMANT) still has the object: not gone.
const goneCodes = new Set(["INVALID_KEY", "PROJECT_NOT_FOUND", "PROJECT_PURGED", "SECRET_NOT_FOUND"]);

/** True when the API says the object (or its project) no longer exists. */
export function isGoneError(error: unknown): boolean {
  if (!(error instanceof BaseError)) return false;
  return error.status === 404 || goneCodes.has(error.code);
}

/**
 * The world changed between the plan (preview, check) and the update: the action or price a Tier
 * planned, or the manifest's content. Nothing was paid or deployed; running again plans afresh.
 */
export class ConflictError extends BaseError {
  override name = "ConflictError";
  constructor(kind: "PLAN_CHANGED" | "MANIFEST_CHANGED", message: string) {
    super(message, { code: `CONFLICT_${kind}` });
  }
}

/** This run may not pay for the action the Tier needs (`run402:allowedActions`, e.g. `renew`). */
export class ActionNotAllowedError extends BaseError {
  override name = "ActionNotAllowedError";
  readonly action: string;
  constructor(options: { action: string; allowed: readonly string[]; tier: string; reason: string }) {
    super(
      `The ${options.tier} tier needs "${options.action}" (${options.reason}), but this run may pay only for ${options.allowed.join(", ") || "nothing"} (run402:allowedActions). Nothing was paid.`,
      {
        code: "POLICY_ACTION_NOT_ALLOWED",
        metaMessages: ["Run `run402-pulumi apply` (or `pulumi up`) to converge the tier."],
      },
    );
    this.action = options.action;
  }
}
