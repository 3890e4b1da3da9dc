import type { EngineEvent } from "@pulumi/pulumi/automation/index.js";
import { describe, expect, test } from "vitest";
import { parseCli, parseDuration } from "../cli/args.js";
import {
  codedErrors,
  engineAdvice,
  engineCommand,
  engineErrors,
  findPulumi,
  pulumiProjectName,
  userEngineBin,
} from "../cli/engine/index.js";
import { ExitCode, exitCodeFor, exitCodeOf } from "../cli/exit.js";
import { StepCollector } from "../cli/steps.js";

function run(argv: string[]) {
  const result = parseCli(argv);
  if (result.kind !== "run") throw new Error(`expected run, got ${JSON.stringify(result)}`);
  return result.options;
}

function error(argv: string[]): string {
  const result = parseCli(argv);
  if (result.kind !== "error") throw new Error(`expected error, got ${JSON.stringify(result)}`);
  return result.message;
}

describe("parseCli", () => {
  test("default", () => {
    expect(run(["plan"])).toEqual({
      command: "plan",
      manifest: ".",
      stack: "dev",
      rail: undefined,
      backend: undefined,
      allowFileBackend: false,
      allowLocalJournal: false,
      sandbox: false,
      json: false,
      yes: false,
      maxSpendUsd: undefined,
      everyMs: 3_600_000,
      config: {},
      save: undefined,
      plan: undefined,
      allowApply: false,
      allowDestroy: false,
      policyPacks: [],
      policyPackConfigs: [],
      days: 30,
      files: false,
    });
  });

  test("behavior: saved plans and the MCP server's flags, each on its command only", () => {
    expect(run(["plan", "--save", "plan.json"]).save).toBe("plan.json");
    expect(run(["apply", "--plan", "plan.json"]).plan).toBe("plan.json");
    expect(run(["mcp", "--allow-apply", "--allow-destroy"])).toMatchObject({
      command: "mcp",
      allowApply: true,
      allowDestroy: true,
    });
    expect(error(["apply", "--save", "plan.json"])).toMatch(/--save does not apply to "apply"/);
    expect(error(["plan", "--plan", "plan.json"])).toMatch(/--plan does not apply to "plan"/);
    expect(error(["apply", "--plan", ""])).toMatch(/--plan needs a file/);
    // The operator's choices for every tool call are the server's flags; --save, --plan and --yes are not.
    expect(
      run(["mcp", "--manifest", "apps", "-c", "run402:maxPaymentUsd=1", "--max-spend", "2", "--rail", "mpp"]),
    ).toMatchObject({
      command: "mcp",
      manifest: "apps",
      config: { "run402:maxPaymentUsd": "1" },
      maxSpendUsd: "2",
      rail: "mpp",
    });
    expect(error(["mcp", "--save", "plan.json"])).toMatch(/--save does not apply to "mcp"/);
    expect(error(["mcp", "--yes"])).toMatch(/--yes does not apply to "mcp"/);
    expect(error(["apply", "--allow-apply"])).toMatch(/--allow-apply does not apply to "apply"/);
  });

  test("behavior: every flag", () => {
    expect(
      run([
        "apply",
        "-m",
        "x/app.yaml",
        "--stack",
        "prod",
        "--rail",
        "mpp",
        "--backend",
        "s3://bucket",
        "--sandbox",
        "--json",
        "-y",
        "--max-spend",
        "0.50",
        "-c",
        "run402:apiBase=http://127.0.0.1:1",
        "--config",
        "renewBeforeDays=3",
      ]),
    ).toMatchObject({
      command: "apply",
      manifest: "x/app.yaml",
      stack: "prod",
      rail: "mpp",
      backend: "s3://bucket",
      sandbox: true,
      json: true,
      yes: true,
      maxSpendUsd: "0.50",
      config: { "run402:apiBase": "http://127.0.0.1:1", "run402:renewBeforeDays": "3" },
    });
    expect(run(["reconcile", "--every", "15m"]).everyMs).toBe(900_000);
  });

  test("behavior: help", () => {
    expect(parseCli(["--help"]).kind).toBe("help");
    expect(parseCli(["apply", "-h"]).kind).toBe("help");
    expect(parseCli(["help"]).kind).toBe("help");
  });

  test("error: usage mistakes", () => {
    expect(error([])).toMatchInlineSnapshot(`"Missing command."`);
    expect(error(["deploy"])).toMatchInlineSnapshot(`"Unknown command "deploy"."`);
    expect(error(["plan", "--frobnicate"])).toMatchInlineSnapshot(`"Unknown flag --frobnicate."`);
    expect(error(["plan", "extra"])).toMatchInlineSnapshot(`"Unexpected argument "extra"."`);
    expect(error(["plan", "--yes"])).toMatchInlineSnapshot(`"The flag --yes does not apply to "plan"."`);
    // validate takes --sandbox and ignores it, as the MCP server's validate tool does under `mcp --sandbox`.
    expect(parseCli(["validate", "--sandbox"]).kind).toBe("run");
    expect(error(["validate", "--yes"])).toMatchInlineSnapshot(
      `"The flag --yes does not apply to "validate"."`,
    );
    expect(error(["apply", "--rail", "card"])).toMatchInlineSnapshot(
      `"--rail must be x402 or mpp, got "card"."`,
    );
    expect(error(["apply", "--max-spend", "-1"])).toMatch(/max-spend/);
    expect(error(["apply", "--max-spend", "lots"])).toMatchInlineSnapshot(
      `"--max-spend must be a USD amount such as 5 or 0.10, got "lots"."`,
    );
    expect(error(["reconcile", "--every", "soon"])).toMatchInlineSnapshot(
      `"--every must be a duration such as 30s, 15m, 1h or 1d, got "soon"."`,
    );
    expect(error(["plan", "-c", "run402:privateKey=0xabc"])).toMatchInlineSnapshot(
      `"Do not pass the private key on the command line: set RUN402_PRIVATE_KEY or \`pulumi config set --secret run402:privateKey\`."`,
    );
    expect(error(["plan", "-c", "run402:colour=red"])).toMatch(/unknown key "run402:colour"/);
    expect(error(["plan", "-c", "novalue"])).toMatch(/expects run402:key=value/);
    expect(error(["plan", "--stack", "a b"])).toMatch(/not a stack name/);
  });

  test("behavior: --json is detected even when parsing fails", () => {
    expect(parseCli(["nope", "--json"])).toMatchObject({ kind: "error", json: true });
  });
});

describe("parseDuration", () => {
  test("default", () => {
    expect(parseDuration("1h")).toBe(3_600_000);
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("1d")).toBe(86_400_000);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("1.5m")).toBe(90_000);
  });
  test("error: not a duration", () => {
    expect(parseDuration("0s")).toBeUndefined();
    expect(parseDuration("1 hour")).toBeUndefined();
    expect(parseDuration("")).toBeUndefined();
  });
});

describe("exit codes", () => {
  test("default", () => {
    expect(exitCodeFor("POLICY_MAX_SPEND")).toBe(ExitCode.policy);
    expect(exitCodeFor("POLICY_RECIPIENT")).toBe(3);
    expect(exitCodeFor("MANIFEST_INVALID")).toBe(2);
    expect(exitCodeFor("MANIFEST_NOT_FOUND")).toBe(2);
    expect(exitCodeFor("CONFIG_INVALID")).toBe(2);
    expect(exitCodeFor("WALLET_NOT_FOUND")).toBe(2);
    expect(exitCodeFor("CLI_USAGE")).toBe(2);
    expect(exitCodeFor("RUN402_API_ERROR")).toBe(ExitCode.run402);
    expect(exitCodeFor("RUN402_TIER_REQUIRED")).toBe(ExitCode.engine);
    expect(exitCodeFor("HTTP_REDIRECT")).toBe(4);
    expect(exitCodeFor("ENGINE_ERROR")).toBe(ExitCode.engine);
    expect(exitCodeFor("SOMETHING_ELSE")).toBe(5);
    expect(exitCodeFor("CONFLICT_STACK_LOCKED")).toBe(ExitCode.conflict);
    expect(exitCodeFor("CONFLICT_PLAN_CHANGED")).toBe(6);
    expect(exitCodeFor("CONFLICT_MANIFEST_CHANGED")).toBe(6);
    expect(exitCodeFor("JOURNAL_LOCKED")).toBe(6);
    expect(exitCodeFor("JOURNAL_CORRUPT")).toBe(ExitCode.invalid);
    expect(exitCodeFor("JOURNAL_IO")).toBe(2);
    expect(exitCodeFor("POLICY_ACTION_NOT_ALLOWED")).toBe(3);
    expect(exitCodeFor("ENGINE_CANCELLED")).toBe(ExitCode.interrupted);
    expect(ExitCode.interrupted).toBe(130);
  });

  test("behavior: payment outcomes map like the API's errors; a mismatched credential is a refusal", () => {
    expect(exitCodeFor("PAYMENT_REJECTED")).toBe(ExitCode.run402);
    expect(exitCodeFor("PAYMENT_OUTCOME_UNKNOWN")).toBe(4);
    expect(exitCodeFor("PAYMENT_UNDELIVERED")).toBe(4);
    expect(exitCodeFor("PAYMENT_CREDENTIAL_FAILED")).toBe(4);
    expect(exitCodeFor("INTENT_ALREADY_PAID")).toBe(4);
    expect(exitCodeFor("RAIL_NOT_OFFERED")).toBe(4);
    expect(exitCodeFor("PAYMENT_CREDENTIAL_MISMATCH")).toBe(ExitCode.policy);
    expect(exitCodeFor("INTENT_IN_PROGRESS")).toBe(ExitCode.conflict);
  });

  test("behavior: the most severe error wins", () => {
    expect(exitCodeOf([])).toBe(0);
    expect(
      exitCodeOf([
        { code: "ENGINE_ERROR", message: "" },
        { code: "RUN402_API_ERROR", message: "" },
      ]),
    ).toBe(4);
    expect(
      exitCodeOf([
        { code: "RUN402_API_ERROR", message: "" },
        { code: "POLICY_MAX_SPEND", message: "" },
      ]),
    ).toBe(3);
    expect(
      exitCodeOf([
        { code: "POLICY_MAX_SPEND", message: "" },
        { code: "ENGINE_CANCELLED", message: "" },
      ]),
    ).toBe(130);
  });

  test("behavior: coded errors are found in engine text", () => {
    const text = [
      "Diagnostics:",
      "  pulumi-nodejs:dynamic/run402:Tier (tier):",
      "    error: [POLICY_MAX_SPEND] Paying $0.10 would exceed run402:maxSpendUsd ($0.05); nothing was signed.",
      "  pulumi:pulumi:Stack (quickstart-dev):",
      "    error: update failed",
    ].join("\n");
    expect(codedErrors(text)).toEqual([
      {
        code: "POLICY_MAX_SPEND",
        message: "Paying $0.10 would exceed run402:maxSpendUsd ($0.05); nothing was signed.",
      },
    ]);
    expect(engineErrors(text)).toHaveLength(1);
    expect(codedErrors("x [RUN402_API_ERROR] a\ny [RUN402_API_ERROR] a")).toHaveLength(1);
    expect(codedErrors("x [RUN402_TIER_REQUIRED] a")).toEqual([]);
    expect(codedErrors("see [A] or [foo_BAR]")).toEqual([]);
  });

  test("behavior: uncoded engine text becomes ENGINE_ERROR with its telling line", () => {
    expect(engineErrors("error: update failed\nerror: could not load plugin pulumi-nodejs")).toEqual([
      { code: "ENGINE_ERROR", message: "could not load plugin pulumi-nodejs" },
    ]);
    expect(engineErrors("")).toEqual([{ code: "ENGINE_ERROR", message: "The Pulumi engine failed." }]);
  });
});

function pre(op: string, name: string, type: string, inputs: Record<string, unknown> = {}): EngineEvent {
  const urn = `urn:pulumi:dev::quickstart::${type}::${name}`;
  return {
    sequence: 0,
    timestamp: 0,
    resourcePreEvent: {
      metadata: {
        op,
        urn,
        type,
        provider: "",
        new: { type, urn, id: "", parent: "", provider: "", inputs, outputs: {} },
      },
    },
  } as unknown as EngineEvent;
}

function outputs(op: string, name: string, type: string, before: unknown, after: unknown): EngineEvent {
  const urn = `urn:pulumi:dev::quickstart::${type}::${name}`;
  const state = (settlement: unknown) => ({
    type,
    urn,
    id: "x",
    parent: "",
    provider: "",
    inputs: {},
    outputs: { tier: "prototype", lastSettlement: settlement, serviceKey: "svc_secret" },
  });
  return {
    sequence: 1,
    timestamp: 0,
    resOutputsEvent: { metadata: { op, urn, type, provider: "", old: state(before), new: state(after) } },
  } as unknown as EngineEvent;
}

describe("StepCollector", () => {
  const tier = "pulumi-nodejs:dynamic/run402:Tier";
  const settlement = {
    rail: "mpp",
    reference: "0xabc",
    network: "eip155:42431",
    amountUsd: "0.10",
    payer: "0x1",
    settledAt: "2026-01-01T00:00:00Z",
  };

  test("behavior: planned payments become priced actions; free steps cost 0", () => {
    const collector = new StepCollector();
    collector.onEvent(pre("create", "quickstart-dev", "pulumi:pulumi:Stack"));
    collector.onEvent(
      pre("update", "tier", tier, {
        plannedPayment: { action: "renew", tier: "prototype", amountUsd: "0.10", rail: "mpp", reason: "due" },
      }),
    );
    collector.onEvent(pre("create", "project", "pulumi-nodejs:dynamic/run402:Project"));
    collector.onEvent(pre("same", "deployment", "pulumi-nodejs:dynamic/run402:Deployment"));
    expect(collector.resources().map((r) => `${r.op} ${r.type} ${r.name}`)).toEqual([
      "update run402:Tier tier",
      "create run402:Project project",
      "same run402:Deployment deployment",
    ]);
    expect(collector.actions()).toEqual([
      { resource: "tier", action: "renew", amountUsd: "0.10", rail: "mpp", reason: "due" },
      { resource: "project", action: "create", amountUsd: "0", rail: null, reason: "does not exist yet" },
    ]);
    expect(collector.payments()).toEqual([]);
  });

  test("behavior: a changed lastSettlement is a payment; outputs keep no keys", () => {
    const collector = new StepCollector();
    collector.onEvent(outputs("update", "tier", tier, null, settlement));
    collector.onEvent(outputs("same", "tier2", tier, settlement, settlement));
    expect(collector.payments()).toEqual([
      { rail: "mpp", reference: "0xabc", amountUsd: "0.10", network: "eip155:42431" },
    ]);
    expect(collector.resources()[0]?.outputs).toEqual({ tier: "prototype", lastSettlement: settlement });
  });

  test("behavior: a Tier that pays nothing says why: adopt on create, the plan's reason on update", () => {
    const collector = new StepCollector();
    collector.onEvent(
      pre("create", "tier", tier, {
        plan: { action: "adopt", reason: "the organization already holds an active prototype lease" },
        plannedPayment: null,
      }),
    );
    expect(collector.actions()).toEqual([
      {
        resource: "tier",
        action: "adopt",
        amountUsd: "0",
        rail: null,
        reason: "the organization already holds an active prototype lease",
      },
    ]);
  });

  test("behavior: steps that started and never finished are unfinished", () => {
    const collector = new StepCollector();
    const started = pre("create", "project", "pulumi-nodejs:dynamic/run402:Project");
    (started.resourcePreEvent as { planning?: boolean }).planning = false;
    collector.onEvent(started);
    expect(collector.unfinished()).toEqual([{ resource: "project", op: "create" }]);
    collector.onEvent(outputs("create", "project", "pulumi-nodejs:dynamic/run402:Project", null, null));
    expect(collector.unfinished()).toEqual([]);
  });
});

describe("engine lookup", () => {
  test("error: no engine in .tools, the user's engine folder or on PATH is ENGINE_NOT_FOUND (exit 5)", async () => {
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    process.env.RUN402_ENGINE_BIN = "/nonexistent/bin";
    try {
      const failure = await findPulumi("/nonexistent").catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: "ENGINE_NOT_FOUND" });
      expect((failure as Error).message).toContain(
        "Install the Pulumi CLI 3.x with its language hosts (https://www.pulumi.com/docs/install/), or run `bash /nonexistent/scripts/engine.sh`",
      );
      expect(exitCodeFor("ENGINE_NOT_FOUND")).toBe(ExitCode.engine);
    } finally {
      process.env.PATH = path;
      delete process.env.RUN402_ENGINE_BIN;
    }
  });

  test("behavior: the advice names the command for where the package runs, never a path into npx's cache", () => {
    // npx's cache: the path changes, so the advice pins the version and names no path.
    const npx = "/home/u/.npm/_npx/0a1b2c/node_modules/pulumi-run402";
    expect(engineCommand(npx)).toBe("npx -y -p pulumi-run402 run402-pulumi engine");
    expect(engineAdvice(npx)).not.toContain("_npx");
    // A project's installation: run in the project.
    expect(engineCommand("/srv/app/node_modules/pulumi-run402")).toBe("npx run402-pulumi engine");
    // This repository: the script itself.
    expect(engineCommand("/work/repo")).toBe("bash /work/repo/scripts/engine.sh");
    expect(userEngineBin({ HOME: "/home/u" })).toBe("/home/u/.cache/pulumi-run402/bin");
    expect(userEngineBin({ HOME: "/home/u", RUN402_ENGINE_BIN: "/opt/e" })).toBe("/opt/e");
  });

  test("behavior: Pulumi project names come from the manifest, else the folder", () => {
    expect(pulumiProjectName("my app!", "/x/y")).toBe("my-app");
    expect(pulumiProjectName(undefined, "/srv/quickstart")).toBe("quickstart");
    expect(pulumiProjectName(undefined, "/")).toBe("app");
  });
});
