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
    super(
      `pulumi-nodejs:dynamic/run402:${shape.name}`,
      name,
      { ...unset, ...props, __provider: stubSource(shape.kind) },
      { ...opts, additionalSecretOutputs: [...secrets, ...(opts?.additionalSecretOutputs ?? [])] },
    );
  }
}
