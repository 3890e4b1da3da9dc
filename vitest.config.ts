import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    alias: [
      { find: "~test", replacement: fileURLToPath(new URL("./test", import.meta.url)) },
      // Tests run the sandbox package from its sources (the CLI's processes load its build).
      {
        find: /^@pulumi-run402\/sandbox$/,
        replacement: fileURLToPath(new URL("./packages/sandbox/index.ts", import.meta.url)),
      },
    ],
  },
  test: {
    include: ["**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**", ".tools/**"],
    // Chains, PGlite and the Pulumi engine are real processes: 2 cores, so keep parallelism low.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
