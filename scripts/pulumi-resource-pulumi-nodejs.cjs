#!/usr/bin/env node
// The plugin the Pulumi engine starts for dynamic resources (`pulumi-nodejs:dynamic/*`), as one Node
// process. Like the shell script @pulumi/pulumi ships under this name, it serves @pulumi/pulumi's
// dynamic-provider resolved from the folder the engine starts it in (the program's `main`), else
// from this script's own installation; unlike it, it loads that module here instead of starting a
// second `node -e require.resolve(…)` to find it and a third process to run it.
//
// It also defers the SDK's heaviest import. The dynamic-provider takes one value from
// `@pulumi/pulumi/runtime` (its index), `grpcChannelOptions`, whose home is `runtime/settings`; the
// index itself eagerly loads closure serialization (TypeScript) and the Automation API, most of the
// process's start-up. Until anything asks for more, that index is a stand-in answering
// `grpcChannelOptions` from `runtime/settings` and loading the real index on first use of anything
// else, so behaviour is unchanged. The stand-in is used only when the module's source shows that it
// reads nothing else from the index (a different SDK version falls back to the plain load).
"use strict";
// Node's module compile cache (Node >= 22.1; absent before): compiled code is reused across runs
// (cli/compile-cache.ts says where it lives and how to turn it off).
require("node:module").enableCompileCache?.();
const { existsSync, readFileSync } = require("node:fs");
const { dirname, join } = require("node:path");

// Nothing outlives its run. The engine starts this plugin in a process group of its own, so a
// SIGKILL of the run402-pulumi CLI's group does not reach it: it ends itself when the engine that
// started it is gone (re-parented) or when the CLI that started the run is (RUN402_RUN_OWNER,
// `<pid>:<start time>`, set by the CLI and inherited through the engine; a reused pid has another
// start time, and a zombie is gone).
function ownerAlive(pid, start) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (error.code === "ESRCH") return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return false;
    return start === "" || fields[19] === start;
  } catch {
    return !existsSync("/proc/self/stat"); // no /proc: the kill probe said alive
  }
}
function watchRun(name) {
  const parent = process.ppid;
  const owner = /^(\d+):(\d*)$/.exec(process.env.RUN402_RUN_OWNER ?? "");
  setInterval(() => {
    const ownerGone = owner !== null && !ownerAlive(Number(owner[1]), owner[2]);
    if (process.ppid === parent && !ownerGone) return;
    process.stderr.write(
      `${name}: ${ownerGone ? `the run402-pulumi run that started it (pid ${owner[1]})` : "the engine that started it"} is gone; exiting\n`,
    );
    process.exit(1);
  }, 500).unref();
}
watchRun("pulumi-resource-pulumi-nodejs");

function resolveFrom(dir) {
  try {
    return require.resolve("@pulumi/pulumi/cmd/dynamic-provider", { paths: [dir] });
  } catch (error) {
    if (error.code !== "MODULE_NOT_FOUND") throw error;
    return undefined;
  }
}

const entry = resolveFrom(process.cwd()) ?? resolveFrom(__dirname);
if (!entry) {
  process.stderr.write(
    `pulumi-resource-pulumi-nodejs: @pulumi/pulumi is not installed where the program runs (${process.cwd()})\n`,
  );
  process.exit(1);
}

function deferRuntimeIndex(sdk) {
  const source = readFileSync(entry, "utf8");
  const used = new Set([...source.matchAll(/\bruntime_1\.(\w+)/g)].map((m) => m[1]));
  if (used.size !== 1 || !used.has("grpcChannelOptions")) return;
  const index = require.resolve(join(sdk, "runtime", "index.js"));
  if (require.cache[index]) return;
  let real;
  const load = () => {
    if (!real) {
      delete require.cache[index];
      real = require(index);
    }
    return real;
  };
  const standIn = new Proxy(
    {},
    {
      get(_, key) {
        if (key === "__esModule") return true;
        if (key === "grpcChannelOptions" && !real)
          return require(join(sdk, "runtime", "settings.js")).grpcChannelOptions;
        return load()[key];
      },
      has: (_, key) => key in load(),
      ownKeys: () => Reflect.ownKeys(load()),
      getOwnPropertyDescriptor: (_, key) => {
        const descriptor = Reflect.getOwnPropertyDescriptor(load(), key);
        return descriptor && { ...descriptor, configurable: true };
      },
    },
  );
  const Module = require("node:module");
  const stub = new Module(index, module);
  stub.filename = index;
  stub.loaded = true;
  stub.exports = standIn;
  require.cache[index] = stub;
}

// The engine's Cancel (sent on the first SIGINT it gets) ends what the provider waits for. The
// SDK's dynamic-provider answers Cancel and does nothing else, so its in-flight create or update
// (a paid request whose answer is held, a deploy being polled) would keep the engine waiting. The
// cancel handler registered with gRPC here also aborts a process-wide signal that the provider's
// Run402 client takes (provider/impl/context.ts): every request and wait then ends at once, and a
// payment already sent stays pending in the journal for the next run.
const engineCancel = new AbortController();
globalThis[Symbol.for("run402.engineCancel")] = engineCancel;
function abortOnCancel() {
  let grpc;
  try {
    grpc = require(require.resolve("@grpc/grpc-js", { paths: [dirname(entry)] }));
  } catch {
    return;
  }
  const addService = grpc.Server.prototype.addService;
  grpc.Server.prototype.addService = function (service, implementation) {
    if (implementation && typeof implementation.cancel === "function" && service?.cancel) {
      const cancel = implementation.cancel;
      implementation.cancel = function (call, callback) {
        engineCancel.abort(new Error("cancelled by the engine"));
        return cancel.call(this, call, callback);
      };
    }
    return addService.call(this, service, implementation);
  };
}
abortOnCancel();
deferRuntimeIndex(dirname(dirname(dirname(entry))));
// The process looks as it does under Pulumi's own wrapper (`node <dynamic-provider> <engine>`).
process.argv[1] = entry;
require(entry);
