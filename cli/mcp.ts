/**
 * `run402-pulumi mcp`: the CLI's commands as MCP tools over stdio, for agents. Each tool call is
 * the command line an agent would type, parsed by the CLI's own parser and run by its own
 * `runCommand`, so results are the `--json` document (docs/cli.md) with the same error codes and
 * JSON pointers. `apply` applies only a plan made by this server's `plan` tool (by its id) or a
 * saved plan file: never an unplanned change. Tools that pay (apply, renew) or delete (destroy)
 * are off unless the server was started with `--allow-apply` / `--allow-destroy`.
 *
 * The operator decides the money: the API, the caps, the networks, recipients, RPCs, journal, upload
 * origins, the stack, backend, sandbox and rail come from the flags `mcp` was started with (and the
 * stack's config and the environment), never from a tool call. A tool takes only narrowing
 * arguments (a manifest inside the served folder, a lower cap); any other argument is refused
 * (MCP_ARGUMENT_REFUSED) before a command runs, so before any request is made.
 *
 * stdout is the protocol channel: only the transport writes there (main.ts points every other
 * write at stderr before anything runs, and the engine and the sandbox's chains run on pipes).
 */

import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, isAbsolute, join, relative, resolve } from "node:path";
import { Writable } from "node:stream";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { RegisteredCode } from "../core/codes.js";
import { MANIFEST_NAMES } from "../provider/manifest/load.js";
import { appSchema, releaseSchema } from "../schema/validate.js";
import { type CliOptions, parseCli } from "./args.js";
import { packageRoot, workspacePaths } from "./engine/index.js";
import { readPlan } from "./plan.js";
import { bounded, emptyReport, ordered, type Report } from "./report.js";
import { type Io, runCommand } from "./run.js";

/** How the server is started. */
export interface McpOptions {
  /** The apply and renew tools (they change the stack and pay) are on. */
  allowApply: boolean;
  /** The destroy tool is on. */
  allowDestroy: boolean;
  /** Writes protocol bytes to the real stdout. */
  writeStdout: (chunk: string | Uint8Array, done: (error?: Error | null) => void) => void;
  /** One line for humans (stderr). */
  log: (line: string) => void;
  /** Resolves when the server should stop (SIGINT/SIGTERM); stdin's end stops it too. */
  stopping: Promise<void>;
  /**
   * The operator's flags from `run402-pulumi mcp …` (stack, backend, sandbox, rail, `-c` settings,
   * `--max-spend`, and `--manifest`: the folder served), applied to every tool call. @default none
   */
  operator?: Partial<CliOptions> | undefined;
}

/** Why the server refuses to start, or null. */
export function startRefusal(options: Pick<McpOptions, "allowApply" | "operator">): string | null {
  const operator = options.operator ?? {};
  if (options.allowApply && !operator.sandbox && !operator.config?.["run402:allowedRecipients"]) {
    return "mcp --allow-apply lets an agent pay: name who may be paid first, with `-c run402:allowedRecipients=0x…` (the Run402 treasury's address; --sandbox names the sandbox's own). Without it the first recipient a server names would be trusted.";
  }
  return null;
}

/** The operator's flags as command-line arguments for each tool call. */
function operatorLine(operator: Partial<CliOptions>): string[] {
  const line: string[] = [];
  if (operator.stack !== undefined && operator.stack !== "dev") line.push("--stack", operator.stack);
  if (operator.backend !== undefined) line.push("--backend", operator.backend);
  if (operator.allowFileBackend) line.push("--allow-file-backend");
  if (operator.sandbox) line.push("--sandbox");
  if (operator.rail !== undefined) line.push("--rail", operator.rail);
  for (const [key, value] of Object.entries(operator.config ?? {})) line.push("--config", `${key}=${value}`);
  return line;
}

/** Where relative paths in tool arguments start: the folder the server was started in. */
const startCwd = process.cwd();

/** Arguments a tool refuses, with who sets them instead. */
const operatorOnly: Record<string, string> = {
  config:
    "run402:* settings (API, caps, networks, recipients, RPCs, journal, upload origins, actions) are the operator's: they are set when the server starts (`run402-pulumi mcp -c run402:<key>=<value>`) or in the stack's config",
  backend: "the backend is the operator's: `run402-pulumi mcp --backend <url>`",
  sandbox: "the sandbox is the operator's choice: `run402-pulumi mcp --sandbox`",
  stack: "the stack is the operator's: `run402-pulumi mcp --stack <name>`",
  rail: "the payment rail is the operator's: `run402-pulumi mcp --rail x402|mpp` or run402:rail",
};

/** The schema resources: app.json's schema and Run402's ReleaseSpec schema it points into. */
const schemaResources = [
  {
    name: "app-manifest-schema",
    uri: "run402-pulumi://schema/app.schema.json",
    description:
      "JSON Schema (2020-12) of the app.json / app.yaml manifest that validate, plan and apply take. Its $refs point into release-spec.v1.schema.json.",
    read: appSchema,
  },
  {
    name: "release-spec-schema",
    uri: "run402-pulumi://schema/release-spec.v1.schema.json",
    description:
      "Run402's ReleaseSpec v1 JSON Schema (from @run402/release), which app.schema.json references.",
    read: releaseSchema,
  },
];

const target = {
  manifest: z
    .string()
    .optional()
    .describe(
      "The manifest (app.json, app.yaml, app.yml, run402.json, run402.deploy.json) or a folder holding one, inside the folder the server serves; relative to the server's working directory. Default: that directory.",
    ),
};
const maxSpend = {
  maxSpendUsd: z
    .string()
    .optional()
    .describe(
      'A lower cap on what this call may pay, in USD, e.g. "0.10". It only narrows the operator\'s cap (the lower of the two applies); it never raises it.',
    ),
};
/** Every site file and changed name in the result, instead of counts and the first 100 (`--files`). */
const filesArg = {
  files: z
    .boolean()
    .optional()
    .describe(
      "true: the result lists every site file with its sha256 (outputs.files) and every changed name. Default: a count of the files and at most 100 names per list of changes, so a large site's result stays small.",
    ),
};
/** `--files` when the call asks for every file. */
const filesFlag = (args: Record<string, unknown>) => (args["files"] === true ? ["--files"] : []);

/** Said in every tool that reaches Run402: what the agent may and may not set. */
const whoSetsWhat =
  " An agent may pass only the manifest (inside the served folder) and, where listed, a lower maxSpendUsd. The API, caps, networks, recipients, RPCs, journal, upload origins, stack, backend, sandbox and rail are the operator's (the flags the server was started with and the stack's config): passing them is refused with MCP_ARGUMENT_REFUSED and nothing is sent.";

/** A tool's input: its own fields, and any other key kept so that it can be refused by name. */
const input = <T extends z.ZodRawShape>(shape: T) => z.object(shape).loose();

/** The `--json` document (docs/cli.md); structuredContent of every tool. */
const reportSchema = z
  .object({
    ok: z.boolean(),
    command: z.string(),
    stack: z.string(),
    resources: z.array(z.object({ type: z.string(), name: z.string(), op: z.string() }).loose()),
    actions: z.array(
      z
        .object({
          resource: z.string(),
          action: z.string(),
          amountUsd: z.string(),
          rail: z.string().nullable(),
          reason: z.string(),
        })
        .loose(),
    ),
    payments: z.array(
      z.object({ rail: z.string(), reference: z.string().nullable(), amountUsd: z.string() }).loose(),
    ),
    totalPaidUsd: z.string(),
    totalPlannedUsd: z.string().optional(),
    plannedByRail: z.record(z.string(), z.string()).optional(),
    outputs: z.record(z.string(), z.unknown()).optional(),
    savedPlan: z
      .object({ id: z.string(), fingerprint: z.string(), file: z.string(), totalUsd: z.string() })
      .loose()
      .optional(),
    errors: z.array(
      z
        .object({
          code: z.string(),
          message: z.string(),
          pointer: z.string().optional(),
          file: z.string().optional(),
        })
        .loose(),
    ),
  })
  .loose();

/** A path inside one of `roots` (symlinks resolved), or the refusal. */
export function servedPath(
  roots: readonly string[],
  given: string,
  what: "manifest" | "plan file",
): { path: string } | { refused: string } {
  const path = resolve(startCwd, given);
  // The real path of the nearest existing ancestor: a symlink inside cannot lead outside.
  let existing = path;
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  let real: string;
  try {
    real = join(realpathSync(existing), relative(existing, path));
  } catch {
    return { refused: `The ${what} path cannot be read.` };
  }
  const inside = roots.some((root) => {
    const rel = relative(root, real);
    return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
  });
  if (!inside) {
    return {
      refused: `The ${what} must be inside the folder this server serves (${roots.join(", ")}); it is not. Start the server in (or with --manifest) the folder to serve.`,
    };
  }
  if (what === "manifest" && existsSync(real) && statSync(real).isFile()) {
    if (!MANIFEST_NAMES.includes(basename(real))) {
      return {
        refused: `The manifest must be a file named ${MANIFEST_NAMES.join(", ")} (or a folder holding one); other files are not read.`,
      };
    }
  }
  return { path: real };
}

function result(report: Report): CallToolResult {
  const doc = ordered(report);
  return {
    content: [{ type: "text", text: JSON.stringify(doc, null, 2) }],
    structuredContent: doc as unknown as Record<string, unknown>,
    isError: !report.ok,
  };
}

function refused(command: string, code: RegisteredCode, message: string): CallToolResult {
  const report = emptyReport(command, "");
  report.ok = false;
  report.errors.push({ code, message });
  return result(report);
}

type Extra = {
  signal: AbortSignal;
  _meta?: { progressToken?: string | number } | undefined;
  sendNotification: (notification: {
    method: "notifications/progress";
    params: { progressToken: string | number; progress: number; message?: string };
  }) => Promise<void>;
};

/**
 * The signal, except that an "abort" listener added after the abort is called at once. The
 * Automation API listens for "abort" only once the engine's process has started, and a call
 * cancelled before that (while the inline program's host starts) would otherwise run to its end.
 */
export function sticky(signal: AbortSignal): AbortSignal {
  return new Proxy(signal, {
    get(target, property) {
      if (property === "addEventListener") {
        return (...args: Parameters<AbortSignal["addEventListener"]>) => {
          const [type, listener] = args;
          if (type !== "abort" || !target.aborted || !listener) return target.addEventListener(...args);
          const event = new Event("abort");
          queueMicrotask(() =>
            typeof listener === "function" ? listener.call(target, event) : listener.handleEvent(event),
          );
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Serves the tools on stdin/stdout until stdin ends. */
export async function serveMcp(options: McpOptions): Promise<void> {
  const version = (
    JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }
  ).version;
  const server = new McpServer(
    { name: "run402-pulumi", version },
    {
      instructions:
        "Declarative Run402 stacks from an app.json manifest. Read the manifest schema resource, validate, then plan: plan pays nothing and returns a plan id with every step and payment. apply takes that plan id and converges only if the stack still makes exactly that plan, paying at most its total. Results are run402-pulumi's --json documents; errors carry stable codes and, for manifests, JSON pointers.",
    },
  );
  const plansDir = mkdtempSync(join(tmpdir(), "run402-mcp-plans-"));
  /** Plans this server made: id → the plan file and the command line that made it. */
  const plans = new Map<string, { file: string; line: string[] }>();
  const shutdown = new AbortController();
  // One command at a time: a command works from the package folder and owns the process's Io.
  let queue: Promise<unknown> = Promise.resolve();

  const run = (
    line: string[],
    extra: Extra,
    extend?: (report: Report) => void,
    ceilingUsd?: string,
  ): Promise<CallToolResult> => {
    const task = queue.then(async () => {
      const parsed = parseCli(line);
      if (parsed.kind !== "run") {
        return refused(line[0] ?? "", "CLI_USAGE", parsed.kind === "error" ? parsed.message : "help");
      }
      // The agent's cap only lowers the operator's (never set from a flag the agent could write).
      if (ceilingUsd !== undefined) parsed.options.spendCeilingUsd = ceilingUsd;
      const token = extra._meta?.progressToken;
      let progress = 0;
      // Every notification is sent before the result: a client forgets the token once it has the result.
      const notified: Promise<void>[] = [];
      const abort = sticky(AbortSignal.any([extra.signal, shutdown.signal]));
      const io: Io = {
        progress(text) {
          options.log(text);
          if (token === undefined) return;
          progress += 1;
          notified.push(
            extra
              .sendNotification({
                method: "notifications/progress",
                params: { progressToken: token, progress, message: text.trim() },
              })
              .catch(() => {}),
          );
        },
        interactive: false,
        confirm: async () => false,
        abort,
        stopping: new Promise<void>((done) => abort.addEventListener("abort", () => done(), { once: true })),
      };
      const report = await runCommand(parsed.options, io);
      for (const e of report.errors) options.log(`${parsed.options.command}: [${e.code}] ${e.message}`);
      extend?.(report);
      await Promise.all(notified);
      return result(bounded(report, parsed.options.files));
    });
    queue = task.catch(() => {});
    return task;
  };

  const operator = options.operator ?? {};
  const servedRoot = resolve(startCwd, operator.manifest ?? ".");
  const roots = [
    realpathSync(existsSync(servedRoot) && statSync(servedRoot).isFile() ? dirname(servedRoot) : servedRoot),
  ];
  const opLine = operatorLine(operator);

  /**
   * The run402:* settings (the wallet key and the operator's own -c keys aside) that the stack
   * config of a manifest's folder sets, as written (secure values stay ciphertext), or why the file
   * cannot be read.
   */
  const moneyConfigOf = (dir: string): { file: string; keys: Record<string, string> } | { error: string } => {
    const stack = (operator.stack ?? "dev").split("/").pop();
    const workDir = workspacePaths(dir, operator.sandbox ?? false).workDir;
    const file = join(workDir, `Pulumi.${stack}.yaml`);
    // Pulumi prefers Pulumi.json (then .yml) over the Pulumi.yaml the CLI writes, and reads the stack
    // config with the project file's extension: such a pair, which the CLI never writes, would
    // decide the settings unseen.
    const other = ["Pulumi.json", "Pulumi.yml", `Pulumi.${stack}.json`, `Pulumi.${stack}.yml`].find((name) =>
      existsSync(join(workDir, name)),
    );
    if (other)
      return {
        error: `${join(workDir, other)} is not a file run402-pulumi writes, and Pulumi would read the stack's settings from it; remove it. Nothing was run or sent.`,
      };
    let config: Record<string, unknown>;
    try {
      // Merge keys applied, as Pulumi's YAML reader applies them.
      config =
        (
          parseYaml(readFileSync(file, "utf8"), { merge: true }) as {
            config?: Record<string, unknown>;
          } | null
        )?.config ?? {};
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { file, keys: {} };
      return { error: `The stack config ${file} cannot be read; nothing was run or sent.` };
    }
    if (config === null || typeof config !== "object" || Array.isArray(config))
      return { error: `The stack config ${file} has no readable config map; nothing was run or sent.` };
    const keys: Record<string, string> = {};
    for (const [key, value] of Object.entries(config)) {
      // Every key of a stack config is namespace:name; anything else (a merge key "<<" this reader
      // did not apply) could carry settings past this check.
      if (!/^[^:\s]+:[^:\s]+$/.test(key))
        return {
          error: `The stack config ${file} has the key "${key}", which is not a setting (namespace:name); nothing was run or sent.`,
        };
      if (key.startsWith("run402:") && key !== "run402:privateKey" && !(key in (operator.config ?? {})))
        keys[key] = JSON.stringify(value);
    }
    return { file, keys };
  };
  /**
   * The served root's money settings as they were when the operator started the server: theirs.
   * An agent with a file tool could edit that file later; a change is refused until the operator
   * restarts the server (or passes the setting with -c).
   */
  const rootMoneyAtStart = new Map(roots.map((root) => [root, moneyConfigOf(root)]));

  /**
   * Why a call on the manifest in `manifest`'s folder is refused for the money settings of its stack
   * config: outside the served root, any the operator did not pass (an agent that can write files
   * could have put them there, to pick another journal, budget, network, RPC or API); in the served
   * root, any that changed since the server started. Undefined when there is none.
   */
  const foreignMoneyConfig = (manifest: string): string | undefined => {
    const dir = existsSync(manifest) && statSync(manifest).isDirectory() ? manifest : dirname(manifest);
    const now = moneyConfigOf(dir);
    if ("error" in now) return now.error;
    const atStart = rootMoneyAtStart.get(dir);
    if (atStart) {
      if ("error" in atStart) return atStart.error;
      const changed = [...new Set([...Object.keys(atStart.keys), ...Object.keys(now.keys)])].filter(
        (key) => atStart.keys[key] !== now.keys[key],
      );
      if (changed.length === 0) return undefined;
      return `The stack config ${now.file} changed ${changed.join(", ")} since this server started. Money settings are the operator's as they stood when the server started: to accept the change, the operator restarts the server (or passes -c <key>=<value>). Nothing was run or sent.`;
    }
    const keys = Object.keys(now.keys);
    if (keys.length === 0) return undefined;
    return `The stack config ${now.file} sets ${keys.join(", ")}. Outside the folder this server serves, money settings come only from the operator (run402-pulumi mcp -c <key>=<value>), never from a file an agent could have written. Nothing was run or sent.`;
  };
  /** Only the flags `status` takes (it reads state: no rail, no settings). */
  const statusLine = [
    ...(operator.stack !== undefined && operator.stack !== "dev" ? ["--stack", operator.stack] : []),
    ...(operator.backend !== undefined ? ["--backend", operator.backend] : []),
    ...(operator.sandbox ? ["--sandbox"] : []),
  ];
  const opMaxSpend = operator.maxSpendUsd !== undefined ? ["--max-spend", operator.maxSpendUsd] : [];

  /**
   * Checks a call's arguments before anything runs: a key the tool does not take is refused by name
   * (with who sets it), the manifest must be inside the served folder, a cap must be an amount.
   */
  const screen = (
    command: string,
    args: Record<string, unknown>,
    own: readonly string[],
  ): { refusal: CallToolResult } | { manifest: string } => {
    const extras = Object.keys(args).filter((key) => !own.includes(key));
    if (extras.length > 0) {
      const report = emptyReport(command, "");
      report.ok = false;
      for (const key of extras) {
        const value = args[key];
        const named =
          key === "config" && value && typeof value === "object" && !Array.isArray(value)
            ? ` (${Object.keys(value).join(", ")})`
            : "";
        report.errors.push({
          code: "MCP_ARGUMENT_REFUSED",
          message: `${command} does not take "${key}"${named}: ${operatorOnly[key] ?? "no tool takes it"}. Nothing was run or sent.`,
        });
      }
      return { refusal: result(report) };
    }
    const cap = args["maxSpendUsd"];
    if (cap !== undefined && (typeof cap !== "string" || !/^\d+(\.\d+)?$/.test(cap))) {
      return {
        refusal: refused(command, "CLI_USAGE", `maxSpendUsd must be a USD amount such as "0.10".`),
      };
    }
    const where = servedPath(
      roots,
      typeof args["manifest"] === "string" ? args["manifest"] : ".",
      "manifest",
    );
    if ("refused" in where) return { refusal: refused(command, "MCP_PATH_OUTSIDE_ROOT", where.refused) };
    const foreign = foreignMoneyConfig(where.path);
    if (foreign) return { refusal: refused(command, "MCP_STACK_CONFIG_REFUSED", foreign) };
    return { manifest: where.path };
  };

  server.registerTool(
    "validate",
    {
      title: "Validate a manifest",
      description:
        "Checks the manifest (inside the folder this server serves) against the schema (no network, no engine). Each error has code MANIFEST_INVALID and the JSON pointer of the offending value.",
      inputSchema: input(target),
      outputSchema: reportSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) => {
      const checked = screen("validate", args, ["manifest"]);
      if ("refusal" in checked) return checked.refusal;
      return run(["validate", "--json", "--manifest", checked.manifest], extra);
    },
  );

  server.registerTool(
    "plan",
    {
      title: "Plan (pays nothing)",
      description: `Previews what converging the stack needs: every resource step, every payment with amount and rail, the total. Pays nothing and asks no server to resolve earlier payments (unfinished ones are reported; apply resolves them). Returns savedPlan.id (pass it to apply) and savedPlan.document, the plan with its fingerprint.${whoSetsWhat}`,
      inputSchema: input({ ...target, ...filesArg }),
      outputSchema: reportSchema,
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    (args, extra) => {
      const checked = screen("plan", args, ["manifest", "files"]);
      if ("refusal" in checked) return checked.refusal;
      const file = join(plansDir, `${Date.now()}-${plans.size}.json`);
      const line = ["plan", "--json", "--manifest", checked.manifest, ...opLine];
      return run([...line, ...filesFlag(args), "--save", file], extra, (report) => {
        if (!report.savedPlan) return;
        plans.set(report.savedPlan.id, { file, line });
        report.savedPlan.document = readPlan(file);
      });
    },
  );

  server.registerTool(
    "apply",
    {
      title: "Apply a plan",
      description: `Converges the stack to a plan made before: planId from this server's plan tool, or planFile (a \`run402-pulumi plan --save\` file inside the served folder, with the manifest it was made for). It previews again first: when the stack no longer makes exactly that plan (price, manifest, lease or stack changed), it changes and pays nothing and fails with CONFLICT_PLAN_STALE, listing what changed; plan again. It pays at most the plan's total and the operator's cap. To retry a call that failed or timed out, call apply again with the same planId: a payment is keyed by what it buys, so a retry resumes the same purchase (never a fresh one). Off unless the server was started with --allow-apply.${whoSetsWhat}`,
      inputSchema: input({
        planId: z.string().optional().describe("A plan id returned by this server's plan tool."),
        planFile: z
          .string()
          .optional()
          .describe(
            "A saved plan file (run402-pulumi plan --save) inside the served folder; relative to the server's working directory.",
          ),
        ...target,
        ...maxSpend,
        ...filesArg,
      }),
      outputSchema: reportSchema,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
    },
    (args, extra) => {
      if (!options.allowApply) {
        return refused(
          "apply",
          "MCP_TOOL_DISABLED",
          "apply changes the stack and pays: it is off. Start the server with `run402-pulumi mcp --allow-apply` to turn it on.",
        );
      }
      const checked = screen("apply", args, ["planId", "planFile", "manifest", "maxSpendUsd", "files"]);
      if ("refusal" in checked) return checked.refusal;
      const { planId, planFile, maxSpendUsd } = args;
      if ((planId === undefined) === (planFile === undefined)) {
        return refused(
          "apply",
          "CLI_USAGE",
          "apply needs exactly one plan: planId from the plan tool, or planFile. It never applies an unplanned change.",
        );
      }
      if (planId !== undefined) {
        const known = plans.get(planId);
        if (!known) {
          return refused(
            "apply",
            "CLI_PLAN_INVALID",
            `This server made no plan ${planId} (plan ids last as long as the server). Call plan and pass the id it returns.`,
          );
        }
        const line = [
          "apply",
          ...known.line.slice(1),
          ...opMaxSpend,
          ...filesFlag(args),
          "--plan",
          known.file,
        ];
        return run(line, extra, undefined, maxSpendUsd);
      }
      const plan = servedPath(roots, planFile as string, "plan file");
      if ("refused" in plan) return refused("apply", "MCP_PATH_OUTSIDE_ROOT", plan.refused);
      return run(
        [
          "apply",
          "--json",
          "--manifest",
          checked.manifest,
          ...opLine,
          ...opMaxSpend,
          ...filesFlag(args),
          "--plan",
          plan.path,
        ],
        extra,
        undefined,
        maxSpendUsd,
      );
    },
  );

  server.registerTool(
    "status",
    {
      title: "Stack status",
      description:
        "The stack's outputs, lease expiry, last settlements and pending operations, read from its state (no API calls). Takes the manifest (inside the served folder) and files.",
      inputSchema: input({ ...target, ...filesArg }),
      outputSchema: reportSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) => {
      const checked = screen("status", args, ["manifest", "files"]);
      if ("refusal" in checked) return checked.refusal;
      return run(
        ["status", "--json", "--manifest", checked.manifest, ...statusLine, ...filesFlag(args)],
        extra,
      );
    },
  );

  server.registerTool(
    "renew",
    {
      title: "Renew due leases",
      description: `Pays only the lease renewals that are due (within renewBeforeDays of expiry); any other payment the tier needs is reported and refused (POLICY_ACTION_NOT_ALLOWED). A retry renews the same lease period (never a second renewal of it). Off unless the server was started with --allow-apply.${whoSetsWhat}`,
      inputSchema: input({ ...target, ...maxSpend }),
      outputSchema: reportSchema,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    (args, extra) => {
      if (!options.allowApply) {
        return refused(
          "renew",
          "MCP_TOOL_DISABLED",
          "renew pays: it is off. Start the server with `run402-pulumi mcp --allow-apply` to turn it on.",
        );
      }
      const checked = screen("renew", args, ["manifest", "maxSpendUsd"]);
      if ("refusal" in checked) return checked.refusal;
      return run(
        ["renew", "--json", "--manifest", checked.manifest, ...opLine, ...opMaxSpend],
        extra,
        undefined,
        args.maxSpendUsd,
      );
    },
  );

  server.registerTool(
    "destroy",
    {
      title: "Destroy the stack",
      description: `Deletes the stack's resources (the project, its site and database). A tier lease is not cancelled; it lapses. Off unless the server was started with --allow-destroy.${whoSetsWhat}`,
      inputSchema: input(target),
      outputSchema: reportSchema,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
    },
    (args, extra) => {
      if (!options.allowDestroy) {
        return refused(
          "destroy",
          "MCP_TOOL_DISABLED",
          "destroy deletes resources: it is off. Start the server with `run402-pulumi mcp --allow-destroy` to turn it on.",
        );
      }
      const checked = screen("destroy", args, ["manifest"]);
      if ("refusal" in checked) return checked.refusal;
      return run(["destroy", "--json", "--manifest", checked.manifest, ...opLine, "--yes"], extra);
    },
  );

  // forecast: read-only and self-contained. An agent may narrow only: a horizon in days and a
  // manifest inside the folder the server serves (its working directory). Stack, backend, API
  // and rail are the operator's (the stack's config), not the agent's.
  server.registerTool(
    "forecast",
    {
      title: "Forecast renewals (pays nothing)",
      description:
        "Every lease renewal the stack (dev) will pay within `days` (default 30): resource, date, tier, amount and rail, and the total per rail, from the stack's state and the API's current price list. Pays nothing, writes nothing. Arguments: only `days` (1 to 3650) and `manifest` (a path inside the folder this server serves); the stack, backend, API and rail come from the operator's stack config.",
      inputSchema: {
        manifest: z
          .string()
          .optional()
          .describe(
            "The manifest, or a folder holding one, inside the folder this server serves (relative to it). Default: that folder.",
          ),
        days: z.number().int().min(1).max(3650).optional().describe("The horizon in days. Default: 30."),
      },
      outputSchema: reportSchema,
      annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: true },
    },
    (args, extra) => {
      const checked = screen("forecast", args, ["manifest", "days"]);
      if ("refusal" in checked) return checked.refusal;
      const line = ["forecast", "--json", "--manifest", checked.manifest, ...opLine];
      if (args.days !== undefined) line.push("--days", String(args.days));
      return run(line, extra);
    },
  );

  for (const resource of schemaResources) {
    server.registerResource(
      resource.name,
      resource.uri,
      { mimeType: "application/schema+json", description: resource.description },
      async (uri) => ({
        contents: [
          {
            uri: uri.href,
            mimeType: "application/schema+json",
            text: JSON.stringify(resource.read(), null, 2),
          },
        ],
      }),
    );
  }

  const protocol = new Writable({
    write(chunk: Buffer, _encoding, done) {
      options.writeStdout(chunk, (error) => done(error ?? null));
    },
  });
  const transport = new StdioServerTransport(process.stdin, protocol);
  const closed = new Promise<void>((done) => {
    process.stdin.once("end", done);
    process.stdin.once("close", done);
    transport.onclose = done;
    void options.stopping.then(done);
  });
  await server.connect(transport);
  options.log(
    `run402-pulumi mcp: serving on stdio (apply and renew ${options.allowApply ? "on" : "off"}, destroy ${options.allowDestroy ? "on" : "off"})`,
  );
  await closed;
  // The client went away: stop what runs (the engine finishes the step in flight), then leave.
  shutdown.abort();
  await queue;
  await server.close().catch(() => {});
  rmSync(plansDir, { recursive: true, force: true });
}
