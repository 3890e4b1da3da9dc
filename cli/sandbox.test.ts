import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, test } from "vitest";
import { loadSandbox, resolveSandbox, SandboxMissingError } from "./sandbox.js";

const dir = mkdtempSync(join(tmpdir(), "run402-sandbox-lookup-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A project folder with a package `name` installed in its node_modules. */
function projectWith(name: string): string {
  const project = join(dir, name.replace(/\W/g, "_"));
  const pkg = join(project, "node_modules", ...name.split("/"));
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    join(pkg, "package.json"),
    JSON.stringify({ name, type: "module", exports: { ".": { default: "./index.js" } } }),
  );
  writeFileSync(join(pkg, "index.js"), "export async function startSandbox() { return 'started'; }\n");
  return project;
}

describe("--sandbox's package lookup", () => {
  test("behavior: a sandbox installed in the project (not beside pulumi-run402) is found there", async () => {
    const name = "@run402-test/sandbox-in-project";
    const project = projectWith(name);
    expect(resolveSandbox(project, name)).toBe(
      pathToFileURL(join(project, "node_modules", "@run402-test", "sandbox-in-project", "index.js")).href,
    );
    const module = await loadSandbox(project, "9.9.9", name);
    expect(await module.startSandbox({ stateDir: dir })).toBe("started");
  });

  test("error: not installed anywhere is CLI_SANDBOX_NOT_INSTALLED, naming the install command", async () => {
    const failure = await loadSandbox(dir, "1.2.3", "@run402-test/not-installed").catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(SandboxMissingError);
    expect(failure).toMatchObject({
      code: "CLI_SANDBOX_NOT_INSTALLED",
      shortMessage: expect.stringContaining("npm install --save-dev @pulumi-run402/sandbox@1.2.3"),
    });
  });
});
