/**
 * The provider objects that Pulumi serializes into every resource's `__provider` input.
 *
 * Each method only `require`s the implementation by package name and delegates, so the serialized
 * text stays a few hundred bytes, holds no key material, and never tries to capture viem or mppx
 * (which cannot be serialized). `require` inside a method is not captured: it resolves at run time
 * from the provider process's cwd, the Pulumi project folder, where `pulumi-run402` is installed.
 * One object per kind, created once: Pulumi caches serialization by object identity.
 */
import type * as pulumi from "@pulumi/pulumi";

/** The resource kinds the implementation serves. */
export type ResourceKind = "tier" | "project" | "deployment" | "secret";

/** Builds the delegating provider for one resource kind. */
export function stubProvider(kind: ResourceKind): pulumi.dynamic.ResourceProvider {
  return {
    async configure(request) {
      return require("pulumi-run402/provider/impl").configure(request);
    },
    async check(olds, news) {
      return require("pulumi-run402/provider/impl").handlers[kind].check(olds, news);
    },
    async diff(id, olds, news) {
      return require("pulumi-run402/provider/impl").handlers[kind].diff(id, olds, news);
    },
    async create(inputs) {
      return require("pulumi-run402/provider/impl").handlers[kind].create(inputs);
    },
    async read(id, props) {
      return require("pulumi-run402/provider/impl").handlers[kind].read(id, props);
    },
    async update(id, olds, news) {
      return require("pulumi-run402/provider/impl").handlers[kind].update(id, olds, news);
    },
    async delete(id, props) {
      return require("pulumi-run402/provider/impl").handlers[kind].delete(id, props);
    },
  };
}
