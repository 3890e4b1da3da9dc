/**
 * The provider that Pulumi's dynamic-provider process runs for every Run402 resource: the module
 * text stored in each resource's `__provider` input.
 *
 * Each method only `require`s the implementation by package name and delegates, so the text stays a
 * few hundred bytes, holds no key material, and never captures viem or mppx. `require` inside the
 * text resolves at run time from the provider process's cwd, the Pulumi project folder, where
 * `pulumi-run402` is installed. The text is written here once per kind instead of being produced by
 * Pulumi's closure serialization (`pulumi.dynamic.Resource`), which would load TypeScript and the
 * whole SDK into every program that declares a resource; what the provider process does with it
 * (`require-from-string`, then `.handler()`) is the same.
 */
import type { Input, Output } from "@pulumi/pulumi/output.js";
import { CustomResource, type CustomResourceOptions } from "@pulumi/pulumi/resource.js";
import { type ArgsOf, type OutputsOf, outputKeys, type Shape, secretKeys } from "../shapes.js";

/** The resource kinds the implementation serves. */
export type ResourceKind = Shape["kind"];

/** A resource's arguments as the program gives them (provider/shapes.ts), each a `pulumi.Input`. */
export type InputArgs<S extends Shape, A = ArgsOf<S>> = { [K in keyof A]: Input<NonNullable<A[K]>> };

/** A resource's declared outputs (provider/shapes.ts), each a `pulumi.Output`. */
export type DeclaredOutputs<S extends Shape, O = OutputsOf<S>> = { readonly [K in keyof O]: Output<O[K]> };

/** The module text of the provider for one resource kind (`exports.handler()` returns the provider). */
export function stubSource(kind: ResourceKind): string {
  const k = JSON.stringify(kind);
  return [
    "exports.handler = function () {",
    '  const impl = () => require("pulumi-run402/provider/impl");',
    "  return {",
    "    configure: (request) => impl().configure(request),",
    `    check: (olds, news) => impl().handlers[${k}].check(olds, news),`,
    `    diff: (id, olds, news) => impl().handlers[${k}].diff(id, olds, news),`,
    `    create: (inputs) => impl().handlers[${k}].create(inputs),`,
    `    read: (id, props) => impl().handlers[${k}].read(id, props),`,
    `    update: (id, olds, news) => impl().handlers[${k}].update(id, olds, news),`,
    `    delete: (id, props) => impl().handlers[${k}].delete(id, props),`,
    "  };",
    "};",
    "",
  ].join("\n");
}

/** What the SDK's promise stacks read while a Run402 resource registers ({@link plainPromiseStacks}). */
export const PLAIN_PROMISE_STACK =
  "(stack not kept for a run402 resource's registration promise: set PULUMI_DEBUG_PROMISE_LEAKS to keep it)";

/** Node's own stack text (lib/internal/errors.js `defaultPrepareStackTrace`), for stacks passed through. */
function nodeStack(error: Error, sites: NodeJS.CallSite[]): string {
  const head = Error.prototype.toString.call(error);
  return sites.length === 0 ? head : `${head}\n    at ${sites.join("\n    at ")}`;
}

/**
 * Pulumi's SDK formats a stack trace for every promise of a registration (`debuggablePromise` in
 * @pulumi/pulumi/runtime/debuggable.js: four per property, ~15 properties a resource), read only
 * by its report of promises a program leaves unresolved; formatting them was most of a resource's
 * construction (a program of 101 resources spent ~0.15–0.3 s of its synchronous start on it, more
 * with source-map-support's formatter, which Pulumi's Node host installs). While a Run402 resource
 * registers, those stacks read {@link PLAIN_PROMISE_STACK}; every other stack (the resource's
 * source position, an error's) is formatted as before, by the formatter in place, and the stacks
 * are still captured, so an error formatted later is whole. Off when PULUMI_DEBUG_PROMISE_LEAKS is
 * set (the SDK's own switch for its leak report), and when Node maps stacks through source maps
 * itself (its formatter cannot be called from here). Returns the function that restores the
 * formatter.
 */
export function plainPromiseStacks(): () => void {
  const saved = Error.prepareStackTrace;
  const mapped = (process as { sourceMapsEnabled?: boolean }).sourceMapsEnabled ?? true;
  if (process.env["PULUMI_DEBUG_PROMISE_LEAKS"] || (saved === undefined && mapped !== false)) return () => {};
  Error.prepareStackTrace = (error, sites) => {
    if (sites[0]?.getFunctionName() === "debuggablePromise") return PLAIN_PROMISE_STACK;
    return saved ? saved(error, sites) : nodeStack(error, sites);
  };
  return () => {
    Error.prepareStackTrace = saved;
  };
}

/**
 * A Run402 resource: a Pulumi dynamic resource (type `pulumi-nodejs:dynamic/run402:<Type>`, served
 * by Pulumi's dynamic-provider plugin) whose `__provider` is {@link stubSource}.
 */
export abstract class Run402Resource extends CustomResource {
  /**
   * Registers `props` (the resource's inputs) and the declared outputs of `shape` (each property a
   * Pulumi output on the instance), with the shape's secret properties kept secret in the outputs.
   */
  constructor(shape: Shape, name: string, props: Record<string, unknown>, opts?: CustomResourceOptions) {
    const unset = Object.fromEntries(outputKeys(shape).map((key) => [key, undefined]));
    const secrets = secretKeys(shape).filter((key) => shape.properties[key]?.role !== "internal");
    const restore = plainPromiseStacks();
    try {
      super(
        `pulumi-nodejs:dynamic/run402:${shape.name}`,
        name,
        { ...unset, ...props, __provider: stubSource(shape.kind) },
        { ...opts, additionalSecretOutputs: [...secrets, ...(opts?.additionalSecretOutputs ?? [])] },
      );
    } finally {
      restore();
    }
  }
}
