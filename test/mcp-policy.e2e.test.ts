/**
 * Through the MCP SDK's own client over stdio (the built CLI as a child process): the operator
 * decides the money and the files. Every `run402:*` setting and every other argument that would
 * widen what the operator set is refused before anything runs (the sandbox's request log stays
 * empty); an agent's cap only narrows the operator's; `--allow-apply` without operator-set
 * recipients does not start; tool paths stay inside the served folder, and a value from a file
 * outside it never reaches a result.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";
import {
  appCopy,
  assertBuilt,
  childEnv,
  definedEnv,
  main,
  sandboxSettings,
  settingFlags,
} from "~test/cli-harness.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import type { Report } from "../cli/report.js";
import { configKeys } from "../provider/settings.js";

let sandbox: TestSandbox;
/** The folder the servers serve (their working directory). */
let root: string;
/** A folder outside it, holding files an agent must not read. */
let outside: string;
const open: Client[] = [];
const secret = "SECRET_TOKEN=d6f1c0ffee";

beforeAll(async () => {
  assertBuilt();
  root = mkdtempSync(join(tmpdir(), "run402-mcp-root-"));
  outside = mkdtempSync(join(tmpdir(), "run402-mcp-outside-"));
  sandbox = await startTestSandbox({ walletCount: 2 });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});
afterAll(async () => {
  await sandbox?.close();
  for (const dir of [root, outside]) if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The server's environment: its Pulumi home and run402 config inside the served folder, a wallet's key. */
function env(wallet: number): Record<string, string> {
  return definedEnv(
    childEnv(root, {
      PULUMI_HOME: join(root, ".pulumi-home"),
      RUN402_CONFIG_DIR: join(root, ".config"),
      RUN402_PRIVATE_KEY: sandbox.wallets[wallet]!.privateKey,
    }),
  );
}

/** The operator's flags pointing the server at the test sandbox. */
function operator(name: string): string[] {
  return settingFlags({ ...sandboxSettings(sandbox), journalPath: join(root, `.journal-${name}.json`) });
}

async function serve(wallet: number, flags: string[]) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [main, "mcp", ...flags],
    env: env(wallet),
    cwd: root,
    stderr: "pipe",
  });
  const client = new Client({ name: "run402-policy-e2e", version: "1.0.0" });
  await client.connect(transport);
  await client.listTools();
  open.push(client);
  return {
    async call(name: string, args: Record<string, unknown>) {
      const result = (await client.callTool({ name, arguments: args }, undefined, {
        timeout: 240_000,
        resetTimeoutOnProgress: true,
      })) as CallToolResult;
      return { report: result.structuredContent as unknown as Report, result };
    },
  };
}

/** A value an attacker would pass for each setting: all of them point somewhere the operator did not choose. */
const hostileValue: Record<string, string> = {
  apiBase: "http://127.0.0.1:9",
  rail: "mpp",
  fallbackRail: "mpp",
  privateKey: `0x${"11".repeat(32)}`,
  maxPaymentUsd: "1000",
  maxSpendUsd: "1000",
  renewBeforeDays: "364",
  baseRpcUrl: "http://127.0.0.1:9",
  tempoRpcUrl: "http://127.0.0.1:9",
  allowedRecipients: `0x${"ab".repeat(20)}`,
  allowedNetworks: "eip155:8453",
  uploadOrigins: "http://127.0.0.1:9",
  journalPath: "/tmp/fresh-journal.json",
  journal: "postgres://attacker@127.0.0.1:9/fresh",
  budgetUsd: "1000000",
  budgetPeriod: "1h",
  allowedActions: "subscribe,renew,upgrade,downgrade",
};

describe("the operator decides the money", () => {
  test("error: every run402:* setting and every other widening argument is refused by name on every tool; the sandbox's request log stays empty", {
    timeout: 300_000,
  }, async () => {
    const server = await serve(0, ["--allow-apply", "--allow-destroy", ...operator("refused")]);
    const manifest = appCopy(root);
    expect(Object.keys(hostileValue).sort()).toEqual([...configKeys].sort());
    const widening: Record<string, unknown>[] = [
      ...configKeys.map((key) => ({ config: { [`run402:${key}`]: hostileValue[key] } })),
      { backend: `file://${outside}` },
      { sandbox: true },
      { stack: "prod" },
      { rail: "mpp" },
      { apiBase: "http://127.0.0.1:9" },
    ];
    for (const tool of ["plan", "apply", "renew", "destroy", "status", "validate"]) {
      for (const extra of widening) {
        const args = { manifest, ...(tool === "apply" ? { planId: "plan_0000000000000000" } : {}), ...extra };
        const { report, result } = await server.call(tool, args);
        const [key] = Object.keys(extra);
        expect(result.isError, `${tool} ${JSON.stringify(extra)}`).toBe(true);
        expect(report.errors, `${tool} ${JSON.stringify(extra)}`).toEqual([
          expect.objectContaining({
            code: "MCP_ARGUMENT_REFUSED",
            message: expect.stringContaining(`"${key}"`),
          }),
        ]);
        if (key === "config") {
          const name = Object.keys(extra.config as object)[0]!;
          expect(report.errors[0]?.message).toContain(name);
          expect(report.errors[0]?.message).toMatch(/operator's/);
        }
      }
    }
    // Nothing reached Run402: no plan, no status read, no payment.
    expect(await sandbox.requests()).toEqual([]);
    expect(await sandbox.ledger()).toEqual([]);
  });

  test("error: a stack config in another folder of the served tree cannot set money settings the operator did not pass", {
    timeout: 300_000,
  }, async () => {
    const server = await serve(0, ["--allow-apply", ...operator("foreign")]);
    const manifest = appCopy(root);
    // What an agent with a file tool could write beside an app: a fresh journal, a higher cap, mainnet.
    const workspace = join(manifest, "..", ".run402");
    mkdirSync(workspace, { recursive: true });
    writeFileSync(
      join(workspace, "Pulumi.dev.yaml"),
      'config:\n  run402:journalPath: /tmp/fresh-journal.jsonl\n  run402:maxSpendUsd: "1000"\n  run402:allowedNetworks: eip155:8453\n',
    );
    const before = (await sandbox.requests()).length;
    for (const tool of ["plan", "status", "forecast"]) {
      const { report, result } = await server.call(tool, { manifest });
      expect(result.isError, tool).toBe(true);
      expect(report.errors, tool).toEqual([
        expect.objectContaining({
          code: "MCP_STACK_CONFIG_REFUSED",
          // journalPath is one the operator passed (-c), so theirs stands; the others are refused.
          message: expect.stringContaining("sets run402:maxSpendUsd, run402:allowedNetworks."),
        }),
      ]);
    }
    expect((await sandbox.requests()).length).toBe(before);
    expect(await sandbox.ledger()).toEqual([]);
  });

  test("error: the served folder's own stack config is the operator's as it stood at start: a money setting changed or added later is refused until the operator restarts the server", {
    timeout: 300_000,
  }, async () => {
    const manifest = appCopy(root);
    const app = join(manifest, "..");
    const workspace = join(app, ".run402");
    mkdirSync(workspace, { recursive: true });
    const file = join(workspace, "Pulumi.dev.yaml");
    const operatorsFile = 'config:\n  run402:maxSpendUsd: "0.50"\n';
    writeFileSync(file, operatorsFile);
    const server = await serve(0, ["--manifest", app, ...operator("served-root")]);
    const before = (await sandbox.requests()).length;
    // As the operator left it: accepted.
    const accepted = await server.call("validate", { manifest });
    expect(accepted.report.errors).toEqual([]);
    // What an agent with a file tool could do to it afterwards: a higher cap, mainnet.
    writeFileSync(file, 'config:\n  run402:maxSpendUsd: "1000"\n  run402:allowedNetworks: eip155:8453\n');
    for (const tool of ["validate", "plan", "status"]) {
      const { report, result } = await server.call(tool, { manifest });
      expect(result.isError, tool).toBe(true);
      expect(report.errors, tool).toEqual([
        expect.objectContaining({
          code: "MCP_STACK_CONFIG_REFUSED",
          message: expect.stringContaining(
            "changed run402:maxSpendUsd, run402:allowedNetworks since this server started",
          ),
        }),
      ]);
    }
    expect((await sandbox.requests()).length).toBe(before);
    // The same through a YAML merge key (Pulumi's reader applies it), and through the JSON project
    // and stack files Pulumi prefers to the YAML ones the CLI writes.
    writeFileSync(file, `${operatorsFile}  <<: {"run402:allowedNetworks": "eip155:8453"}\n`);
    const merged = await server.call("plan", { manifest });
    expect(merged.report.errors).toEqual([
      expect.objectContaining({
        code: "MCP_STACK_CONFIG_REFUSED",
        message: expect.stringContaining("run402:allowedNetworks"),
      }),
    ]);
    writeFileSync(file, operatorsFile);
    writeFileSync(join(workspace, "Pulumi.json"), JSON.stringify({ name: "app", runtime: "nodejs" }));
    writeFileSync(
      join(workspace, "Pulumi.dev.json"),
      JSON.stringify({ config: { "run402:maxSpendUsd": "1000" } }),
    );
    const json = await server.call("plan", { manifest });
    expect(json.report.errors).toEqual([
      expect.objectContaining({
        code: "MCP_STACK_CONFIG_REFUSED",
        message: expect.stringContaining("Pulumi.json"),
      }),
    ]);
    rmSync(join(workspace, "Pulumi.json"));
    rmSync(join(workspace, "Pulumi.dev.json"));
    expect((await sandbox.requests()).length).toBe(before);
    // Put back as it was: the operator's again.
    expect((await server.call("validate", { manifest })).report.errors).toEqual([]);
  });

  test("error: apply's maxSpendUsd only narrows the operator's cap: a larger one leaves the operator's in force and nothing is paid", {
    timeout: 300_000,
  }, async () => {
    const server = await serve(1, ["--allow-apply", "--max-spend", "0.05", ...operator("narrow")]);
    const manifest = appCopy(root);
    const planned = await server.call("plan", { manifest });
    expect(planned.report.ok, JSON.stringify(planned.report.errors)).toBe(true);
    expect(planned.report.totalPlannedUsd).toBe("0.10");
    const applied = await server.call("apply", { planId: planned.report.savedPlan?.id, maxSpendUsd: "100" });
    expect(applied.result.isError).toBe(true);
    expect(applied.report.errors).toContainEqual(expect.objectContaining({ code: "POLICY_MAX_SPEND" }));
    expect(applied.report.payments).toEqual([]);
    const payer = sandbox.wallets[1]!.address.toLowerCase();
    expect((await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer)).toEqual([]);
  });

  test("error: mcp --allow-apply without operator-set allowedRecipients does not start", () => {
    const run = spawnSync(process.execPath, [main, "mcp", "--allow-apply"], {
      cwd: root,
      env: env(0),
      input: "",
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/\[MCP_RECIPIENTS_REQUIRED\].*run402:allowedRecipients/);
    expect(run.stdout).toBe("");
  });
});

describe("an MCP client reads only what it was given", () => {
  test("error: manifests and plan files outside the served folder, through a symlink, or not named as a manifest are refused; the values in them never reach a result", {
    timeout: 120_000,
  }, async () => {
    const server = await serve(0, ["--allow-apply", ...operator("paths")]);
    const hostile = JSON.stringify({ tier: secret, project: { name: secret } });
    mkdirSync(join(outside, "app"), { recursive: true });
    writeFileSync(join(outside, "app", "app.json"), hostile);
    writeFileSync(join(outside, "plan.json"), hostile);
    writeFileSync(join(root, "secrets.json"), hostile);
    const linked = mkdtempSync(join(root, "linked-"));
    symlinkSync(join(outside, "app", "app.json"), join(linked, "app.json"));
    symlinkSync(join(outside, "app"), join(root, "link-dir"));
    const cases: [string, Record<string, unknown>][] = [];
    for (const manifest of [
      join(outside, "app", "app.json"),
      join(outside, "app"),
      `../${join(outside.slice(tmpdir().length + 1), "app", "app.json")}`,
      join(linked, "app.json"),
      "link-dir",
      "secrets.json",
      "/etc/passwd",
    ]) {
      for (const tool of ["validate", "plan", "status"]) cases.push([tool, { manifest }]);
    }
    cases.push(["apply", { planFile: join(outside, "plan.json"), manifest: appCopy(root) }]);
    for (const [tool, args] of cases) {
      const { report, result } = await server.call(tool, args);
      expect(result.isError, `${tool} ${JSON.stringify(args)}`).toBe(true);
      expect(report.errors[0]?.code, `${tool} ${JSON.stringify(args)}`).toBe("MCP_PATH_OUTSIDE_ROOT");
      expect(JSON.stringify(result)).not.toContain("SECRET_TOKEN");
    }
    // A manifest inside the folder is read as before.
    const inside = await server.call("validate", { manifest: appCopy(root) });
    expect(inside.report.ok, JSON.stringify(inside.report.errors)).toBe(true);
  });
});
