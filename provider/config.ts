/**
 * Stack configuration for the Run402 provider: the `run402:*` keys, validated with zod.
 * Read in the provider's `configure` (never captured in the serialized closure), so secrets such
 * as `run402:privateKey` reach the provider process decrypted and never enter `__provider`.
 *
 * Settings for one run only (the CLI's `--max-spend`, `--rail`, `-c`, the embedded sandbox's
 * endpoints, the actions a `renew` may pay) come through the environment variable
 * {@link runSettingsEnv}, never through the stack config: the engine records the stack config in
 * state and hands that old copy to `destroy`, and a flag must not outlive its run.
 */
import { z } from "zod";
import { BaseError } from "../core/errors.js";
import { onLoopback } from "../sdk/internal/loopback.js";
import {
  type ConfigKey,
  configKeys,
  howToSet,
  type PaidAction,
  paidActions,
  type RunSettings,
  rpcSetting,
  runSettingsEnv,
} from "./settings.js";

export {
  type ConfigKey,
  configKeys,
  type PaidAction,
  paidActions,
  type RunSettings,
  runSettingsEnv,
} from "./settings.js";

const usd = (key: string, fallback: number) =>
  z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === "") return fallback;
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0 || !/^\d+(\.\d+)?$/.test(value.trim())) {
        ctx.addIssue({
          code: "custom",
          message: `run402:${key} must be a USD amount such as "5" or "0.10", got "${value}"`,
        });
        return z.NEVER;
      }
      return n;
    });

const url = (key: string) =>
  z
    .string()
    .optional()
    .refine((value) => value === undefined || /^https?:\/\/[^\s]+$/.test(value), {
      message: `run402:${key} must be an http(s) URL`,
    });

const rail = (key: string) =>
  z
    .string()
    .optional()
    .refine((value) => value === undefined || value === "x402" || value === "mpp", {
      message: `run402:${key} must be "x402" or "mpp"`,
    })
    .transform((value) => value as "x402" | "mpp" | undefined);

const schema = z.object({
  apiBase: url("apiBase").transform((value) => (value ?? "https://api.run402.com").replace(/\/+$/, "")),
  rail: rail("rail"),
  fallbackRail: rail("fallbackRail"),
  privateKey: z
    .string()
    .optional()
    .refine((value) => value === undefined || /^0x[0-9a-fA-F]{64}$/.test(value), {
      // Never echo the value: it is a key.
      message: "run402:privateKey must be a 0x-prefixed 32-byte hex private key (set it with --secret)",
    }),
  maxPaymentUsd: usd("maxPaymentUsd", 5),
  maxSpendUsd: usd("maxSpendUsd", 25),
  renewBeforeDays: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === "") return 2;
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0 || n > 365) {
        ctx.addIssue({
          code: "custom",
          message: `run402:renewBeforeDays must be a number of days from 0 to 365, got "${value}"`,
        });
        return z.NEVER;
      }
      return n;
    }),
  baseRpcUrl: url("baseRpcUrl"),
  tempoRpcUrl: url("tempoRpcUrl"),
  allowedRecipients: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value === "") return undefined;
      const list = value.split(",").map((s) => s.trim());
      for (const address of list) {
        if (!/^0x[0-9a-fA-F]{40}$/.test(address)) {
          ctx.addIssue({
            code: "custom",
            message: `run402:allowedRecipients holds "${address}", which is not an address`,
          });
          return z.NEVER;
        }
      }
      return list;
    }),
  allowedNetworks: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return undefined;
      const list = value.split(",").map((s) => s.trim());
      for (const network of list) {
        if (!/^(eip155:)?[1-9]\d*$/.test(network)) {
          ctx.addIssue({
            code: "custom",
            message: `run402:allowedNetworks holds "${network}", which is not a chain such as "eip155:8453" or "8453"`,
          });
          return z.NEVER;
        }
      }
      return list.map((n) => (n.startsWith("eip155:") ? n : `eip155:${n}`));
    }),
  uploadOrigins: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return undefined;
      const list = value.split(",").map((s) => s.trim());
      for (const origin of list) {
        let parsed: URL | null = null;
        try {
          parsed = new URL(origin);
        } catch {
          // reported below
        }
        if (
          !parsed ||
          (parsed.protocol !== "https:" && parsed.protocol !== "http:") ||
          parsed.origin !== origin.replace(/\/$/, "")
        ) {
          ctx.addIssue({
            code: "custom",
            message: `run402:uploadOrigins holds "${origin}", which is not an origin such as "https://uploads.example.com" (scheme, host and port only)`,
          });
          return z.NEVER;
        }
      }
      return list.map((o) => new URL(o).origin);
    }),
  journalPath: z.string().optional(),
  // Never echoed: the URL may hold the database's password.
  journal: z
    .string()
    .optional()
    .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()))
    .refine((value) => value === undefined || /^postgres(ql)?:\/\/[^\s]+$/i.test(value), {
      message:
        'run402:journal must be a PostgreSQL URL such as "postgres://user@db.example.com:5432/run402?sslmode=require" (a file journal is run402:journalPath)',
    }),
  budgetUsd: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return undefined;
      if (!/^\d+(\.\d+)?$/.test(value.trim())) {
        ctx.addIssue({
          code: "custom",
          message: `run402:budgetUsd must be a USD amount such as "20" or "0.50", got "${value}"`,
        });
        return z.NEVER;
      }
      return Number(value);
    }),
  budgetPeriod: z
    .string()
    .optional()
    .transform((value, ctx) => {
      const text = (value ?? "").trim() || "day";
      const named: Record<string, number> = { hour: 3600, day: 86_400, week: 604_800 };
      if (named[text] !== undefined) return named[text];
      const m = /^(\d+)(h|d)$/.exec(text);
      const seconds = m ? Number(m[1]) * (m[2] === "h" ? 3600 : 86_400) : 0;
      if (!m || seconds <= 0 || seconds > 366 * 86_400) {
        ctx.addIssue({
          code: "custom",
          message: `run402:budgetPeriod must be "hour", "day", "week", or a number of hours or days such as "12h" or "30d" (at most 366 days), got "${value}"`,
        });
        return z.NEVER;
      }
      return seconds;
    }),
  allowedActions: z
    .string()
    .optional()
    .transform((value, ctx) => {
      if (value === undefined || value.trim() === "") return [...paidActions];
      const list = value.split(",").map((s) => s.trim());
      for (const action of list) {
        if (!(paidActions as readonly string[]).includes(action)) {
          ctx.addIssue({
            code: "custom",
            message: `run402:allowedActions holds "${action}"; allowed are ${paidActions.join(", ")}`,
          });
          return z.NEVER;
        }
      }
      return list as PaidAction[];
    }),
  stackId: z.string().optional(),
  runId: z.string().optional(),
});

/** Validated provider settings. */
export type ProviderConfig = z.output<typeof schema>;

/** A configuration problem, naming the config key. */
export class ConfigError extends BaseError {
  override name = "ConfigError";
  readonly issues: { key: string; message: string }[];
  constructor(issues: { key: string; message: string }[]) {
    super(`Invalid stack configuration: ${issues.map((i) => i.message).join("; ")}.`, {
      code: "CONFIG_INVALID",
      metaMessages: [
        ...issues.map((i) => `${i.key}: ${i.message}`),
        ...issues
          .map((i) => i.key.replace(/^run402:/, ""))
          .flatMap((key) =>
            (configKeys as readonly string[]).includes(key)
              ? [`Fix it with ${howToSet(key as ConfigKey)}.`]
              : [],
          ),
      ],
    });
    this.issues = issues;
  }
}

/** The run settings in `env` ({@link runSettingsEnv}); none when unset. */
export function runSettings(env: NodeJS.ProcessEnv = process.env): RunSettings {
  const text = env[runSettingsEnv];
  if (text === undefined || text === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const known = new Set<string>([...configKeys, "stackId", "runId", "spendCeilingUsd"]);
  if (
    parsed === null ||
    typeof parsed !== "object" ||
    Array.isArray(parsed) ||
    Object.entries(parsed).some(([key, value]) => !known.has(key) || typeof value !== "string")
  ) {
    // Never echo it: it may hold a key.
    throw new ConfigError([
      {
        key: runSettingsEnv,
        message: `${runSettingsEnv} must be a JSON object of run402 config keys (${[...known].join(", ")}) to strings`,
      },
    ]);
  }
  return parsed as RunSettings;
}

/**
 * Reads and validates `run402:*` keys through a getter such as `pulumi.dynamic.Config.get`; this
 * run's settings ({@link runSettingsEnv}) take precedence.
 */
export function readConfig(
  get: (key: string) => string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): ProviderConfig {
  const run = runSettings(env);
  const raw: Record<string, string | undefined> = { stackId: run.stackId, runId: run.runId };
  for (const key of configKeys) raw[key] = run[key] ?? get(`run402:${key}`) ?? undefined;
  const parsed = schema.safeParse(raw);
  const ceiling = run.spendCeilingUsd;
  if (parsed.success && ceiling !== undefined) {
    // Only ever lowers the cap; a ceiling that is not an amount stops the run.
    if (!/^\d+(\.\d+)?$/.test(ceiling.trim())) {
      throw new ConfigError([
        { key: "maxSpendUsd", message: `the run's spend ceiling "${ceiling}" is not a USD amount` },
      ]);
    }
    parsed.data.maxSpendUsd = Math.min(parsed.data.maxSpendUsd, Number(ceiling));
  }
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => ({
        key: `run402:${String(issue.path[0])}`,
        message: issue.message,
      })),
    );
  }
  return parsed.data;
}

/**
 * Against an API on this machine (a sandbox), every rail the run may pay on (`rail`, the one it
 * resolved, and run402:fallbackRail) must name its RPC: the sandbox's chains are local, and with no
 * RPC set a rail would use its chain's public RPC, which cannot pay the sandbox. Checked when the
 * provider is configured, so `pulumi preview` fails, naming the key, before anything is asked or paid.
 */
export function checkLocalRpcs(config: ProviderConfig, rail: "x402" | "mpp"): void {
  if (!onLoopback(config.apiBase)) return;
  const rails = [...new Set([rail, ...(config.fallbackRail ? [config.fallbackRail] : [])])];
  const chain = { x402: "Base", mpp: "Tempo" } as const;
  const issues = rails
    .filter((r) => !config[rpcSetting[r]])
    .map((r) => ({
      key: `run402:${rpcSetting[r]}`,
      message: `run402:${rpcSetting[r]} is not set, and run402:apiBase (${config.apiBase}) is on this machine (a sandbox): its ${r} rail pays on the sandbox's own ${chain[r]} chain, which no public RPC serves. Set it to the sandbox's RPC (\`npx run402-sandbox --pulumi-config\` prints every setting)`,
    }));
  if (issues.length > 0) throw new ConfigError(issues);
}
