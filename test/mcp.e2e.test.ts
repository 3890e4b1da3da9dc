/**
 * `run402-pulumi mcp` driven by the MCP SDK's own client over stdio (the built CLI as a child
 * process), through the real engine, against a sandbox: validate a bad manifest (its pointer in the
 * result), plan then apply by plan id (one payment, its rail on the sandbox's ledger), a stale plan
 * after the manifest changed (refused, nothing paid), tools that pay or delete refused without the
 * server's flags; the tools' annotations, the schema resource, progress notifications, and a stdout
 * that carries nothing but the protocol.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
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

let sandbox: TestSandbox;
let tmp: string;
const open: Server[] = [];

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-mcp-"));
  sandbox = await startTestSandbox({ walletCount: 4 });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.client.close()));
});
afterAll(async () => {
  await sandbox?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Server {
  client: Client;
  /** Errors the client's transport saw (a stdout line that is not a JSON-RPC message lands here). */
  errors: Error[];
  stderr: () => string;
  /** Calls a tool; its progress messages are collected in `progress`. */
  call(name: string, args: Record<string, unknown>): Promise<{ report: Report; result: CallToolResult }>;
  progress: string[];
}

/** Starts the server (the built CLI) with one sandbox wallet's key in its environment. */
async function serve(wallet: number, flags: string[]): Promise<Server> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [main, "mcp", ...flags],
    env: definedEnv(childEnv(tmp, { RUN402_PRIVATE_KEY: sandbox.wallets[wallet]!.privateKey })),
    cwd: tmp,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const client = new Client({ name: "run402-e2e", version: "1.0.0" });
  const errors: Error[] = [];
  client.onerror = (error) => {
    // The SDK's client (1.32.2, shared/protocol.js) handles a response at once but a notification a
    // microtask later, so a progress notification that arrives in the same read as its call's result
    // (the server sends it first, and awaits the send) is reported as "for an unknown token". That is
    // the client's ordering, not a server error; everything else counts.
    if (/^Received a progress notification for an unknown token/.test(error.message)) return;
    errors.push(error);
  };
  await client.connect(transport);
  // The client checks each result against the tool's outputSchema once it has listed the tools.
  await client.listTools();
  const progress: string[] = [];
  const server: Server = {
    client,
    errors,
    progress,
    stderr: () => stderr,
    async call(name, args) {
      const result = (await client.callTool({ name, arguments: args }, undefined, {
        timeout: 240_000,
        resetTimeoutOnProgress: true,
        onprogress: (p) => {
          if (p.message) progress.push(p.message);
        },
      })) as CallToolResult;
      const text = (result.content[0] as { text: string }).text;
      expect(JSON.parse(text)).toEqual(result.structuredContent);
      return { report: result.structuredContent as unknown as Report, result };
    },
  };
  open.push(server);
  return server;
}

/** The operator's flags that point the server at the test sandbox (the key comes from its environment). */
function operator(name: string): string[] {
  return settingFlags({ ...sandboxSettings(sandbox), journalPath: join(tmp, `journal-${name}.json`) });
}

/** A tool call's target: the manifest only (everything else is the operator's). */
function target(manifest: string, _name: string) {
  return { manifest };
}

async function paidBy(wallet: number) {
  const payer = sandbox.wallets[wallet]!.address.toLowerCase();
  return (await sandbox.ledger()).filter((p) => p.payer.toLowerCase() === payer);
}

describe("run402-pulumi mcp", () => {
  test("behavior: a cancelled call stops its engine run (ENGINE_CANCELLED) and the next call runs", {
    timeout: 300_000,
  }, async () => {
    const server = await serve(0, operator("cancel"));
    const manifest = appCopy(tmp);
    // The tier check waits on the server, so the call is still running when it is cancelled.
    await sandbox.fault({ route: "GET /tiers/v1/status", kind: "delay", delayMs: 8_000, count: 1 });
    const cancel = new AbortController();
    const call = server.client.callTool({ name: "plan", arguments: target(manifest, "cancel") }, undefined, {
      signal: cancel.signal,
      timeout: 240_000,
      onprogress: (p) => {
        if (p.message?.startsWith("planning")) cancel.abort();
      },
    });
    await expect(call).rejects.toThrow();
    const next = await server.call("validate", { manifest });
    expect(next.report.ok).toBe(true);
    expect(server.stderr()).toMatch(/plan: \[ENGINE_CANCELLED\] Stopped by a signal during planning/);
    expect(server.errors).toEqual([]);
  });

  test("behavior: the tools and their annotations, the manifest schema as a resource; validate reports a bad manifest with its pointer", async () => {
    const server = await serve(0, []);
    const { tools } = await server.client.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(Object.keys(byName).sort()).toEqual([
      "apply",
      "destroy",
      "forecast",
      "plan",
      "renew",
      "status",
      "validate",
    ]);
    for (const name of ["validate", "plan", "status", "forecast"])
      expect(byName[name]?.annotations?.readOnlyHint).toBe(true);
    expect(byName.destroy?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(byName.apply?.annotations?.readOnlyHint).toBe(false);
    expect(byName.apply?.outputSchema?.required).toEqual(
      expect.arrayContaining(["ok", "errors", "payments"]),
    );

    const { resources } = await server.client.listResources();
    const schema = resources.find((r) => r.uri === "run402-pulumi://schema/app.schema.json");
    expect(schema?.mimeType).toBe("application/schema+json");
    const read = await server.client.readResource({ uri: "run402-pulumi://schema/app.schema.json" });
    const body = JSON.parse((read.contents[0] as { text: string }).text) as {
      $id: string;
      properties: object;
    };
    expect(body.$id).toBe("https://pulumi-run402.dev/schemas/app.schema.json");
    expect(body.properties).toHaveProperty("tier");

    const manifest = appCopy(tmp);
    writeFileSync(manifest, JSON.stringify({ tier: "prototype", sitee: { dir: "site" } }));
    const { report, result } = await server.call("validate", { manifest });
    expect(result.isError).toBe(true);
    expect(report).toMatchObject({ ok: false, command: "validate" });
    expect(report.errors[0]).toMatchObject({ code: "MANIFEST_INVALID", pointer: "/sitee" });
    // A relative path is the server's working directory's.
    const relative = await server.call("validate", { manifest: join(manifest, "..").slice(tmp.length + 1) });
    expect(relative.report.errors[0]).toMatchObject({ pointer: "/sitee" });
    expect(server.errors).toEqual([]);
  });

  test("behavior: plan, then apply by its id: one payment on the planned rail, on the ledger; progress arrives while it works; stdout carries only the protocol", {
    timeout: 300_000,
  }, async () => {
    const server = await serve(1, ["--allow-apply", "--rail", "mpp", ...operator("apply")]);
    const manifest = appCopy(tmp);
    const planned = await server.call("plan", target(manifest, "apply"));
    expect(planned.result.isError, JSON.stringify(planned.report.errors)).toBe(false);
    const saved = planned.report.savedPlan;
    expect(saved?.id).toMatch(/^plan_[0-9a-f]{16}$/);
    expect(saved?.document).toMatchObject({
      id: saved?.id,
      fingerprint: saved?.fingerprint,
      payments: [{ resource: "tier", action: "subscribe", amountUsd: "0.10", rail: "mpp" }],
      totalUsd: "0.10",
    });
    expect(planned.report).toMatchObject({
      totalPlannedUsd: "0.10",
      plannedByRail: { mpp: "0.10" },
      payments: [],
    });
    expect(server.progress).toContainEqual(
      expect.stringMatching(/^planning \(pulumi preview; nothing is paid\)…$/),
    );
    expect(await paidBy(1)).toEqual([]);

    const applied = await server.call("apply", { planId: saved?.id });
    expect(applied.result.isError, JSON.stringify(applied.report.errors)).toBe(false);
    const ledger = await paidBy(1);
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({ rail: "mpp" });
    expect(applied.report).toMatchObject({
      ok: true,
      command: "apply",
      payments: [{ rail: "mpp", reference: ledger[0]!.reference, amountUsd: "0.10" }],
      totalPaidUsd: "0.10",
      savedPlan: { id: saved?.id },
      outputs: { lastSettlement: { rail: "mpp", reference: ledger[0]!.reference } },
    });
    expect(server.progress).toContainEqual(expect.stringMatching(/paid \$0\.10 on mpp/));

    const status = await server.call("status", { manifest });
    expect(status.report.outputs?.lastSettlement).toMatchObject({
      rail: "mpp",
      reference: ledger[0]!.reference,
    });
    // Everything the engine, the provider and the libraries printed went to stderr.
    expect(server.stderr()).toMatch(/applying the saved plan plan_/);
    expect(server.errors).toEqual([]);
  });

  test("error: a stale plan (the manifest changed after it) is refused with what changed; nothing is paid; apply without a plan is refused", {
    timeout: 300_000,
  }, async () => {
    const server = await serve(2, ["--allow-apply", ...operator("stale")]);
    const manifest = appCopy(tmp);
    const unplanned = await server.call("apply", target(manifest, "stale"));
    expect(unplanned.report.errors[0]).toMatchObject({
      code: "CLI_USAGE",
      message: expect.stringMatching(/needs exactly one plan/),
    });
    const unknown = await server.call("apply", { planId: "plan_0000000000000000" });
    expect(unknown.report.errors[0]?.code).toBe("CLI_PLAN_INVALID");

    const planned = await server.call("plan", target(manifest, "stale"));
    expect(planned.report.ok).toBe(true);
    writeFileSync(
      manifest,
      JSON.stringify({ tier: "hobby", project: { name: "quickstart" }, site: { dir: "site" } }),
    );
    const applied = await server.call("apply", { planId: planned.report.savedPlan?.id });
    expect(applied.result.isError).toBe(true);
    expect(applied.report.errors).toEqual([
      expect.objectContaining({
        code: "CONFLICT_PLAN_STALE",
        message: expect.stringMatching(/Nothing was changed or paid/),
      }),
    ]);
    expect(applied.report.savedPlan?.changed).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^manifest: its content changed/),
        "tier: planned payment subscribe prototype $0.10 on x402, now subscribe hobby $5.00 on x402",
      ]),
    );
    expect(applied.report.payments).toEqual([]);
    expect(await paidBy(2)).toEqual([]);
    expect(server.errors).toEqual([]);
  });

  test("error: tools that pay or delete are off without the server's flags: destroy and apply are refused and change nothing", {
    timeout: 300_000,
  }, async () => {
    const paying = await serve(3, ["--allow-apply", ...operator("flags")]);
    const manifest = appCopy(tmp);
    const planned = await paying.call("plan", target(manifest, "flags"));
    const applied = await paying.call("apply", { planId: planned.report.savedPlan?.id });
    expect(applied.report.ok, JSON.stringify(applied.report.errors)).toBe(true);
    const siteUrl = applied.report.outputs?.siteUrl as string;
    expect((await fetch(siteUrl)).status).toBe(200);

    const destroy = await paying.call("destroy", target(manifest, "flags"));
    expect(destroy.result.isError).toBe(true);
    expect(destroy.report.errors[0]).toMatchObject({
      code: "MCP_TOOL_DISABLED",
      message: expect.stringMatching(/--allow-destroy/),
    });

    const locked = await serve(3, operator("flags"));
    const again = await locked.call("plan", target(manifest, "flags"));
    for (const [name, args] of [
      ["apply", { planId: again.report.savedPlan?.id }],
      ["renew", target(manifest, "flags")],
    ] as const) {
      const refused = await locked.call(name, args);
      expect(refused.report.errors[0]).toMatchObject({
        code: "MCP_TOOL_DISABLED",
        message: expect.stringMatching(/--allow-apply/),
      });
    }
    expect((await fetch(siteUrl)).status).toBe(200);
    expect(await paidBy(3)).toHaveLength(1);
    const status = await locked.call("status", { manifest });
    expect(status.report.resources.map((r) => r.name).sort()).toEqual(["deployment", "project", "tier"]);
  });
});
