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

function programFor(request) {
  const info = request.getInfo?.();
  const root = info?.getProgramDirectory?.() || request.getPwd() || process.cwd();
  const main = info?.getEntryPoint?.() || request.getProgram() || ".";
  return async () => {
    let entry = path.resolve(root, main);
    try {
      entry = require.resolve(entry);
    } catch {
      // An ESM-only package folder: let import() resolve it.
    }
    if (/\.[cm]?tsx?$/.test(entry)) {
      // Register tsx's loader for TypeScript programs (Pulumi's Go host uses ts-node the same way).
      const tsx = require.resolve("tsx/esm/api", { paths: [root, __dirname] });
      (await import(pathToFileURL(tsx).href)).register();
    }
    const mod = await import(pathToFileURL(entry).href);
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
