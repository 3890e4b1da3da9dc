/**
 * pulumi-run402: declarative Run402 infrastructure for Pulumi.
 *
 * The package entry re-exports the Pulumi resources; the SDK, the manifest schema and the sandbox
 * have entry points of their own (`pulumi-run402/sdk`, `pulumi-run402/schema`,
 * `pulumi-run402/sandbox`).
 */
export const packageName = "pulumi-run402";
