/**
 * The offline language host (scripts/pulumi-language-nodejs.cjs) as a user's machine has it: copied
 * into an engine folder outside this repository (what `run402-pulumi engine` does for an installed
 * package), serving a program whose project has only what it installed. Run through the real engine.
 */
import { execFile } from "node:child_process";
import { copyFileSync, linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  type CliResult,
  createEngineWorkspace,
  type EngineWorkspace,
  engineBin,
  repoRoot,
} from "~test/engine.js";

let engine: EngineWorkspace;
let dir: string;
let bin: string;

beforeAll(async () => {
  engine = await createEngineWorkspace();
  dir = mkdtempSync(join(engine.dir, "host-"));
  // The user's engine folder: the engine, and copies of the two Node plugins (no tsx beside them).
  bin = join(dir, "bin");
  mkdirSync(bin);
  // A hard link, as engine.sh places it: the engine takes the plugins beside its own (real) path first.
  linkSync(join(engineBin, "pulumi"), join(bin, "pulumi"));
  for (const name of ["pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"]) {
    copyFileSync(join(repoRoot, "scripts", `${name}.cjs`), join(bin, name));
  }
});
afterAll(() => {
  engine?.cleanup();
});

/** A program folder with `@pulumi/pulumi` installed (linked from this repository) and nothing else. */
function programFolder(name: string, packageJson: object, index: string, extra: string[] = []): string {
  const folder = join(dir, name);
  mkdirSync(join(folder, "node_modules"), { recursive: true });
  for (const scope of ["@pulumi", "@grpc", ...extra]) {
    symlinkSync(join(repoRoot, "node_modules", scope), join(folder, "node_modules", scope));
  }
  writeFileSync(
    join(folder, "package.json"),
    `${JSON.stringify({ name, main: "index.ts", ...packageJson })}\n`,
  );
  writeFileSync(join(folder, "Pulumi.yaml"), `name: ${name}\nruntime: nodejs\n`);
  writeFileSync(join(folder, "index.ts"), index);
  return folder;
}

/** Runs this folder's engine (`bin/pulumi`) in `folder`; never throws on exit codes. */
function pulumi(folder: string, args: string[], extra: Record<string, string> = {}): Promise<CliResult> {
  const env = { ...process.env, ...engine.env, PATH: `${bin}:${process.env.PATH ?? ""}`, ...extra };
  return new Promise((done) =>
    execFile(
      join(bin, "pulumi"),
      [...args, "--non-interactive"],
      { cwd: folder, env },
      (error, stdout, stderr) =>
        done({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }),
    ),
  );
}

async function preview(folder: string, env: Record<string, string> = {}) {
  const init = await pulumi(folder, ["stack", "select", "--create", "dev"]);
  expect(init.code, init.stderr).toBe(0);
  rmSync(join(folder, "Pulumi.dev.yaml"), { force: true });
  return pulumi(folder, ["preview"], env);
}

describe("the offline language host", () => {
  test("error: an ES module TypeScript program without tsx says what to install, with no stack trace", async () => {
    const folder = programFolder("esm-no-tsx", { type: "module" }, "export const answer: number = 42;\n");
    const result = await preview(folder);
    const output = result.stdout + result.stderr;
    expect(result.code, output).not.toBe(0);
    expect(output).toContain("index.ts is an ES module TypeScript program");
    expect(output).toContain("npm install --save-dev tsx");
    expect(output).not.toContain("Cannot find module 'tsx/package.json'");
    expect(output).not.toMatch(/\n\s+at .*\(/);
  }, 180_000);

  test("error: a TypeScript program with a type error is refused before it runs, as Pulumi's ts-node does", async () => {
    // Pulumi's default template (CommonJS) with its tsconfig, and a type error it would report.
    const folder = programFolder(
      "cjs-type-error",
      {},
      'const answer: number = "forty-two";\nconsole.log("the program ran");\nexport = { answer };\n',
      ["typescript"],
    );
    writeFileSync(
      join(folder, "tsconfig.json"),
      `${JSON.stringify({ compilerOptions: { strict: true, module: "commonjs", target: "es2020" }, files: ["index.ts"] })}\n`,
    );
    const refused = await preview(folder);
    const output = refused.stdout + refused.stderr;
    expect(refused.code, output).not.toBe(0);
    expect(output).toContain("Unable to compile TypeScript");
    expect(output).toContain("index.ts(1,7): error TS2322");
    expect(output).not.toContain("the program ran");
    // Pulumi's switch for transpiling only turns the check off.
    const transpiled = await preview(folder, { PULUMI_NODEJS_TRANSPILE_ONLY: "true" });
    expect(transpiled.code, transpiled.stdout + transpiled.stderr).toBe(0);
    expect(transpiled.stdout).toContain("the program ran");
  }, 180_000);
});
