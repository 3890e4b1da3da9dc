/**
 * The names of the provider's settings: the `run402:*` config keys and the per-run environment
 * variable. Apart from provider/config.ts, which validates the values (with zod), so that what only
 * needs the names (the CLI, on every command) does not load the validation library.
 */

/** The config keys this provider reads, without the `run402:` namespace. */
export const configKeys = [
  "apiBase",
  "rail",
  "fallbackRail",
  "privateKey",
  "maxPaymentUsd",
  "maxSpendUsd",
  "renewBeforeDays",
  "baseRpcUrl",
  "tempoRpcUrl",
  "allowedRecipients",
  "allowedNetworks",
  "uploadOrigins",
  "journalPath",
  "journal",
  "budgetUsd",
  "budgetPeriod",
  "allowedActions",
] as const;

/** One of {@link configKeys}. */
export type ConfigKey = (typeof configKeys)[number];

/** The config key naming each rail's RPC. */
export const rpcSetting = { x402: "baseRpcUrl", mpp: "tempoRpcUrl" } as const satisfies Record<
  "x402" | "mpp",
  ConfigKey
>;

/** The paid tier actions. */
export const paidActions = ["subscribe", "renew", "upgrade", "downgrade"] as const;
/** One of {@link paidActions}. */
export type PaidAction = (typeof paidActions)[number];

/**
 * The environment variable holding this run's settings: a JSON object of config keys (without
 * `run402:`) to string values, plus `stackId`, the identity of the stack instance (see
 * {@link ProviderConfig}). They take precedence over the stack config for this run only.
 */
export const runSettingsEnv = "RUN402_RUN_SETTINGS";

/**
 * What {@link runSettingsEnv} holds. `runId` names the run whose claims the journal sums against
 * `run402:maxSpendUsd` (one CLI command; one `reconcile` for its whole life). `spendCeilingUsd` only
 * lowers the run's cap (the MCP tools' `maxSpendUsd`: an agent may narrow the operator's cap, never
 * raise it).
 */
export type RunSettings = Partial<Record<ConfigKey | "stackId" | "runId" | "spendCeilingUsd", string>>;
