import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const resolve = {
  alias: [
    { find: "~test", replacement: fileURLToPath(new URL("./test", import.meta.url)) },
    // Tests run the sandbox package from its sources (the CLI's processes load its build).
    {
      find: /^@pulumi-run402\/sandbox$/,
      replacement: fileURLToPath(new URL("./packages/sandbox/index.ts", import.meta.url)),
    },
  ],
};
const exclude = ["**/node_modules/**", "**/dist/**", ".tools/**"];
/**
 * `*.test.ts` files that start processes or open sockets in some of their tests (the unit setup
 * refuses both): they run in the integration tier until those tests move to their own
 * `*.integration.test.ts`.
 */
const withProcesses = [
  "cli/locks.test.ts",
  "sdk/pay/journal.test.ts",
  "examples/github-actions/actionlint.test.ts",
  "examples/github-actions/workflows.test.ts",
  "packages/sandbox/api/paid.test.ts",
  "test/bad-input/corpus.test.ts",
  "test/bad-input/corpus.process.test.ts",
  "test/ci-backend.test.ts",
];

/**
 * Three tiers, as vitest projects (`npm run test:unit`, `vitest run --project integration`, …; `npm test`
 * runs all three): `unit` (`*.test.ts`) starts no process and opens no socket, which test/setup/unit.ts
 * enforces; `integration` (`*.integration.test.ts`) starts chains, servers or processes; `e2e`
 * (`*.e2e.test.ts`) runs the built CLI and the Pulumi engine.
 */
export default defineConfig({
  resolve,
  test: {
    // Chains, PGlite and the Pulumi engine are real processes: 2 cores, so keep parallelism low.
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ["default"],
    projects: [
      {
        // Each project takes the options above (pool, workers, timeouts) and the resolve aliases.
        extends: true,
        test: {
          name: "unit",
          include: ["**/*.test.ts"],
          exclude: [...exclude, "**/*.integration.test.ts", "**/*.e2e.test.ts", ...withProcesses],
          setupFiles: ["./test/setup/unit.ts"],
          isolate: false,
        },
      },
      {
        extends: true,
        test: { name: "integration", include: ["**/*.integration.test.ts", ...withProcesses], exclude },
      },
      { extends: true, test: { name: "e2e", include: ["**/*.e2e.test.ts"], exclude } },
    ],
  },
});
