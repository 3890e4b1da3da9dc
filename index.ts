/**
 * pulumi-run402: declarative Run402 infrastructure for Pulumi.
 *
 * The package entry exports the Pulumi resources and the manifest stack builder; the SDK, the
 * manifest schema and the sandbox have entry points of their own (`pulumi-run402/sdk`,
 * `pulumi-run402/schema`; the sandbox is its own package, `@pulumi-run402/sandbox`).
 */
export * from "./provider/index.js";
export { type ManifestStack, type ManifestStackOptions, manifestStack } from "./provider/stack.js";
