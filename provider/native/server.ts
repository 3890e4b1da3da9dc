/**
 * The native `run402` provider: the same implementation (provider/impl.ts) served over Pulumi's
 * resource provider protocol, with the gRPC code that ships inside @pulumi/pulumi (proto/*_grpc_pb.js).
 *
 * The Node SDK's own server (`pulumi.provider.main`) is not used: it drops the configuration
 * (Configure keeps no variables), answers CheckConfig and DiffConfig with UNIMPLEMENTED, and sends no
 * detailed diff (pulumi/pulumi#10915). Here:
 *   - Configure/CheckConfig/DiffConfig take the `run402:*` settings, validated as the dynamic provider
 *     validates the stack config (provider/config.ts). The money settings (caps, allow-lists) are the
 *     operator's: the stack config the engine hands every plugin (PULUMI_CONFIG) and this run's
 *     settings; a provider declared in a program may only narrow them (see {@link narrowingFailures}).
 *   - Secrets arrive in the engine's secret envelopes (the provider accepts secrets): they are unwrapped
 *     for the implementation and every secret property (the description's, and any input that came in
 *     secret) is wrapped again on the way out, so nothing secret reaches state in the clear.
 *   - Read without state (`pulumi import`) builds the state first (provider/native/imports.ts).
 * Nothing is written to stdout but the port (the engine reads it); logs go to stderr.
 */
import { appendFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import type * as provproto from "@pulumi/pulumi/proto/provider_pb.js";
import { type ProviderConfig, readConfig } from "../config.js";
import { unknown as unknownValue } from "../impl/values.js";
import { configure as configureImpl, handlers } from "../impl.js";
import { configKeys } from "../settings.js";
import { type Shape, shapes } from "../shapes.js";
import { importId, importState } from "./imports.js";
import { configDescriptions, packageSchema, packageVersion, token } from "./schema.js";

const require = createRequire(import.meta.url);
const provrpc = require("@pulumi/pulumi/proto/provider_grpc_pb.js");
const proto = require("@pulumi/pulumi/proto/provider_pb.js") as typeof provproto;
const plugproto = require("@pulumi/pulumi/proto/plugin_pb.js");
const structproto = require("google-protobuf/google/protobuf/struct_pb.js");
const emptyproto = require("google-protobuf/google/protobuf/empty_pb.js");

/** The engine's signature key and value for a secret (sdk/go/common/resource/sig). */
const sigKey = "4dabf18193072939515e22adb298388d";
const secretSig = "1b47061264138c4ac30d75fd1eb44270";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Props = Record<string, Json>;

function isSecret(value: unknown): value is { [sigKey]: string; value: Json } {
  return (
    value !== null && typeof value === "object" && (value as Record<string, unknown>)[sigKey] === secretSig
  );
}

/** `value` with every secret envelope replaced by its value. */
export function reveal(value: Json): Json {
  if (isSecret(value)) return reveal(value.value);
  if (Array.isArray(value)) return value.map(reveal);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
  }
  return value;
}

/** The top-level keys of `props` that hold (or contain) a secret. */
function secretsIn(props: Props): Set<string> {
  const contains = (value: Json): boolean =>
    isSecret(value) ||
    (Array.isArray(value)
      ? value.some(contains)
      : value !== null && typeof value === "object"
        ? Object.values(value).some(contains)
        : false);
  return new Set(Object.keys(props).filter((k) => contains(props[k] as Json)));
}

/** `props` with `keys` wrapped as secrets (once). */
export function conceal(props: Props, keys: Iterable<string>): Props {
  const out: Props = { ...props };
  for (const key of keys) {
    const value = out[key];
    if (value !== undefined && value !== null && !isSecret(value)) out[key] = { [sigKey]: secretSig, value };
  }
  return out;
}

function toJs(struct: { toJavaScript(): unknown } | undefined): Props {
  return (struct?.toJavaScript() as Props | undefined) ?? {};
}

/** JSON values only (no undefined), as a protobuf Struct. */
function toStruct(props: unknown) {
  return structproto.Struct.fromJavaScript(JSON.parse(JSON.stringify(props ?? {})));
}

function shapeOf(urnOrType: string): Shape {
  const type = urnOrType.includes("::") ? (urnOrType.split("::")[2] ?? "") : urnOrType;
  const shape = shapes.find((s) => token(s.name) === type);
  if (!shape)
    throw Object.assign(new Error(`unknown resource type ${type}`), { code: grpc.status.INVALID_ARGUMENT });
  return shape;
}

function secretKeysOf(shape: Shape): string[] {
  return Object.entries(shape.properties)
    .filter(([, p]) => p.secret)
    .map(([k]) => k);
}

// ----- Provider settings -----

/** The operator's settings: the stack's `run402:*` config the engine passes every plugin. */
export function operatorConfig(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const text = env.PULUMI_CONFIG;
  if (!text) return {};
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>;
    // Keys are without the namespace; the engine passes only this package's.
    return Object.fromEntries(
      Object.entries(parsed)
        .map(([k, v]) => [k.replace(/^run402:/, ""), v] as const)
        .filter((e): e is [string, string] => typeof e[1] === "string"),
    );
  } catch {
    return {};
  }
}

/** A provider's own settings: its inputs (strings; numbers and booleans as text), unwrapped. */
function settingsOf(props: Props): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of configKeys) {
    const value = reveal(props[key] ?? null);
    if (value === null || value === "") continue;
    out[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return out;
}

/** The settings this provider runs with: its own over the operator's (the run's over both). */
function effective(own: Record<string, string>, env: NodeJS.ProcessEnv = process.env): ProviderConfig {
  const operator = operatorConfig(env);
  return readConfig((key) => {
    const k = key.replace(/^run402:/, "");
    return own[k] ?? operator[k];
  }, env);
}

/**
 * Where a provider's settings would widen the operator's money settings: a higher cap, an action or a
 * recipient the operator's settings do not allow. An explicit provider in a program may only narrow.
 */
export function narrowingFailures(
  own: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
): { property: string; reason: string }[] {
  const operator = readConfig((key) => operatorConfig(env)[key.replace(/^run402:/, "")], env);
  const mine = effective(own, env);
  const failures: { property: string; reason: string }[] = [];
  const widen = (property: string, what: string) =>
    failures.push({
      property,
      reason: `[POLICY_PROVIDER_WIDENS] ${what}: a provider declared in the program may only narrow the operator's money settings (the stack's run402:${property}); lower it or leave it out`,
    });
  if (mine.maxPaymentUsd > operator.maxPaymentUsd)
    widen(
      "maxPaymentUsd",
      `maxPaymentUsd ${mine.maxPaymentUsd} is above the operator's ${operator.maxPaymentUsd}`,
    );
  if (mine.maxSpendUsd > operator.maxSpendUsd)
    widen("maxSpendUsd", `maxSpendUsd ${mine.maxSpendUsd} is above the operator's ${operator.maxSpendUsd}`);
  const extraActions = mine.allowedActions.filter((a) => !operator.allowedActions.includes(a));
  if (extraActions.length > 0)
    widen(
      "allowedActions",
      `allowedActions adds ${extraActions.join(", ")}, which the operator does not allow`,
    );
  if (operator.allowedRecipients) {
    const allowed = new Set(operator.allowedRecipients.map((a) => a.toLowerCase()));
    const extra = (mine.allowedRecipients ?? ["any recipient"]).filter((a) => !allowed.has(a.toLowerCase()));
    if (extra.length > 0)
      widen("allowedRecipients", `allowedRecipients allows ${extra.join(", ")}, which the operator does not`);
  } else if (own["allowedRecipients"] !== undefined) {
    // Without the operator's list, recipients are pinned on first use: any list of the provider's widens.
    widen(
      "allowedRecipients",
      "allowedRecipients is set, and the operator sets none (recipients are pinned on first use)",
    );
  }
  if (operator.allowedNetworks) {
    const extra = (mine.allowedNetworks ?? ["the rails' default networks"]).filter(
      (n) => !operator.allowedNetworks?.includes(n),
    );
    if (extra.length > 0)
      widen("allowedNetworks", `allowedNetworks allows ${extra.join(", ")}, which the operator does not`);
  } else if (own["allowedNetworks"] !== undefined) {
    // Without the operator's list, the default is the narrowest: the configured RPCs' chains, else the testnets.
    widen(
      "allowedNetworks",
      "allowedNetworks is set, and the operator sets none (the default: the configured RPCs' chains, else the testnets)",
    );
  }
  if (
    operator.budgetUsd !== undefined &&
    (mine.budgetUsd === undefined || mine.budgetUsd > operator.budgetUsd)
  )
    widen(
      "budgetUsd",
      `budgetUsd ${mine.budgetUsd ?? "unset"} is above the operator's ${operator.budgetUsd}`,
    );
  // Where the money and the keys go, and where the payments are journalled: the operator's alone.
  for (const key of [
    "apiBase",
    "baseRpcUrl",
    "tempoRpcUrl",
    "journal",
    "journalPath",
    "budgetPeriod",
    "rail",
    "fallbackRail",
  ] as const) {
    if (own[key] !== undefined && String(mine[key]) !== String(operator[key]))
      widen(key, `${key} differs from the operator's`);
  }
  const origins = new Set(operator.uploadOrigins ?? []);
  const extraOrigins = (mine.uploadOrigins ?? []).filter((o) => !origins.has(o));
  if (extraOrigins.length > 0)
    widen("uploadOrigins", `uploadOrigins adds ${extraOrigins.join(", ")}, which the operator does not list`);
  return failures;
}

/** CheckConfig's failures: invalid values (named by key, never echoing a secret), then widening. */
function configFailures(own: Record<string, string>): { property: string; reason: string }[] {
  try {
    effective(own);
  } catch (error) {
    const issues = (error as { issues?: { key: string; message: string }[] }).issues;
    if (issues)
      return issues.map((i) => ({
        property: i.key.replace(/^run402:/, ""),
        reason: `[CONFIG_INVALID] ${i.message}`,
      }));
    return [{ property: "", reason: error instanceof Error ? error.message : String(error) }];
  }
  return narrowingFailures(own);
}

// ----- The service -----

/** With RUN402_NATIVE_TRACE=<file>, what each call received, by key (never a value), for debugging. */
function trace(method: string, what: Record<string, unknown>): void {
  const file = process.env.RUN402_NATIVE_TRACE;
  if (file) appendFileSync(file, `${JSON.stringify({ pid: process.pid, method, ...what })}\n`);
}

type Callback = (error: unknown, value?: unknown) => void;
type Call = { request: Record<string, (...args: never[]) => unknown> & Record<string, unknown> };

function grpcError(error: unknown) {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  return { code: typeof code === "number" ? code : grpc.status.UNKNOWN, details: message, message };
}

/** Wraps an async handler as a unary gRPC method: errors become the call's error, never a crash. */
function unary<R>(fn: (request: R) => Promise<unknown>) {
  return (call: { request: R }, callback: Callback) => {
    fn(call.request).then(
      (value) => callback(null, value),
      (error: unknown) => callback(grpcError(error)),
    );
  };
}

function checkResponse(inputs: Props, failures: { property: string; reason: string }[]) {
  const resp = new proto.CheckResponse();
  resp.setInputs(toStruct(inputs));
  resp.setFailuresList(
    failures.map((f) => {
      const failure = new proto.CheckFailure();
      failure.setProperty(f.property);
      failure.setReason(f.reason);
      return failure;
    }),
  );
  return resp;
}

/** The service implementation (exported for tests: each method takes a request message). */
export function service() {
  let version = "0.0.0";
  try {
    version = packageVersion();
  } catch {
    // reported as 0.0.0
  }
  const schema = JSON.stringify(packageSchema(version));
  let configured: Record<string, string> | undefined;

  const configureOnce = (own: Record<string, string>) => {
    const failures = configFailures(own);
    if (failures.length > 0) {
      throw Object.assign(new Error(failures.map((f) => `${f.property}: ${f.reason}`).join("; ")), {
        code: grpc.status.INVALID_ARGUMENT,
      });
    }
    const operator = operatorConfig();
    configureImpl({
      config: {
        get: (key: string) => own[key.replace(/^run402:/, "")] ?? operator[key.replace(/^run402:/, "")],
      },
    });
    configured = own;
  };

  return {
    handshake: unary(async () => new proto.ProviderHandshakeResponse()),
    getPluginInfo: unary(async () => {
      const info = new plugproto.PluginInfo();
      info.setVersion(version);
      return info;
    }),
    getSchema: unary(async (req: provproto.GetSchemaRequest) => {
      if (req.getVersion() !== 0) throw new Error(`unsupported schema version ${req.getVersion()}`);
      const resp = new proto.GetSchemaResponse();
      resp.setSchema(schema);
      return resp;
    }),
    checkConfig: unary(async (req: provproto.CheckRequest) => {
      const news = toJs(req.getNews());
      // Keep the inputs as given (secrets stay wrapped); validate their values.
      const known = new Set<string>(configKeys);
      const unknownKeys = Object.keys(news).filter((k) => !known.has(k) && k !== "version");
      const failures = [
        ...unknownKeys.map((k) => ({
          property: k,
          reason: `[CONFIG_INVALID] run402 has no setting "${k}"; the settings are ${configKeys.join(", ")}`,
        })),
        ...configFailures(settingsOf(news)),
      ];
      return checkResponse(news, failures);
    }),
    diffConfig: unary(async (req: provproto.DiffRequest) => {
      const olds = settingsOf(toJs(req.getOldInputs() ?? req.getOlds()));
      const news = settingsOf(toJs(req.getNews()));
      const changed = [...configKeys].filter((k) => (olds[k] ?? "") !== (news[k] ?? ""));
      const resp = new proto.DiffResponse();
      resp.setChanges(
        changed.length > 0
          ? proto.DiffResponse.DiffChanges.DIFF_SOME
          : proto.DiffResponse.DiffChanges.DIFF_NONE,
      );
      resp.setDiffsList(changed);
      // A changed setting applies to the next operation; no resource is replaced for it.
      resp.setReplacesList([]);
      return resp;
    }),
    configure: unary(async (req: provproto.ConfigureRequest) => {
      const args = req.getArgs();
      let own: Record<string, string>;
      if (args) {
        own = settingsOf(toJs(args));
      } else {
        own = {};
        for (const [key, value] of req.getVariablesMap().entries())
          own[String(key).replace(/^run402:(config:)?/, "")] = String(value);
      }
      trace("configure", {
        args: args ? Object.keys(toJs(args)) : null,
        variables: [...req.getVariablesMap().keys()],
        operator: Object.keys(operatorConfig()),
      });
      configureOnce(own);
      const resp = new proto.ConfigureResponse();
      resp.setAcceptsecrets(true);
      resp.setAcceptresources(false);
      resp.setSupportspreview(false);
      return resp;
    }),
    check: unary(async (req: provproto.CheckRequest) => {
      const shape = shapeOf(req.getUrn());
      const olds = reveal(toJs(req.getOlds())) as Props;
      const given = toJs(req.getNews());
      const secret = new Set([...secretKeysOf(shape), ...secretsIn(given)]);
      const news = { ...(reveal(given) as Props), resourceKey: req.getUrn() };
      const result = await (
        handlers[shape.kind].check as (
          o: unknown,
          n: unknown,
        ) => Promise<{
          inputs?: Props;
          failures?: { property: string; reason: string }[];
        }>
      )(olds, news);
      return checkResponse(conceal(result.inputs ?? news, secret), result.failures ?? []);
    }),
    diff: unary(async (req: provproto.DiffRequest) => {
      const shape = shapeOf(req.getUrn());
      const olds = reveal(toJs(req.getOlds())) as Props;
      const news = reveal(toJs(req.getNews())) as Props;
      const result = await (
        handlers[shape.kind].diff as (
          id: string,
          o: unknown,
          n: unknown,
        ) => Promise<{
          changes?: boolean;
          replaces?: string[];
          deleteBeforeReplace?: boolean;
        }>
      )(req.getId(), olds, news);
      const resp = new proto.DiffResponse();
      resp.setChanges(
        result.changes === true
          ? proto.DiffResponse.DiffChanges.DIFF_SOME
          : result.changes === false
            ? proto.DiffResponse.DiffChanges.DIFF_NONE
            : proto.DiffResponse.DiffChanges.DIFF_UNKNOWN,
      );
      resp.setReplacesList(result.replaces ?? []);
      resp.setDeletebeforereplace(result.deleteBeforeReplace === true);
      return resp;
    }),
    create: unary(async (req: provproto.CreateRequest) => {
      const shape = shapeOf(req.getUrn());
      const given = toJs(req.getProperties());
      const secret = new Set([...secretKeysOf(shape), ...secretsIn(given)]);
      if (req.getPreview()) {
        // Preview: nothing is done (never a payment); what create will compute is unknown.
        const resp = new proto.CreateResponse();
        resp.setId("");
        resp.setProperties(toStruct(conceal({ ...unknownOutputs(shape), ...given }, secret)));
        return resp;
      }
      const result = await (
        handlers[shape.kind].create as (i: unknown) => Promise<{ id: string; outs: Props }>
      )(reveal(given));
      const resp = new proto.CreateResponse();
      resp.setId(result.id);
      resp.setProperties(toStruct(conceal(result.outs, secret)));
      return resp;
    }),
    read: unary(async (req: provproto.ReadRequest) => {
      const shape = shapeOf(req.getUrn());
      const given = toJs(req.getProperties());
      const secret = new Set([...secretKeysOf(shape), ...secretsIn(given)]);
      const importing = Object.keys(given).length === 0;
      const id = importing ? importId(shape.kind, req.getId()) : req.getId();
      const state = importing
        ? ((await importState(shape.kind, id, req.getUrn())) as Props)
        : (reveal(given) as Props);
      const result = await (
        handlers[shape.kind].read as (
          id: string,
          p: unknown,
        ) => Promise<{
          id?: string;
          props?: Props;
          inputs?: Props;
        }>
      )(id, state);
      const resp = new proto.ReadResponse();
      resp.setId(result.id ?? "");
      if (result.id) {
        resp.setProperties(toStruct(conceal(result.props ?? {}, secret)));
        if (result.inputs) resp.setInputs(toStruct(conceal(inputsOnly(shape, result.inputs), secret)));
      }
      return resp;
    }),
    update: unary(async (req: provproto.UpdateRequest) => {
      const shape = shapeOf(req.getUrn());
      const olds = toJs(req.getOlds());
      const news = toJs(req.getNews());
      const secret = new Set([...secretKeysOf(shape), ...secretsIn(olds), ...secretsIn(news)]);
      if (req.getPreview()) {
        // Preview: nothing is done (never a payment); what the update will compute is unknown.
        const resp = new proto.UpdateResponse();
        resp.setProperties(toStruct(conceal({ ...olds, ...unknownOutputs(shape), ...news }, secret)));
        return resp;
      }
      const result = await (
        handlers[shape.kind].update as (
          id: string,
          o: unknown,
          n: unknown,
        ) => Promise<{
          outs?: Props;
        }>
      )(req.getId(), reveal(olds), reveal(news));
      const resp = new proto.UpdateResponse();
      resp.setProperties(toStruct(conceal(result.outs ?? {}, secret)));
      return resp;
    }),
    delete: unary(async (req: provproto.DeleteRequest) => {
      const shape = shapeOf(req.getUrn());
      await (handlers[shape.kind].delete as (id: string, p: unknown) => Promise<void>)(
        req.getId(),
        reveal(toJs(req.getProperties())),
      );
      return new emptyproto.Empty();
    }),
    cancel: unary(async () => new emptyproto.Empty()),
    attach: unary(async () => new emptyproto.Empty()),
    /** The settings the last Configure applied (for tests). */
    configured: () => configured,
  };
}

/**
 * What a read reports as the resource's inputs: the ones the program gives and the ones check
 * computes, as the implementation's read returns them; never the outputs, so an import's inputs
 * match the program's and the next diff has nothing to change.
 */
function inputsOnly(shape: Shape, inputs: Props): Props {
  return Object.fromEntries(
    Object.entries(inputs).filter(([k]) => {
      const role = shape.properties[k as keyof typeof shape.properties]?.role as string | undefined;
      return role === undefined || role === "input" || role === "planned" || role === "internal";
    }),
  );
}

/** The outputs create/update compute (not given by the program or planned by check), as unknowns. */
function unknownOutputs(shape: Shape): Props {
  return Object.fromEntries(
    Object.entries(shape.properties)
      .filter(([, p]) => p.role === "output")
      .map(([k]) => [k, unknownValue]),
  );
}

/** The methods the engine may call that this provider does not serve. */
function unimplemented(name: string) {
  return (_call: unknown, callback: Callback) =>
    callback({ code: grpc.status.UNIMPLEMENTED, details: `run402 does not implement ${name}` });
}

/**
 * Serves the provider on 127.0.0.1 and prints the port on stdout, as the engine expects of a plugin.
 * Returns the server (tests stop it).
 */
export async function serve(print: (line: string) => void = (l) => process.stdout.write(`${l}\n`)) {
  const server = new grpc.Server({ "grpc.max_receive_message_length": 1024 * 1024 * 400 });
  const impl = service();
  const { configured: _c, ...methods } = impl;
  const all: Record<string, unknown> = {};
  for (const name of Object.keys(provrpc.ResourceProviderService)) {
    const key = name.charAt(0).toLowerCase() + name.slice(1);
    all[key] =
      (methods as Record<string, unknown>)[key] ?? (key === "list" ? listUnimplemented : unimplemented(name));
  }
  server.addService(provrpc.ResourceProviderService, all as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    ),
  );
  print(String(port));
  return { server, port };
}

function listUnimplemented(call: { emit(event: string, error: unknown): void }) {
  call.emit("error", { code: grpc.status.UNIMPLEMENTED, details: "run402 does not implement List" });
}

/** For the schema's config descriptions to stay in step with the keys (checked by the tests). */
export const describedConfigKeys = Object.keys(configDescriptions);
export type { Call };
