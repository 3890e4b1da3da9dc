/**
 * The GitHub Actions examples pass actionlint (workflow syntax, expressions, step ids, action inputs),
 * built from its Go module at a pinned version by scripts/actionlint.sh; a workflow with a broken
 * step reference fails it.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { repoRoot } from "~test/engine.js";

const here = import.meta.dirname;
const workflows = readdirSync(here)
  .filter((f) => f.endsWith(".yml"))
  .map((f) => join(here, f));
const tmp = mkdtempSync(join(tmpdir(), "run402-actionlint-"));
let actionlint: string;

beforeAll(() => {
  // Cached per version after the first build (~30 s with Go's module cache empty).
  actionlint = execFileSync("bash", [join(repoRoot, "scripts", "actionlint.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
}, 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function lint(files: string[]) {
  return spawnSync(actionlint, ["-no-color", "-oneline", ...files], { encoding: "utf8" });
}

describe("examples/github-actions under actionlint", () => {
  test("behavior: every workflow passes", () => {
    expect(workflows.map((f) => f.slice(here.length + 1)).sort()).toEqual([
      "apply.yml",
      "plan.yml",
      "renew.yml",
    ]);
    const run = lint(workflows);
    expect(run.stdout + run.stderr).toBe("");
    expect(run.status).toBe(0);
  });

  test("error: a workflow whose step condition names a step that does not exist fails", () => {
    const broken = join(tmp, "plan.yml");
    const text = readFileSync(join(here, "plan.yml"), "utf8");
    const planted = text.replace(
      "if: steps.validate.outputs.exit == '0' && env.FROM_FORK != 'true'",
      "if: steps.validat.outputs.exit == '0' && env.FROM_FORK != 'true'",
    );
    expect(planted).not.toBe(text);
    writeFileSync(broken, planted);
    const run = lint([broken]);
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/plan\.yml:\d+:\d+: property "validat" is not defined/);
  });
});
