/**
 * `run402-pulumi mcp`: the CLI's commands as MCP tools over stdio, for agents. Each tool call is
 * the command line an agent would type, parsed by the CLI's own parser and run by its own
 * `runCommand`, so results are the `--json` document (docs/cli.md) with the same error codes and
 * JSON pointers. `apply` applies only a plan made by this server's `plan` tool (by its id) or a
 * saved plan file: never an unplanned change. Tools that pay (apply, renew) or delete (destroy)
 * are off unless the server was started with `--allow-apply` / `--allow-destroy`.
 *
 * stdout is the protocol channel: only the transport writes there (main.ts points every other
 * write at stderr before anything runs, and the engine and the sandbox's chains run on pipes).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join, relative, resolve } from "node:path";
import { Writable } from "node:stream";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { appSchema, releaseSchema } from "../schema/validate.js";
import { parseCli } from "./args.js";
import { packageRoot } from "./engine.js";
import { readPlan } from "./plan.js";
import { emptyReport, ordered, type Report } from "./report.js";
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
}

/** Where relative paths in tool arguments start: the folder the server was started in. */
const startCwd = process.cwd();

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
      "The manifest (app.json, app.yaml, run402.json, run402.deploy.json) or a folder holding one; relative to the server's working directory. Default: that directory.",
    ),
  stack: z.string().optional().describe("The stack name. Default: dev."),
  backend: z
    .string()
    .optional()
    .describe("A Pulumi backend URL. Default: a file backend in <manifest dir>/.run402/state."),
  sandbox: z
    .boolean()
    .optional()
    .describe("Use the embedded local Run402 sandbox (local chains, test money) instead of the real API."),
};
const settings = {
  rail: z.enum(["x402", "mpp"]).optional().describe("The payment rail. Default: run402:rail, else x402."),
  config: z
    .record(z.string(), z.string())
    .optional()
    .describe(
      'run402:* provider settings for this call only, e.g. {"run402:apiBase": "https://…"}. Not the private key: the server reads it from its environment (RUN402_PRIVATE_KEY).',
    ),
};
const maxSpend = {
  maxSpendUsd: z.string().optional().describe('A cap on what this call may pay, in USD, e.g. "1" or "0.10".'),
};

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

type TargetArgs = {
  manifest?: string | undefined;
  stack?: string | undefined;
  backend?: string | undefined;
  sandbox?: boolean | undefined;
  rail?: "x402" | "mpp" | undefined;
  config?: Record<string, string> | undefined;
  maxSpendUsd?: string | undefined;
};

/** The command line for a tool call, with paths made absolute against the server's start folder. */
function argv(command: string, args: TargetArgs): string[] {
  const line = [command, "--json", "--manifest", resolve(startCwd, args.manifest ?? ".")];
  if (args.stack !== undefined) line.push("--stack", args.stack);
  if (args.backend !== undefined) {
    const local = args.backend.startsWith("file://") && !/^file:\/\/[/~]/.test(args.backend);
    line.push("--backend", local ? `file://${resolve(startCwd, args.backend.slice(7))}` : args.backend);
  }
  if (args.sandbox) line.push("--sandbox");
  if (args.rail !== undefined) line.push("--rail", args.rail);
  for (const [key, value] of Object.entries(args.config ?? {})) line.push("--config", `${key}=${value}`);
  if (args.maxSpendUsd !== undefined) line.push("--max-spend", args.maxSpendUsd);
  return line;
}

function result(report: Report): CallToolResult {
  const doc = ordered(report);
  return {
    content: [{ type: "text", text: JSON.stringify(doc, null, 2) }],
    structuredContent: doc as unknown as Record<string, unknown>,
    isError: !report.ok,
  };
}

function refused(command: string, code: string, message: string): CallToolResult {
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

  const run = (line: string[], extra: Extra, extend?: (report: Report) => void): Promise<CallToolResult> => {
    const task = queue.then(async () => {
      const parsed = parseCli(line);
      if (parsed.kind !== "run") {
        return refused(line[0] ?? "", "CLI_USAGE", parsed.kind === "error" ? parsed.message : "help");
      }
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
      return result(report);
    });
    queue = task.catch(() => {});
    return task;
  };

  server.registerTool(
    "validate",
    {
      title: "Validate a manifest",
      description:
        "Checks the manifest against the schema (no network, no engine). Each error has code MANIFEST_INVALID and the JSON pointer of the offending value.",
      inputSchema: { manifest: target.manifest },
      outputSchema: reportSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) =>
      run(["validate", "--json", "--manifest", resolve(startCwd, args.manifest ?? ".")], extra),
  );

  server.registerTool(
    "plan",
    {
      title: "Plan (pays nothing)",
      description:
        "Previews what converging the stack needs: every resource step, every payment with amount and rail, the total. Pays nothing. Returns savedPlan.id (pass it to apply) and savedPlan.document, the plan with its fingerprint.",
      inputSchema: { ...target, ...settings },
      outputSchema: reportSchema,
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    (args, extra) => {
      const file = join(plansDir, `${Date.now()}-${plans.size}.json`);
      const line = argv("plan", args);
      return run([...line, "--save", file], extra, (report) => {
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
      description:
        "Converges the stack to a plan made before: planId from this server's plan tool, or planFile (a `run402-pulumi plan --save` file, with the manifest and stack it was made for). It previews again first: when the stack no longer makes exactly that plan (price, manifest, lease or stack changed), it changes and pays nothing and fails with CONFLICT_PLAN_STALE, listing what changed; plan again. It pays at most the plan's total. Off unless the server was started with --allow-apply.",
      inputSchema: {
        planId: z.string().optional().describe("A plan id returned by this server's plan tool."),
        planFile: z
          .string()
          .optional()
          .describe(
            "A saved plan file (run402-pulumi plan --save); relative to the server's working directory.",
          ),
        ...target,
        ...settings,
        ...maxSpend,
      },
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
      const { planId, planFile, maxSpendUsd, ...rest } = args;
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
        const line = ["apply", ...known.line.slice(1), "--plan", known.file];
        return run(maxSpendUsd === undefined ? line : [...line, "--max-spend", maxSpendUsd], extra);
      }
      return run(
        [...argv("apply", { ...rest, maxSpendUsd }), "--plan", resolve(startCwd, planFile as string)],
        extra,
      );
    },
  );

  server.registerTool(
    "status",
    {
      title: "Stack status",
      description:
        "The stack's outputs, lease expiry, last settlements and pending operations, read from its state (no API calls).",
      inputSchema: target,
      outputSchema: reportSchema,
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    (args, extra) => run(argv("status", args), extra),
  );

  server.registerTool(
    "renew",
    {
      title: "Renew due leases",
      description:
        "Pays only the lease renewals that are due (within renewBeforeDays of expiry); any other payment the tier needs is reported and refused (POLICY_ACTION_NOT_ALLOWED). Off unless the server was started with --allow-apply.",
      inputSchema: { ...target, ...settings, ...maxSpend },
      outputSchema: reportSchema,
      annotations: {
        readOnlyHint: false,
        destructiveHint: false,
        idempotentHint: false,
        openWorldHint: true,
      },
    },
    (args, extra) =>
      options.allowApply
        ? run(argv("renew", args), extra)
        : refused(
            "renew",
            "MCP_TOOL_DISABLED",
            "renew pays: it is off. Start the server with `run402-pulumi mcp --allow-apply` to turn it on.",
          ),
  );

  server.registerTool(
    "destroy",
    {
      title: "Destroy the stack",
      description:
        "Deletes the stack's resources (the project, its site and database). A tier lease is not cancelled; it lapses. Off unless the server was started with --allow-destroy.",
      inputSchema: { ...target, config: settings.config },
      outputSchema: reportSchema,
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: true },
    },
    (args, extra) =>
      options.allowDestroy
        ? run([...argv("destroy", args), "--yes"], extra)
        : refused(
            "destroy",
            "MCP_TOOL_DISABLED",
            "destroy deletes resources: it is off. Start the server with `run402-pulumi mcp --allow-destroy` to turn it on.",
          ),
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
      const manifest = resolve(startCwd, args.manifest ?? ".");
      const inside = relative(startCwd, manifest);
      if (inside.startsWith("..") || isAbsolute(inside)) {
        return refused(
          "forecast",
          "CLI_PATH_OUTSIDE_FOLDER",
          `manifest ${args.manifest} is outside the folder this server serves (${startCwd}); give a path inside it.`,
        );
      }
      const line = ["forecast", "--json", "--manifest", manifest];
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
