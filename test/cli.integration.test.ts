/**
 * The CLI's engine lookup where it runs a process (a stand-in `pulumi` asked its version); the
 * rest of the lookup is in test/cli.test.ts (unit).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { findPulumi } from "../cli/engine/index.js";

describe("engine lookup", () => {
  test("error: a pulumi on PATH without pulumi-language-nodejs is ENGINE_NOT_FOUND, before anything runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "run402-engine-lookup-"));
    const path = process.env.PATH;
    // A stand-in for the CLI: the lookup must refuse it without running it.
    writeFileSync(join(dir, "pulumi"), "#!/bin/sh\necho v3.259.0\n", { mode: 0o755 });
    process.env.PATH = dir;
    process.env.RUN402_ENGINE_BIN = join(dir, "no-user-bin");
    try {
      const failure = await findPulumi("/nonexistent").catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: "ENGINE_NOT_FOUND" });
      expect((failure as Error).message).toContain("has no Node.js language host (pulumi-language-nodejs");
      expect((failure as Error).message).toContain("`bash /nonexistent/scripts/engine.sh`");
      writeFileSync(join(dir, "pulumi-language-nodejs"), "#!/bin/sh\n", { mode: 0o755 });
      await expect(findPulumi("/nonexistent")).resolves.toMatchObject({ version: "3.259.0" });
    } finally {
      process.env.PATH = path;
      delete process.env.RUN402_ENGINE_BIN;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
