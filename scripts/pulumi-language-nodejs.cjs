#!/usr/bin/env node
// A Node.js language host for the Pulumi engine, for machines where the Go module
// github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 cannot be fetched (the Go
// module proxy reachable here refuses it). It serves the LanguageRuntime gRPC service with the
// @pulumi/pulumi SDK's own LanguageServer, the one the Automation API uses for inline programs, and
// runs the project's compiled JavaScript `main` (CommonJS or ESM) in this process.
//
// Differences from Pulumi's Go host: TypeScript mains are type-checked with the project's
// `typescript` (as ts-node does there) and then loaded through tsx (ESM) or transpiled (CommonJS)
// instead of ts-node; no dependency installation; no `pulumi about`/`convert`.
"use strict";
// Node's module compile cache (Node >= 22.1; absent before): compiled code is reused across runs
// (cli/compile-cache.ts says where it lives and how to turn it off).
require("node:module").enableCompileCache?.();
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

/**
 * tsx's ESM loader API, resolved from the project (or this script) through its exports map. Without
 * tsx, a RunError (Pulumi prints its message alone, no stack) saying what to install.
 */
function tsxApi(root, program) {
  let manifest;
  try {
    manifest = require.resolve("tsx/package.json", { paths: [root, __dirname] });
  } catch (error) {
    if (error.code !== "MODULE_NOT_FOUND") throw error;
    const { RunError } = load("@pulumi/pulumi/errors");
    throw new RunError(
      `${path.relative(root, program) || program} is an ES module TypeScript program, which this language host ` +
        `(pulumi-run402's, without Pulumi's Go pulumi-language-nodejs) runs through tsx, and tsx is not ` +
        `installed in ${root}. Install it there: npm install --save-dev tsx ` +
        "(or compile the program to JavaScript and point Pulumi.yaml's main at it).",
    );
  }
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

/**
 * Type-checks the TypeScript program before it runs, as Pulumi's Go host does through ts-node
 * (which reports every type error and runs nothing): the project's tsconfig.json (or TypeScript's
 * defaults), the project's own `typescript`. Off with PULUMI_NODEJS_TRANSPILE_ONLY=true, as there.
 * Without a `typescript` the project can resolve, nothing is checked (tsx runs ESM programs alone).
 */
function typeCheck(root, entry) {
  if (/^(1|true)$/i.test(process.env.PULUMI_NODEJS_TRANSPILE_ONLY ?? "")) return;
  let ts;
  try {
    ts = require(require.resolve("typescript", { paths: [root] }));
  } catch (error) {
    if (error.code === "MODULE_NOT_FOUND") return;
    throw error;
  }
  const configFile = ts.findConfigFile(root, ts.sys.fileExists, "tsconfig.json");
  let options = { noEmit: true };
  let files = [entry];
  if (configFile) {
    const read = ts.readConfigFile(configFile, ts.sys.readFile);
    const parsed = ts.parseJsonConfigFileContent(read.config ?? {}, ts.sys, path.dirname(configFile));
    options = { ...parsed.options, noEmit: true };
    files = parsed.fileNames.length > 0 ? parsed.fileNames : files;
  }
  const program = ts.createProgram(files, options);
  const diagnostics = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (diagnostics.length === 0) return;
  const text = ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => root,
    getNewLine: () => "\n",
  });
  const { RunError } = load("@pulumi/pulumi/errors");
  throw new RunError(
    `Unable to compile TypeScript (the program did not run; PULUMI_NODEJS_TRANSPILE_ONLY=true skips this check):\n${text}`,
  );
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
    if (/\.[cm]?tsx?$/.test(entry)) typeCheck(pwd, entry);
    if (/\.c?ts$/.test(entry) && isCommonJs(entry)) {
      // A CommonJS TypeScript program (Pulumi's default template) is required, so its require()
      // calls stay CommonJS, as under Pulumi's Go host.
      registerTypeScript(pwd);
      mod = require(entry);
    } else {
      // ESM TypeScript programs load through tsx's module hooks.
      if (/\.[cm]?tsx?$/.test(entry)) (await import(tsxApi(pwd, entry))).register();
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
  runPlugin,
};

// --- RunPlugin: policy packs (CrossGuard) and other Node plugins ---------------------------------
// What Pulumi's Go host does, read in pulumi/pulumi at 1b5949891b: RunPlugin in
// sdk/nodejs/cmd/pulumi-language-nodejs/main.go and the PolicyProxy in sdk/policy_proxy.go. The
// engine (sdk/go/common/resource/plugin/analyzer_plugin.go, v3.276.0) starts a Node policy pack
// through RunPlugin with kind "analyzer" and reads the plugin's port from its stdout. For a pack, the
// host first serves a small Analyzer of its own on that port: it answers Handshake, takes the stack's
// configuration from ConfigureStack, then starts `node @pulumi/pulumi/cmd/run-policy-pack` (resolved
// from the pack's own folder) with PULUMI_NODEJS_{ORGANIZATION,PROJECT,STACK,DRY_RUN} and PULUMI_CONFIG,
// reads the pack's port from its stdout and forwards every other call to it.
function runPlugin(call) {
  const fs = require("node:fs");
  const { spawn } = require("node:child_process");
  const langpb = load("@pulumi/pulumi/proto/language_pb.js");
  const request = call.request;
  const analyzer = request.getKind() === "analyzer";
  const info = request.getInfo?.();
  const dir = info?.getProgramDirectory?.() || request.getPwd() || process.cwd();
  let ended = false;
  const send = (set, data) => {
    if (ended || data.length === 0) return;
    const response = new langpb.RunPluginResponse();
    response[set](data);
    call.write(response);
  };
  const stdout = (data) => send("setStdout", data);
  const stderr = (data) => send("setStderr", data);
  const finish = (error) => {
    if (ended) return;
    ended = true;
    if (error) call.emit("error", { code: grpc.status.UNKNOWN, details: error.message ?? String(error) });
    else call.end();
  };

  const mod = analyzer
    ? "@pulumi/pulumi/cmd/run-policy-pack"
    : process.env.PULUMI_LANGUAGE_NODEJS_RUN_PATH || "@pulumi/pulumi/cmd/run-plugin";
  let runPath;
  try {
    runPath = require.resolve(mod, { paths: [dir] });
  } catch (error) {
    if (error.code !== "MODULE_NOT_FOUND") return finish(error);
    // The engine recognises this line and says the pack's dependencies are not installed.
    stderr(
      Buffer.from(
        `Error: Cannot find module '${mod}'\nIt looks like the Pulumi SDK has not been installed. Have you run npm install in ${dir}?\n`,
      ),
    );
    return finish(new Error(`cannot find ${mod} from ${dir}; run npm install in ${dir}`));
  }

  const list = request.getEnvList();
  const env = list.length > 0 ? {} : { ...process.env };
  for (const entry of list) {
    const at = entry.indexOf("=");
    if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  // Policy packs get the program directory last; other plugins first.
  const args = analyzer ? [runPath, ...request.getArgsList(), dir] : [runPath, dir, ...request.getArgsList()];

  let child;
  let proxy;
  call.on("cancelled", () => {
    ended = true;
    child?.kill("SIGKILL");
    proxy?.close();
  });

  const start = (onStdout) => {
    // Policy packs run in their own folder (as the old pulumi-analyzer-policy shim did); others in pwd.
    child = spawn(process.execPath, args, {
      cwd: analyzer ? dir : request.getPwd() || dir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", onStdout);
    child.stderr.on("data", stderr);
    child.on("error", (error) => finish(error));
    child.on("close", (code, signal) => {
      proxy?.close();
      if (code === 0) finish();
      else finish(new Error(`Program exited with non-zero exit code: ${code ?? signal}`));
    });
  };

  if (!analyzer) {
    start(stdout);
    return;
  }
  if (!fs.existsSync(dir)) return finish(new Error(`policy pack folder ${dir} does not exist`));
  proxy = policyProxy((config) => {
    if (config) {
      const put = (key, value) => {
        if (value) env[key] = value;
      };
      put("PULUMI_NODEJS_ORGANIZATION", config.getOrganization());
      put("PULUMI_NODEJS_PROJECT", config.getProject());
      put("PULUMI_NODEJS_STACK", config.getStack());
      put("PULUMI_NODEJS_DRY_RUN", String(config.getDryRun()));
      put("PULUMI_CONFIG", JSON.stringify(Object.fromEntries(config.getConfigMap().toObject())));
    }
    let pending = "";
    let attached = false;
    start((data) => {
      if (attached) return stdout(data);
      // The pack's first stdout line is its port; the rest is output.
      pending += data.toString("utf8");
      const newline = pending.indexOf("\n");
      if (newline < 0) return;
      attached = true;
      const port = Number.parseInt(pending.slice(0, newline), 10);
      if (!Number.isInteger(port)) {
        proxy.fail(new Error(`could not read policy pack port from "${pending.slice(0, newline)}"`));
        return;
      }
      stdout(Buffer.from(pending.slice(newline + 1)));
      proxy.attach(port, config);
    });
  });
  proxy.listen((error, port) => {
    if (error) return finish(error);
    // The engine reads the proxy's port from the first line of the plugin's stdout.
    stdout(Buffer.from(`${port}\n`));
  });
}

/**
 * An Analyzer served until the real pack attaches (sdk/policy_proxy.go): Handshake is answered here,
 * ConfigureStack's request starts the pack (`onConfig`), and any other call first starts it with no
 * configuration, then waits for the pack and forwards.
 */
function policyProxy(onConfig) {
  const analyzerGrpc = load("@pulumi/pulumi/proto/analyzer_grpc_pb.js");
  const analyzerPb = load("@pulumi/pulumi/proto/analyzer_pb.js");
  let configured = false;
  const configure = (config) => {
    if (configured) return;
    configured = true;
    onConfig(config);
  };
  let settle;
  const client = new Promise((resolve, reject) => {
    settle = { resolve, reject };
  });
  client.catch(() => {});
  const forward = (method) => (call, callback) => {
    configure(null);
    client.then(
      (c) => c[method](call.request, callback),
      (error) =>
        callback({ code: grpc.status.UNAVAILABLE, details: `policy pack not started: ${error.message}` }),
    );
  };
  const server = new grpc.Server({ "grpc.max_receive_message_length": 400 * 1024 * 1024 });
  server.addService(analyzerGrpc.AnalyzerService, {
    handshake: (_call, callback) => callback(null, new analyzerPb.AnalyzerHandshakeResponse()),
    configureStack: (call, callback) => {
      configure(call.request);
      callback(null, new analyzerPb.AnalyzerStackConfigureResponse());
    },
    analyze: forward("analyze"),
    analyzeStack: forward("analyzeStack"),
    remediate: forward("remediate"),
    getAnalyzerInfo: forward("getAnalyzerInfo"),
    getPluginInfo: forward("getPluginInfo"),
    configure: forward("configure"),
    cancel: forward("cancel"),
  });
  return {
    listen(callback) {
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), callback);
    },
    attach(port, config) {
      const c = new analyzerGrpc.AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": 400 * 1024 * 1024,
      });
      if (!config) return settle.resolve(c);
      // Forward the stack configuration; older packs without ConfigureStack are fine.
      c.configureStack(config, (error) => {
        if (error && error.code !== grpc.status.UNIMPLEMENTED) {
          settle.reject(new Error(`policy pack configuration failed: ${error.details ?? error.message}`));
        } else settle.resolve(c);
      });
    },
    fail(error) {
      settle.reject(error);
    },
    close() {
      server.forceShutdown();
    },
  };
}

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
