/**
 * Through the CLI (the built `run402-pulumi`, the real engine) against the sandbox and a second
 * origin on 127.0.0.1: a stack's project keys are sent only to the API origin that issued them. A
 * run that names another `run402:apiBase` (refresh, apply, destroy) is refused with
 * CONFIG_API_ORIGIN_CHANGED and that origin never receives the anon or service key.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import { appCopy, assertBuilt, report, runCli, sandboxSettings, settingFlags } from "~test/cli-harness.js";
import { type Origin, startOrigin } from "~test/hostile.js";
import { startTestSandbox, type TestSandbox } from "~test/sandbox.js";
import type { Report } from "../cli/report.js";

let sandbox: TestSandbox;
let other: Origin;
let tmp: string;

beforeAll(async () => {
  assertBuilt();
  tmp = mkdtempSync(join(tmpdir(), "run402-origin-"));
  [sandbox, other] = await Promise.all([startTestSandbox({ walletCount: 1 }), startOrigin()]);
  other.handle(() => ({ status: 404, body: { code: "NOT_FOUND", message: "nothing here" } }));
});
afterAll(async () => {
  await Promise.all([sandbox?.close(), other?.close()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The CLI to its end with the sandbox wallet's key, and its JSON report. */
async function cli(args: string[]): Promise<{ code: number; report: Report }> {
  const run = await runCli(tmp, args, { RUN402_PRIVATE_KEY: sandbox.wallets[0]!.privateKey });
  return { code: run.code, report: report(run) };
}

/** The sandbox's settings, with `apiBase` as the API. */
function flags(apiBase: string): string[] {
  return settingFlags({ ...sandboxSettings(sandbox), apiBase, journalPath: join(tmp, "journal.json") });
}

test("error: project keys go only to the origin that issued them: refresh, apply and destroy naming another apiBase are refused (CONFIG_API_ORIGIN_CHANGED) and that origin never sees a key", {
  timeout: 600_000,
}, async () => {
  const manifest = appCopy(tmp);
  const created = await cli(["apply", "-m", manifest, "--yes", "--json", ...flags(sandbox.apiBase)]);
  expect(created.report.ok, JSON.stringify(created.report.errors)).toBe(true);

  for (const command of [
    ["refresh", "-m", manifest, "--json"],
    ["apply", "-m", manifest, "--yes", "--json"],
    ["destroy", "-m", manifest, "--yes", "--json"],
  ]) {
    const moved = await cli([...command, ...flags(other.url)]);
    expect(moved.report.ok, command[0]).toBe(false);
    // apply asks the other origin about the wallet's tier first (signed in, no key), which it cannot answer.
    if (command[0] === "apply" && moved.report.errors.every((e) => e.code === "RUN402_API_ERROR")) continue;
    const refusal = moved.report.errors.find((e) => e.code === "CONFIG_API_ORIGIN_CHANGED");
    expect(refusal, `${command[0]}: ${JSON.stringify(moved.report.errors)}`).toBeDefined();
    expect(refusal?.message).toContain(new URL(sandbox.apiBase).origin);
    expect(refusal?.message).toContain(other.url);
  }
  // The other origin may have been asked about the wallet's tier (signed in), never with a project key.
  const keyed = other.calls.filter(
    (c) => c.headers.apikey !== undefined || /^bearer /i.test(c.headers.authorization ?? ""),
  );
  expect(keyed).toEqual([]);
  expect(other.calls.filter((c) => /projects|deploy|secrets|apply|rest/.test(c.path))).toEqual([]);

  // Against the origin that issued the keys, the stack works as before (and destroy deletes it).
  const back = await cli(["destroy", "-m", manifest, "--yes", "--json", ...flags(sandbox.apiBase)]);
  expect(back.report.ok, JSON.stringify(back.report.errors)).toBe(true);
});
