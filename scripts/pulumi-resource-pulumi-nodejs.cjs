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
const { readFileSync } = require("node:fs");
const { dirname, join } = require("node:path");

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

deferRuntimeIndex(dirname(dirname(dirname(entry))));
// The process looks as it does under Pulumi's own wrapper (`node <dynamic-provider> <engine>`).
process.argv[1] = entry;
require(entry);
