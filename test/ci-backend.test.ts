/**
 * In CI a file backend lives on a runner that is thrown away: the CLI refuses it (exit 2,
 * CLI_BACKEND_NOT_DURABLE) before anything is created, unless told so. The decision for every command
 * and flag, and the refusal through the built CLI as a process (its exit code, one JSON document, no
 * state folder written).
 */
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { assertBuilt, report, runCli } from "~test/cli-harness.js";
import { repoRoot } from "~test/engine.js";
import { parseCli } from "../cli/args.js";
import { runnerLocalBackend, runnerLocalJournal } from "../cli/run.js";

const tmp = mkdtempSync(join(tmpdir(), "run402-ci-backend-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function options(argv: string[]) {
  const parsed = parseCli(argv);
  if (parsed.kind !== "run") throw new Error(`expected run, got ${JSON.stringify(parsed)}`);
  return parsed.options;
}

const refused = (argv: string[], env: NodeJS.ProcessEnv) => runnerLocalBackend(options(argv), env)?.code;

describe("a file backend in CI", () => {
  test("error: refused in CI for every command that changes or plans, with the default or a file:// backend", () => {
    for (const command of ["plan", "apply", "renew", "refresh", "destroy", "reconcile"]) {
      expect(refused([command], { CI: "true" }), command).toBe("CLI_BACKEND_NOT_DURABLE");
      expect(refused([command, "--backend", "file:///var/state"], { CI: "1" }), command).toBe(
        "CLI_BACKEND_NOT_DURABLE",
      );
    }
    // A production API named explicitly is no excuse.
    expect(refused(["apply", "-c", "run402:apiBase=https://api.run402.com"], { CI: "true" })).toBe(
      "CLI_BACKEND_NOT_DURABLE",
    );
  });

  test("behavior: allowed outside CI, with a durable backend, when told, for a local sandbox, and for validate and status", () => {
    expect(refused(["apply"], {})).toBeUndefined();
    expect(refused(["apply"], { CI: "false" })).toBeUndefined();
    expect(refused(["apply"], { CI: "0" })).toBeUndefined();
    expect(refused(["apply", "--backend", "s3://bucket/run402"], { CI: "true" })).toBeUndefined();
    expect(refused(["apply", "--allow-file-backend"], { CI: "true" })).toBeUndefined();
    expect(refused(["apply", "--sandbox"], { CI: "true" })).toBeUndefined();
    expect(refused(["apply", "-c", "run402:apiBase=http://127.0.0.1:4020"], { CI: "true" })).toBeUndefined();
    expect(refused(["validate"], { CI: "true" })).toBeUndefined();
    expect(refused(["status"], { CI: "true" })).toBeUndefined();
  });

  test("error: an empty --backend (an unset CI variable) is a usage error, not the default file backend", () => {
    const parsed = parseCli(["apply", "--backend", ""]);
    expect(parsed.kind).toBe("error");
    if (parsed.kind === "error") expect(parsed.message).toMatch(/--backend needs a backend URL/);
  });

  test("error: the built CLI exits 2 with CLI_BACKEND_NOT_DURABLE and writes no state", async () => {
    assertBuilt();
    const app = join(tmp, "app");
    cpSync(join(repoRoot, "examples", "quickstart"), app, { recursive: true });
    const run = await runCli(
      tmp,
      ["apply", "--manifest", app, "--yes", "--json", "-c", "run402:apiBase=https://run402.invalid"],
      { CI: "true" },
      { timeout: 60_000 },
    );
    const { errors } = report(run);
    expect(run.code).toBe(2);
    expect(errors.map((e) => e.code)).toEqual(["CLI_BACKEND_NOT_DURABLE"]);
    expect(errors[0]?.message).toMatch(/--backend .*durable.*--allow-file-backend/s);
    expect(readdirSync(app)).not.toContain(".run402");
  });
});

describe("a payment journal on the runner in CI", () => {
  const journal = (argv: string[], env: NodeJS.ProcessEnv, stackConfig: Record<string, string> = {}) =>
    runnerLocalJournal(options(argv), stackConfig, env)?.code;

  test("error: refused in CI for every paying command, with a durable backend but a journal on this machine", () => {
    for (const command of ["apply", "renew", "reconcile"]) {
      expect(journal([command, "--backend", "s3://bucket/run402"], { CI: "true" }), command).toBe(
        "CLI_JOURNAL_NOT_DURABLE",
      );
      expect(
        journal([command, "-c", "run402:journalPath=/runner/journal.jsonl"], { CI: "1" }, {}),
        command,
      ).toBe("CLI_JOURNAL_NOT_DURABLE");
    }
  });

  test("behavior: allowed with a shared journal, a postgres backend, when told, for a local sandbox, outside CI, and for commands that do not pay", () => {
    expect(journal(["apply", "-c", "run402:journal=postgres://db/run402"], { CI: "true" })).toBeUndefined();
    expect(journal(["apply"], { CI: "true" }, { "run402:journal": "postgres://db/run402" })).toBeUndefined();
    expect(journal(["apply", "--backend", "postgres://db/state"], { CI: "true" })).toBeUndefined();
    expect(journal(["apply", "--allow-local-journal"], { CI: "true" })).toBeUndefined();
    expect(journal(["apply", "--sandbox"], { CI: "true" })).toBeUndefined();
    expect(journal(["apply", "-c", "run402:apiBase=http://127.0.0.1:4020"], { CI: "true" })).toBeUndefined();
    expect(journal(["apply"], { CI: "false" })).toBeUndefined();
    for (const command of ["plan", "validate", "status", "destroy"])
      expect(journal([command], { CI: "true" }), command).toBeUndefined();
  });
});
