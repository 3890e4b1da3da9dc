/** Command-line parsing for run402-pulumi (node:util parseArgs; strict: unknown input is an error). */
import { parseArgs } from "node:util";
import { configKeys as providerConfigKeys } from "../provider/settings.js";

/** The commands. */
export const commands = [
  "validate",
  "plan",
  "apply",
  "status",
  "renew",
  "refresh",
  "destroy",
  "reconcile",
  "forecast",
  "mcp",
  "engine",
] as const;
/** One of {@link commands}. */
export type Command = (typeof commands)[number];

/** Parsed command line. */
export interface CliOptions {
  command: Command;
  /** Manifest path as given, or a folder to find one in (run402.json, run402.deploy.json, app.json, app.yaml). @default "." */
  manifest: string;
  /** @default "dev" */
  stack: string;
  rail: "x402" | "mpp" | undefined;
  /** A Pulumi backend URL; none means a file backend under the manifest's folder. */
  backend: string | undefined;
  /** `--allow-file-backend`: a file backend is used even when CI is set (see {@link usage}). */
  allowFileBackend: boolean;
  /** `--allow-local-journal`: a payment journal on this machine is used even when CI is set. */
  allowLocalJournal: boolean;
  sandbox: boolean;
  json: boolean;
  yes: boolean;
  /** `--max-spend` as a USD decimal string. */
  maxSpendUsd: string | undefined;
  /** `--every` in milliseconds. @default 1 hour */
  everyMs: number;
  /** `--config run402:key=value` pairs, keyed by the full `run402:` name (for this run only). */
  config: Record<string, string>;
  /** `plan --save <file>`: where to write the plan document. */
  save: string | undefined;
  /** `apply --plan <file>`: the saved plan this run must match. */
  plan: string | undefined;
  /** `mcp --allow-apply`: the MCP tools that change the stack and pay (apply, renew) are on. */
  allowApply: boolean;
  /** `mcp --allow-destroy`: the MCP destroy tool is on. */
  allowDestroy: boolean;
  /**
   * A USD cap this run may only lower the operator's cap to (never set from the command line: the
   * MCP server sets it from a tool's `maxSpendUsd`).
   */
  spendCeilingUsd?: string | undefined;
  /** `--policy-pack <dir>` (repeatable): CrossGuard packs the engine runs on this run's preview and update. */
  policyPacks: string[];
  /** `--policy-pack-config <file>` (repeatable): their config, one file per pack, in the same order. */
  policyPackConfigs: string[];
  /** `forecast --days`, `plan --days`: the forecast's horizon in days. @default 30 */
  days: number;
  /** `--files`: the JSON report keeps every site file and change (bounded otherwise; see cli/report.ts). */
  files: boolean;
}

/** The outcome of parsing: options, a request for help, or a usage error. */
export type ParseResult =
  | { kind: "run"; options: CliOptions }
  | { kind: "help"; text: string }
  | { kind: "error"; message: string; json: boolean };

/** Usage text, printed for --help and after a usage error. */
export const usage = `Usage: run402-pulumi <command> [flags]

Commands:
  validate    check the manifest against the schema (no network)
  plan        preview: the actions convergence needs and what each costs (pays nothing)
  apply       converge the stack (pays what the plan showed, within the caps)
  status      outputs, lease expiry and last settlements (no network)
  renew       pay only the lease renewals that are due (any other planned payment: refused, exit 3)
  refresh     read the stack back from Run402; clears pending operations of an interrupted run
  destroy     delete the stack's resources
  reconcile   loop: refresh + apply every --every (renews leases, repairs drift) until SIGINT/SIGTERM
  forecast    every lease renewal the stack will pay within --days, per rail (pays nothing, writes nothing)
  mcp         serve the commands as MCP tools over stdio, for agents (see docs/cli.md)
  engine      install the Pulumi engine once (a pulumi 3.x on PATH, else a cached build) and print where it is

Flags:
  -m, --manifest <path>    manifest file, or a folder holding run402.json, run402.deploy.json or app.json (default: .)
  -s, --stack <name>       stack name (default: dev)
      --rail x402|mpp      payment rail (run402:rail)
      --backend <url>      Pulumi backend (default: file://<manifest dir>/.run402/state)
      --allow-file-backend use a file backend although CI is set (refused otherwise: exit 2)
      --allow-local-journal use a payment journal on this machine although CI is set [apply, renew, reconcile]
      --sandbox            start the embedded local Run402 sandbox and use it
  -c, --config <k=v>       a run402:* config key for this run only (repeatable; not the private key)
      --max-spend <usd>    cap on what this run may pay (run402:maxSpendUsd) [apply, renew, reconcile, mcp]
      --save <file>        write the plan document (steps, payments, fingerprint) [plan]
      --plan <file>        apply exactly this saved plan, or nothing (exit 6)    [apply]
      --policy-pack <dir>  run a CrossGuard policy pack (e.g. @pulumi-run402/policy) [plan, apply, renew, reconcile]
      --policy-pack-config <file>  its config (enforcement levels, limits), one per pack
      --allow-apply        the apply and renew tools may change and pay (needs -c run402:allowedRecipients) [mcp]
      --allow-destroy      the destroy tool may delete                           [mcp]
  -y, --yes                do not ask for confirmation                        [apply, destroy]
      --every <duration>   interval such as 30s, 15m, 1h, 1d (default: 1h)   [reconcile]
      --days <n>           forecast horizon in days (default: 30)            [forecast, plan]
      --json               one JSON document on stdout; progress on stderr
      --files              with --json: every site file (sha256) and changed name, not counts and the first 100
  -h, --help               this text

Flags apply to the run they are given to; the stack's config is changed only with \`pulumi config\`.
mcp: -m is the folder served; -s, --rail, --backend, --sandbox, -c and --max-spend apply to every tool call
(an agent can only narrow them).
Exit codes: 0 ok, 2 invalid manifest/config/flags, 3 refused by the spend policy, 4 Run402 error,
5 engine error, 6 another run holds the stack (or the plan changed): run again, 130 interrupted.
The wallet key comes from RUN402_PRIVATE_KEY or the secret config run402:privateKey.
Reference: node_modules/pulumi-run402/docs/cli.md (docs/cli.md in the package).
`;

const common = [
  "manifest",
  "stack",
  "rail",
  "backend",
  "allow-file-backend",
  "allow-local-journal",
  "sandbox",
  "config",
  "json",
  "help",
] as const;
const allowed: Record<Command, readonly string[]> = {
  // --sandbox is accepted and changes nothing (validate never contacts a server), as the MCP tool does.
  validate: ["manifest", "sandbox", "json", "help"],
  plan: [...common, "files", "save", "policy-pack", "policy-pack-config", "days"],
  apply: [...common, "files", "yes", "max-spend", "plan", "policy-pack", "policy-pack-config"],
  status: ["manifest", "stack", "backend", "sandbox", "json", "files", "help"],
  renew: [...common, "files", "max-spend", "policy-pack", "policy-pack-config"],
  refresh: [...common, "files"],
  destroy: [...common, "yes"],
  reconcile: [...common, "files", "max-spend", "every", "policy-pack", "policy-pack-config"],
  // The operator's common flags (what the MCP server passes every tool), and the horizon.
  forecast: [...common, "days"],
  // The operator's choices for every tool call: the agent can narrow them, never widen them.
  mcp: [...common, "max-spend", "allow-apply", "allow-destroy"],
  engine: ["help"],
};

/** Provider keys `-c` may set: all of them but the wallet key, which must not sit in shell history. */
const configKeys: readonly string[] = providerConfigKeys.filter((key) => key !== "privateKey");

/** Parses a duration such as `90s`, `15m`, `1h`, `1d` or `500ms` into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    match[2] as "ms" | "s" | "m" | "h" | "d"
  ];
  const ms = Number(match[1]) * unit;
  return ms > 0 && Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/** Parses argv (without node and the script). Never throws. */
export function parseCli(argv: readonly string[]): ParseResult {
  const json = argv.includes("--json");
  const fail = (message: string): ParseResult => ({ kind: "error", message, json });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (error) {
    // Node's text for an unknown option runs to three sentences about positionals: one is enough.
    const unknown = /^Unknown option '([^']+)'/.exec(error instanceof Error ? error.message : "");
    if (unknown) return fail(`Unknown flag ${unknown[1]}.`);
    return fail(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  if (values.help && positionals.length === 0) return { kind: "help", text: usage };
  const [name, ...extra] = positionals;
  if (name === undefined) return values.help ? { kind: "help", text: usage } : fail("Missing command.");
  if (name === "help") return { kind: "help", text: usage };
  if (!(commands as readonly string[]).includes(name)) return fail(`Unknown command "${name}".`);
  const command = name as Command;
  if (values.help) return { kind: "help", text: usage };
  if (extra.length > 0) return fail(`Unexpected argument "${extra[0]}".`);
  for (const [key, value] of Object.entries(values)) {
    if (value !== undefined && !allowed[command].includes(key)) {
      return fail(`The flag --${key} does not apply to "${command}".`);
    }
  }
  const rail = values.rail;
  if (rail !== undefined && rail !== "x402" && rail !== "mpp")
    return fail(`--rail must be x402 or mpp, got "${rail}".`);
  const maxSpend = values["max-spend"];
  if (maxSpend !== undefined && !/^\d+(\.\d+)?$/.test(maxSpend)) {
    return fail(`--max-spend must be a USD amount such as 5 or 0.10, got "${maxSpend}".`);
  }
  let everyMs = 3_600_000;
  if (values.every !== undefined) {
    const ms = parseDuration(values.every);
    if (ms === undefined)
      return fail(`--every must be a duration such as 30s, 15m, 1h or 1d, got "${values.every}".`);
    everyMs = ms;
  }
  let days = 30;
  if (values.days !== undefined) {
    days = Number(values.days);
    if (!/^\d+$/.test(values.days) || days < 1 || days > 3650)
      return fail(`--days must be a whole number of days from 1 to 3650, got "${values.days}".`);
  }
  const stack = values.stack ?? "dev";
  if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+){0,2}$/.test(stack))
    return fail(`--stack "${stack}" is not a stack name.`);
  if (values.manifest === "") return fail("--manifest needs a path.");
  if (values.save === "") return fail("--save needs a file.");
  if (values.plan === "") return fail("--plan needs a file.");
  if (values.backend === "")
    return fail("--backend needs a backend URL such as s3://bucket/run402 (an empty variable?).");
  const policyPacks = values["policy-pack"] ?? [];
  const policyPackConfigs = values["policy-pack-config"] ?? [];
  if ([...policyPacks, ...policyPackConfigs].some((p) => p === ""))
    return fail("--policy-pack and --policy-pack-config need a path.");
  if (policyPackConfigs.length > 0 && policyPackConfigs.length !== policyPacks.length) {
    return fail(
      `--policy-pack-config: give one config file per --policy-pack, in the same order (${policyPacks.length} pack(s), ${policyPackConfigs.length} config(s)).`,
    );
  }
  const config: Record<string, string> = {};
  for (const pair of values.config ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) return fail(`--config expects run402:key=value, got "${pair}".`);
    const key = pair.slice(0, eq).replace(/^run402:/, "");
    if (key === "privateKey") {
      return fail(
        "Do not pass the private key on the command line: set RUN402_PRIVATE_KEY or `pulumi config set --secret run402:privateKey`.",
      );
    }
    if (!configKeys.includes(key))
      return fail(`--config: unknown key "run402:${key}" (known: ${configKeys.join(", ")}).`);
    config[`run402:${key}`] = pair.slice(eq + 1);
  }
  return {
    kind: "run",
    options: {
      command,
      manifest: values.manifest ?? ".",
      stack,
      rail,
      backend: values.backend,
      allowFileBackend: values["allow-file-backend"] ?? false,
      allowLocalJournal: values["allow-local-journal"] ?? false,
      sandbox: values.sandbox ?? false,
      json: values.json ?? false,
      yes: values.yes ?? false,
      maxSpendUsd: maxSpend,
      everyMs,
      config,
      save: values.save,
      plan: values.plan,
      allowApply: values["allow-apply"] ?? false,
      allowDestroy: values["allow-destroy"] ?? false,
      policyPacks,
      policyPackConfigs,
      days,
      files: values.files ?? false,
    },
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: true,
    options: {
      manifest: { type: "string", short: "m" },
      stack: { type: "string", short: "s" },
      rail: { type: "string" },
      backend: { type: "string" },
      "allow-file-backend": { type: "boolean" },
      "allow-local-journal": { type: "boolean" },
      sandbox: { type: "boolean" },
      config: { type: "string", short: "c", multiple: true },
      "max-spend": { type: "string" },
      yes: { type: "boolean", short: "y" },
      every: { type: "string" },
      days: { type: "string" },
      save: { type: "string" },
      plan: { type: "string" },
      "allow-apply": { type: "boolean" },
      "allow-destroy": { type: "boolean" },
      "policy-pack": { type: "string", multiple: true },
      "policy-pack-config": { type: "string", multiple: true },
      json: { type: "boolean" },
      files: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
}
