#!/usr/bin/env node
// A Node.js language host for the Pulumi engine, for machines where the Go module
// github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 cannot be fetched (the Go
// module proxy reachable here refuses it). It serves the LanguageRuntime gRPC service with the
// @pulumi/pulumi SDK's own LanguageServer, the one the Automation API uses for inline programs, and
// runs the project's compiled JavaScript `main` (CommonJS or ESM) in this process.
//
// Differences from Pulumi's Go host: TypeScript mains are loaded through tsx (where the project
// can resolve it) instead of ts-node; no dependency installation; no `pulumi about`/`convert`.
"use strict";
const path = require("node:path");
const { pathToFileURL } = require("node:url");

// Nothing outlives its run: this host ends itself when the engine that started it is gone
// (re-parented) or when the run402-pulumi CLI that started the run is (RUN402_RUN_OWNER,
// `<pid>:<start time>`, inherited through the engine; see pulumi-resource-pulumi-nodejs.cjs).
function ownerAlive(pid, start) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (error.code === "ESRCH") return false;
  }
  try {
    const stat = require("node:fs").readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return false;
    return start === "" || fields[19] === start;
  } catch {
    return !require("node:fs").existsSync("/proc/self/stat");
  }
}
{
  const parent = process.ppid;
  const owner = /^(\d+):(\d*)$/.exec(process.env.RUN402_RUN_OWNER ?? "");
  setInterval(() => {
    const ownerGone = owner !== null && !ownerAlive(Number(owner[1]), owner[2]);
    if (process.ppid === parent && !ownerGone) return;
    process.stderr.write(
      `pulumi-language-nodejs: ${ownerGone ? `the run402-pulumi run that started it (pid ${owner[1]})` : "the engine that started it"} is gone; exiting\n`,
    );
    process.exit(1);
  }, 500).unref();
}

function load(request) {
  // Prefer the project's own copy of the SDK; fall back to ours.
  for (const from of [process.cwd(), __dirname]) {
    try {
      return require(require.resolve(request, { paths: [from] }));
    } catch (error) {
      if (error.code !== "MODULE_NOT_FOUND") throw error;
    }
  }
  throw new Error(`pulumi-language-nodejs: cannot find ${request}; run npm install in the project`);
}

const grpc = load("@grpc/grpc-js");
const { LanguageServer } = load("@pulumi/pulumi/automation/server.js");
const langrpc = load("@pulumi/pulumi/proto/language_grpc_pb.js");

// The engine starts plugins as `<plugin> [flags] <engine-address>`.
const engineAddress =
  process.argv
    .slice(2)
    .filter((a) => !a.startsWith("-"))
    .pop() ?? "";

/** tsx's ESM loader API, resolved from the project (or this script) through its exports map. */
function tsxApi(root) {
  const manifest = require.resolve("tsx/package.json", { paths: [root, __dirname] });
  let entry = require(manifest).exports?.["./esm/api"];
  while (entry && typeof entry === "object") entry = entry.import ?? entry.default;
  if (typeof entry !== "string")
    throw new Error("tsx has no ./esm/api export; install tsx 4 or compile the program");
  return pathToFileURL(path.join(path.dirname(manifest), entry)).href;
}

/** Whether `file` is CommonJS by its extension or its nearest package.json's `type`. */
function isCommonJs(file) {
  if (/\.c[jt]s$/.test(file)) return true;
  if (/\.m[jt]s$/.test(file)) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json");
    if (require("node:fs").existsSync(manifest))
      return JSON.parse(require("node:fs").readFileSync(manifest, "utf8")).type !== "module";
    if (path.dirname(dir) === dir) return true;
  }
}

/**
 * Compiles the project's own `.ts` files to CommonJS with its TypeScript (transpile only, as
 * ts-node does for Pulumi's Go host) when `require` loads them; packages are loaded as they are.
 */
function registerTypeScript(root) {
  const ts = require(require.resolve("typescript", { paths: [root, __dirname] }));
  const fs = require("node:fs");
  require.extensions[".ts"] = (module, filename) => {
    const { outputText } = ts.transpileModule(fs.readFileSync(filename, "utf8"), {
      fileName: filename,
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
        sourceMap: false,
      },
    });
    module._compile(outputText, filename);
  };
}

function programFor(request) {
  const info = request.getInfo?.();
  // Pulumi runs programs from the project folder (where Pulumi.yaml is): relative paths in the
  // program resolve from there, whatever folder `main` points into.
  const pwd = info?.getRootDirectory?.() || request.getPwd() || process.cwd();
  const root = info?.getProgramDirectory?.() || pwd;
  const main = info?.getEntryPoint?.() || request.getProgram() || ".";
  return async () => {
    process.chdir(pwd);
    let entry = path.resolve(root, main);
    try {
      entry = require.resolve(entry);
    } catch {
      // An ESM-only package folder: let import() resolve it.
    }
    let mod;
    if (/\.c?ts$/.test(entry) && isCommonJs(entry)) {
      // A CommonJS TypeScript program (Pulumi's default template) is required, so its require()
      // calls stay CommonJS, as under Pulumi's Go host.
      registerTypeScript(pwd);
      mod = require(entry);
    } else {
      // ESM TypeScript programs load through tsx's module hooks.
      if (/\.[cm]?tsx?$/.test(entry)) (await import(tsxApi(pwd))).register();
      mod = await import(pathToFileURL(entry).href);
    }
    const exported = mod.default ?? mod;
    return typeof exported === "function" ? await exported() : exported;
  };
}

const service = {
  getRequiredPlugins(call, callback) {
    new LanguageServer(undefined).getRequiredPlugins(call, callback);
  },
  getPluginInfo(call, callback) {
    new LanguageServer(undefined).getPluginInfo(call, callback);
  },
  run(call, callback) {
    const request = call.request;
    // LanguageServer takes the engine address from the first program argument.
    request.setArgsList([engineAddress, ...request.getArgsList()]);
    return new LanguageServer(programFor(request)).run(call, callback);
  },
};

const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
server.addService(langrpc.LanguageRuntimeService, service);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    console.error(error);
    process.exit(1);
  }
  // The engine reads the port from the first line of stdout.
  process.stdout.write(`${port}\n`);
});
