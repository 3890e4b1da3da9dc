/**
 * A Pulumi program wired to a running sandbox by one command, `run402-sandbox --pulumi-config --set`,
 * through the real engine: the stack's settings are the sandbox's, `pulumi up` pays its tier over
 * MPP on the sandbox's Tempo chain; and a stack missing run402:tempoRpcUrl fails at `pulumi preview`,
 * naming the key, before any request (never through Tempo's public RPC).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createEngineWorkspace, type EngineWorkspace, pulumiCli, repoRoot } from "~test/engine.js";

let engine: EngineWorkspace;
let program: string;
let sandbox: ChildProcess | undefined;

beforeAll(async () => {
  engine = await createEngineWorkspace();
  // A user's program folder: Pulumi.yaml, index.ts, and the packages (this repository's).
  program = mkdtempSync(join(engine.dir, "program-"));
  symlinkSync(join(repoRoot, "node_modules"), join(program, "node_modules"));
  writeFileSync(join(program, "Pulumi.yaml"), "name: sandbox-recipe\nruntime: nodejs\nmain: index.ts\n");
  writeFileSync(
    join(program, "index.ts"),
    [
      'import { Project, Tier } from "pulumi-run402";',
      'const tier = new Tier("tier", { tier: "prototype" });',
      'const project = new Project("api", { name: "recipe" }, { dependsOn: [tier] });',
      "export const projectId = project.projectId;",
      'export const settledOn = tier.lastSettlement.apply((s) => s?.rail ?? "nothing paid");',
      "",
    ].join("\n"),
  );
});
afterAll(async () => {
  if (sandbox && sandbox.exitCode === null) {
    const exited = new Promise((resolve) => sandbox?.once("exit", resolve));
    sandbox.kill("SIGTERM");
    await exited;
  }
  engine?.cleanup();
});

/** Starts `run402-sandbox --pulumi-config --set --rail mpp` in the program's folder; resolves with the lines it printed. */
function startSandboxForStack(stateDir: string): Promise<{ lines: string[]; stderr: () => string }> {
  const proc = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(repoRoot, "packages", "sandbox", "main.ts"),
      "--state-dir",
      stateDir,
      "--pulumi-config",
      "--set",
      "--rail",
      "mpp",
    ],
    { cwd: program, env: { ...process.env, ...engine.env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  sandbox = proc;
  let out = "";
  let err = "";
  return new Promise((resolve, reject) => {
    proc.once("exit", (code) => reject(new Error(`run402-sandbox exited ${code}: ${err}`)));
    // "ready" (stderr) comes after the settings are set and printed (stdout): the two pipes may be
    // read in either order, so wait for both.
    const done = () => {
      if (err.includes("] ready at ") && out.split("\n").length > 6)
        resolve({ lines: out.trim().split("\n"), stderr: () => err });
    };
    proc.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      done();
    });
    proc.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      done();
    });
  });
}

describe("run402-sandbox --pulumi-config", () => {
  test("behavior: one command wires a stack to the sandbox; a missing tempoRpcUrl fails at preview, naming it", async () => {
    const cli = (...args: string[]) => pulumiCli(engine, args, { cwd: program });
    const init = await cli("stack", "init", "dev");
    expect(init.code, init.stderr).toBe(0);

    const { lines } = await startSandboxForStack(join(engine.dir, "sandbox-state"));
    const keys = [
      "run402:apiBase",
      "run402:baseRpcUrl",
      "run402:tempoRpcUrl",
      "run402:rail",
      "run402:allowedRecipients",
      "run402:privateKey",
    ];
    expect(lines.map((line) => line.split(" ").at(-2))).toEqual(keys);
    expect(lines.find((line) => line.includes("run402:privateKey"))).toMatch(
      /^pulumi config set --secret run402:privateKey 0x[0-9a-f]{64}$/,
    );
    const value = (key: string) =>
      lines
        .find((line) => line.split(" ").at(-2) === key)
        ?.split(" ")
        .at(-1);
    const apiBase = value("run402:apiBase") as string;

    // --set put them on the stack (the key encrypted).
    const config = await cli("config", "--json");
    expect(config.code, config.stderr).toBe(0);
    const set = JSON.parse(config.stdout) as Record<string, { value?: string; secret: boolean }>;
    for (const key of keys.filter((k) => k !== "run402:privateKey"))
      expect(set[key]?.value, key).toBe(value(key));
    expect(set["run402:privateKey"]).toMatchObject({ secret: true });
    expect(set["run402:rail"]?.value).toBe("mpp");

    // Without run402:tempoRpcUrl, an MPP stack against the local sandbox stops at preview.
    expect((await cli("config", "rm", "run402:tempoRpcUrl")).code).toBe(0);
    const preview = await cli("preview");
    expect(preview.code).not.toBe(0);
    const said = preview.stdout + preview.stderr;
    expect(said).toContain("[CONFIG_INVALID]");
    expect(said).toContain("run402:tempoRpcUrl is not set");
    expect(said).toContain("npx run402-sandbox --pulumi-config");
    // Nothing was asked of the sandbox, nothing paid.
    const requests = (await (await fetch(`${apiBase}/_sandbox/requests`)).json()) as { requests: unknown[] };
    expect(requests.requests).toEqual([]);

    // With the printed line run again, `pulumi up` pays over MPP on the sandbox's chain.
    const tempo = await cli("config", "set", "run402:tempoRpcUrl", value("run402:tempoRpcUrl") as string);
    expect(tempo.code, tempo.stderr).toBe(0);
    const up = await cli("up", "--yes", "--skip-preview");
    expect(up.code, up.stdout + up.stderr).toBe(0);
    const outputs = await cli("stack", "output", "--json");
    expect(JSON.parse(outputs.stdout)).toMatchObject({
      settledOn: "mpp",
      projectId: expect.stringMatching(/^prj_/),
    });
    const ledger = (await (await fetch(`${apiBase}/_sandbox/ledger`)).json()) as {
      payments: { rail: string }[];
    };
    expect(ledger.payments.map((p) => p.rail)).toEqual(["mpp"]);
  });
});
