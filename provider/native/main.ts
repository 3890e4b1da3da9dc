/**
 * The `pulumi-resource-run402` plugin process: serves the native provider and prints its port, the
 * only line it ever writes to stdout (the engine reads it). The engine passes its own address as the
 * first argument; progress lines go to it (provider/impl/progress.ts).
 */
import { serve } from "./server.js";

// Anything else that would print to stdout goes to stderr: a stray line would be read as the port.
console.log = console.error;
console.info = console.error;

serve().catch((error: unknown) => {
  process.stderr.write(`pulumi-resource-run402: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
