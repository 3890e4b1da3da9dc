/**
 * The error-code registry: every stable code the package reports, with the process exit code the
 * run402-pulumi CLI gives it and the documentation section that explains it. `ErrorCode` is derived
 * from it, `BaseError.code` is typed by it, the provider reports only these codes across the engine,
 * and the CLI looks exit codes up here (cli/exit.ts). test/codes.test.ts holds it against
 * docs/cli.md's exit-code tables and drives the payment codes through the built CLI.
 *
 * Adding a code is one line below: `NEW_CODE: e(<exit>, "<doc>#<anchor>"),`, in the block of its exit
 * code. Then throw it as a BaseError (`new BaseError(message, { code: "NEW_CODE" })` or a subclass),
 * and add it to docs/cli.md's "Error codes" table (the test says so when it is missing). The exit is
 * one of `exit`'s values; the anchor is the heading that explains when it happens and what to do.
 *
 * Codes Run402's API sends (an error envelope's `code`, `HTTP_<status>`, a deploy operation's code)
 * are not registered: the SDK keeps them as `ApiCode` on its ApiError and DeployFailedError, and
 * they cross the engine and reach the CLI's report as `RUN402_API_ERROR` with the API's code in the
 * message (`reportedCode`).
 */

/** The process exit codes of run402-pulumi (docs/cli.md, "Exit codes"). */
export const exit = {
  ok: 0,
  /** Invalid manifest or configuration, or bad flags. */
  invalid: 2,
  /** Refused by the spend policy (nothing was paid). */
  policy: 3,
  /** The Run402 API or a payment failed. */
  run402: 4,
  /** The Pulumi engine failed (or is missing). */
  engine: 5,
  /** Another run holds the stack or the payment journal, or the world changed since the plan. */
  conflict: 6,
  /** Stopped by SIGINT/SIGTERM before it finished. */
  interrupted: 130,
} as const;

/** One of {@link exit}'s values. */
export type ExitCodeValue = (typeof exit)[keyof typeof exit];

/** A registered code: its exit code, and the docs section (`file#anchor`) that explains it. */
export interface CodeEntry {
  readonly exit: ExitCodeValue;
  readonly doc: string;
}

const e = (exitCode: ExitCodeValue, doc: string): CodeEntry => ({ exit: exitCode, doc });

const cli = "docs/cli.md";
const arch = "docs/ARCHITECTURE.md";

/** Every registered code. Add one with one line, in its exit code's block. */
export const errorCodes = {
  // 2: invalid input (manifest, configuration, local journal, flags, plan files, confirmation).
  MANIFEST_INVALID: e(exit.invalid, `${cli}#exit-codes`),
  MANIFEST_NOT_FOUND: e(exit.invalid, `${cli}#exit-codes`),
  MANIFEST_UNREADABLE: e(exit.invalid, `${cli}#exit-codes`),
  CONFIG_INVALID: e(exit.invalid, `${cli}#exit-codes`),
  CONFIG_API_ORIGIN_CHANGED: e(exit.invalid, `${arch}#money-safety-sdkpay`),
  WALLET_NOT_FOUND: e(exit.invalid, `${cli}#the-wallet-key`),
  WALLET_INVALID: e(exit.invalid, `${cli}#the-wallet-key`),
  PROJECT_KEYS_NOT_FOUND: e(exit.invalid, `${arch}#how-the-provider-reconciles`),
  PROJECT_KEYS_UNREADABLE: e(exit.invalid, `${arch}#how-the-provider-reconciles`),
  IMPORT_UNAVAILABLE: e(exit.invalid, `${arch}#how-the-provider-reconciles`),
  JOURNAL_CORRUPT: e(exit.invalid, `${arch}#money-safety-sdkpay`),
  JOURNAL_IO: e(exit.invalid, `${arch}#money-safety-sdkpay`),
  JOURNAL_SCHEMA: e(exit.invalid, `${arch}#money-safety-sdkpay`),
  CLI_USAGE: e(exit.invalid, `${cli}#flags`),
  CLI_BACKEND_NOT_DURABLE: e(exit.invalid, `${cli}#backend-and-passphrase`),
  CLI_JOURNAL_NOT_DURABLE: e(exit.invalid, `${cli}#backend-and-passphrase`),
  CLI_SANDBOX_NOT_INSTALLED: e(exit.invalid, `${cli}#exit-codes`),
  CLI_CONFIRMATION_REQUIRED: e(exit.invalid, `${cli}#exit-codes`),
  CLI_ABORTED: e(exit.invalid, `${cli}#exit-codes`),
  CLI_STACK_NOT_FOUND: e(exit.invalid, `${cli}#exit-codes`),
  CLI_PLAN_INVALID: e(exit.invalid, `${cli}#saved-plans`),
  CLI_STATE_DAMAGED: e(exit.invalid, `${cli}#interrupted-and-concurrent-runs`),
  CLI_POLICY_PACK_NOT_FOUND: e(exit.invalid, `${cli}#exit-codes`),
  MCP_TOOL_DISABLED: e(exit.invalid, `${cli}#the-mcp-server`),
  MCP_ARGUMENT_REFUSED: e(exit.invalid, `${cli}#the-mcp-server`),
  MCP_PATH_OUTSIDE_ROOT: e(exit.invalid, `${cli}#the-mcp-server`),
  MCP_STACK_CONFIG_REFUSED: e(exit.invalid, `${cli}#the-mcp-server`),

  // 3: refused by the spend policy before anything was signed or sent.
  POLICY_MAX_PAYMENT: e(exit.policy, `${arch}#money-safety-sdkpay`),
  POLICY_MAX_SPEND: e(exit.policy, `${arch}#money-safety-sdkpay`),
  POLICY_NETWORK: e(exit.policy, `${arch}#money-safety-sdkpay`),
  POLICY_ASSET: e(exit.policy, `${arch}#money-safety-sdkpay`),
  POLICY_RECIPIENT: e(exit.policy, `${arch}#money-safety-sdkpay`),
  POLICY_EXPIRY: e(exit.policy, `${arch}#money-safety-sdkpay`),
  POLICY_CHALLENGE: e(exit.policy, `${arch}#money-safety-sdkpay`),
  POLICY_BUDGET_RUN: e(exit.policy, `${arch}#money-safety-sdkpay`),
  POLICY_BUDGET_WINDOW: e(exit.policy, `${arch}#money-safety-sdkpay`),
  POLICY_PACK_VIOLATION: e(exit.policy, `${cli}#exit-codes`),
  POLICY_ACTION_NOT_ALLOWED: e(exit.policy, `${arch}#how-the-provider-reconciles`),
  PAYMENT_CREDENTIAL_MISMATCH: e(exit.policy, `${arch}#money-safety-sdkpay`),

  // 4: the Run402 API or a payment failed.
  RUN402_API_ERROR: e(exit.run402, `${cli}#exit-codes`),
  RUN402_PRICE_LIST_UNAVAILABLE: e(exit.run402, `${cli}#commands`),
  HTTP_REQUEST_FAILED: e(exit.run402, `${arch}#common`),
  HTTP_REDIRECT: e(exit.run402, `${arch}#common`),
  HTTP_RESPONSE_TOO_LARGE: e(exit.run402, `${arch}#common`),
  HTTP_UPLOAD_URL_REFUSED: e(exit.run402, `${arch}#deploys-run402s-releasespec-snake_case-wire`),
  HTTP_UPLOAD_FAILED: e(exit.run402, `${arch}#deploys-run402s-releasespec-snake_case-wire`),
  TIMEOUT: e(exit.run402, `${arch}#common`),
  RESPONSE_INVALID: e(exit.run402, `${arch}#common`),
  DEPLOY_FAILED: e(exit.run402, `${arch}#deploys-run402s-releasespec-snake_case-wire`),
  DEPLOY_TIMEOUT: e(exit.run402, `${arch}#deploys-run402s-releasespec-snake_case-wire`),
  CONTENT_NOT_PROVIDED: e(exit.run402, `${arch}#deploys-run402s-releasespec-snake_case-wire`),
  CONTENT_CHANGED: e(exit.run402, `${arch}#deploys-run402s-releasespec-snake_case-wire`),
  RAIL_NOT_OFFERED: e(exit.run402, `${arch}#money-safety-sdkpay`),
  PAYMENT_REJECTED: e(exit.run402, `${arch}#money-safety-sdkpay`),
  PAYMENT_ALREADY_ATTEMPTED: e(exit.run402, `${arch}#money-safety-sdkpay`),
  PAYMENT_CREDENTIAL_FAILED: e(exit.run402, `${arch}#money-safety-sdkpay`),
  PAYMENT_OUTCOME_UNKNOWN: e(exit.run402, `${arch}#money-safety-sdkpay`),
  PAYMENT_UNDELIVERED: e(exit.run402, `${arch}#money-safety-sdkpay`),
  PAYMENT_CHAIN_UNAVAILABLE: e(exit.run402, `${arch}#money-safety-sdkpay`),
  INTENT_ALREADY_PAID: e(exit.run402, `${arch}#money-safety-sdkpay`),

  // 5: the Pulumi engine failed or is missing.
  ENGINE_ERROR: e(exit.engine, `${cli}#exit-codes`),
  ENGINE_NOT_FOUND: e(exit.engine, `${cli}#where-things-live`),

  // 6: another run holds something, or the world changed since the plan; run again.
  CONFLICT_STACK_LOCKED: e(exit.conflict, `${cli}#interrupted-and-concurrent-runs`),
  CONFLICT_PLAN_CHANGED: e(exit.conflict, `${arch}#how-the-provider-reconciles`),
  CONFLICT_PLAN_STALE: e(exit.conflict, `${cli}#saved-plans`),
  CONFLICT_MANIFEST_CHANGED: e(exit.conflict, `${arch}#how-the-provider-reconciles`),
  CONFLICT_SANDBOX_IN_USE: e(exit.conflict, `${cli}#exit-codes`),
  JOURNAL_LOCKED: e(exit.conflict, `${arch}#money-safety-sdkpay`),
  JOURNAL_LOCK_LOST: e(exit.conflict, `${arch}#money-safety-sdkpay`),
  JOURNAL_UNAVAILABLE: e(exit.conflict, `${arch}#money-safety-sdkpay`),
  INTENT_IN_PROGRESS: e(exit.conflict, `${arch}#money-safety-sdkpay`),

  // 130: stopped by a signal.
  ENGINE_CANCELLED: e(exit.interrupted, `${cli}#interrupted-and-concurrent-runs`),
  RUN_CANCELLED: e(exit.interrupted, `${cli}#interrupted-and-concurrent-runs`),
} as const satisfies Record<string, CodeEntry>;

/** A code of the registry. */
export type RegisteredCode = keyof typeof errorCodes;

declare const apiCodeBrand: unique symbol;
/** A code Run402's API sent, relayed as received (not registered; made by {@link apiCode}). */
export type ApiCode = string & { readonly [apiCodeBrand]: true };

/** Marks a code as Run402's own (an error envelope's `code`, `HTTP_<status>`, a deploy operation's code). */
export function apiCode(code: string): ApiCode {
  return code as ApiCode;
}

/** What `BaseError.code` holds: a registered code, or a code Run402's API sent. */
export type ErrorCode = RegisteredCode | ApiCode;

/** Whether `code` is in the registry. */
export function isRegistered(code: unknown): code is RegisteredCode {
  return typeof code === "string" && Object.hasOwn(errorCodes, code);
}

/** The exit code of a registered code; any other code is the engine's (5), as docs/cli.md says. */
export function exitCodeFor(code: string): ExitCodeValue {
  return isRegistered(code) ? errorCodes[code].exit : exit.engine;
}
