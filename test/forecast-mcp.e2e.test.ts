/**
 * The MCP tool `forecast` of the built CLI (`run402-pulumi mcp`): read-only, and an agent may give it
 * only a horizon and a manifest inside the folder the server serves. No sandbox and no network: the
 * calls here end before a price list would be read.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuilt, childEnv, copyQuickstart, definedEnv, main } from "~test/cli-harness.js";
import type { Report } from "../cli/report.js";

let tmp: string;
let served: string;
let client: Client;

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-forecast-mcp-"));
  served = join(tmp, "served");
  copyQuickstart(join(served, "app"));
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [main, "mcp"],
    env: definedEnv(childEnv(tmp)),
    cwd: served,
    stderr: "pipe",
  });
  client = new Client({ name: "forecast-e2e", version: "1.0.0" });
  await client.connect(transport);
});
afterAll(async () => {
  await client?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function call(args: Record<string, unknown>): Promise<Report> {
  const result = (await client.callTool({ name: "forecast", arguments: args })) as CallToolResult;
  return result.structuredContent as unknown as Report;
}

describe("MCP forecast", () => {
  test("behavior: listed read-only, taking only days and manifest", async () => {
    const { tools } = await client.listTools();
    const tool = tools.find((t) => t.name === "forecast");
    expect(tool?.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false });
    expect(Object.keys(tool?.inputSchema.properties ?? {}).sort()).toEqual(["days", "manifest"]);
  });

  test("error: a manifest outside the served folder is refused; a stack that does not exist is named", async () => {
    const outside = await call({ manifest: "../../elsewhere/app.json" });
    expect(outside.ok).toBe(false);
    expect(outside.errors[0]!.code).toBe("MCP_PATH_OUTSIDE_ROOT");

    const missing = await call({ manifest: "app", days: 7 });
    expect(missing.command).toBe("forecast");
    expect(missing.errors[0]!.code).toBe("CLI_STACK_NOT_FOUND");

    const wide = (await client.callTool({ name: "forecast", arguments: { days: 0 } })) as CallToolResult;
    expect(wide.isError).toBe(true);
  });
});
