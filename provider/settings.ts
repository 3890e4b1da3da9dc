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

/** The config keys whose value is a secret (set with `--secret`). */
const secretKeys: ReadonlySet<ConfigKey> = new Set(["privateKey", "journal"]);

/**
 * How a user sets `key`, in the words they type: `pulumi config set run402:<key> <value>` for a
 * Pulumi program's stack, `-c run402:<key>=<value>` for a run402-pulumi command. The wallet key is
 * never a flag: the stack config (secret) or the environment variable RUN402_PRIVATE_KEY.
 */
export function howToSet(key: ConfigKey, value = "<value>"): string {
  if (key === "privateKey")
    return "`pulumi config set --secret run402:privateKey <0x…key>`, or the environment variable RUN402_PRIVATE_KEY (run402-pulumi and CI)";
  const secret = secretKeys.has(key) ? "--secret " : "";
  return `\`pulumi config set ${secret}run402:${key} ${value}\` (run402-pulumi: \`-c run402:${key}=${value}\`)`;
}

/** The setting that decides each spend-policy refusal (by the refusal's code). */
const policySettings: Readonly<Record<string, ConfigKey>> = {
  POLICY_MAX_PAYMENT: "maxPaymentUsd",
  POLICY_MAX_SPEND: "maxSpendUsd",
  POLICY_BUDGET_RUN: "maxSpendUsd",
  POLICY_BUDGET_WINDOW: "budgetUsd",
  POLICY_ACTION_NOT_ALLOWED: "allowedActions",
  POLICY_NETWORK: "allowedNetworks",
  POLICY_RECIPIENT: "allowedRecipients",
};

/** The config key that decides a refusal with this code, if one does. */
export function settingOf(code: string): ConfigKey | undefined {
  return Object.hasOwn(policySettings, code) ? policySettings[code] : undefined;
}
