/**
 * The root stack's program (Pulumi.yaml → dist/program/index.js): deploys the app.json named by
 * the stack config `app:manifest` (default examples/quickstart/app.json).
 *
 *   pulumi config set app:manifest path/to/app.json
 *   pulumi up
 */
import * as pulumi from "@pulumi/pulumi";
import { manifestStack } from "../provider/stack.js";

export default async function program(): Promise<Record<string, pulumi.Output<unknown>>> {
  const config = new pulumi.Config("app");
  const stack = await manifestStack({ manifest: config.get("manifest") ?? "examples/quickstart/app.json" });
  return stack.outputs;
}
