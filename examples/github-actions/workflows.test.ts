/**
 * The GitHub Actions examples: every run402-pulumi command line in them parses with the CLI's own
 * parser; the apply on merge applies the plan file the pull request's plan saved (same artifact,
 * same path, --plan, never --yes); the comment renders the saved plan.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { parse } from "yaml";
import { parseCli } from "../../cli/args.js";

const here = import.meta.dirname;
const tmp = mkdtempSync(join(tmpdir(), "run402-gha-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}

interface Workflow {
  env?: Record<string, string>;
  jobs: Record<string, { steps: Step[] }>;
}

function workflow(file: string): Workflow {
  return parse(readFileSync(join(here, file), "utf8")) as Workflow;
}

function steps(file: string): Step[] {
  return Object.values(workflow(file).jobs).flatMap((job) => job.steps);
}

/** Values for the variables the steps get from secrets and repository variables. */
const stepEnv: Record<string, string> = { RUN402_BACKEND: "s3://bucket/run402", MAX_SPEND: "5" };

/**
 * The run402-pulumi command lines of a workflow, continuation lines joined, shell words split,
 * `"$VAR"` replaced by the workflow's env (or {@link stepEnv}).
 */
function commands(file: string): string[][] {
  const env = { ...stepEnv, ...workflow(file).env };
  return steps(file)
    .flatMap((s) => (s.run ?? "").replaceAll("\\\n", " ").split("\n"))
    .map((line) => line.trim())
    .filter((line) => line.startsWith("run402-pulumi "))
    .map((line) =>
      line
        .replace(/\s*>.*$/, "")
        .split(/\s+/)
        .slice(1)
        .map((word) => word.replace(/^"(.*)"$/, "$1"))
        .map((word) => word.replace(/^\$\{?([A-Z_0-9]+)\}?$/, (whole, name: string) => env[name] ?? whole)),
    );
}

describe("examples/github-actions", () => {
  test("behavior: every run402-pulumi command in the workflows parses", () => {
    for (const file of ["plan.yml", "apply.yml", "renew.yml"]) {
      const found = commands(file);
      expect(found.length, file).toBeGreaterThan(0);
      for (const argv of found) {
        const parsed = parseCli(argv);
        expect(parsed.kind, `${file}: run402-pulumi ${argv.join(" ")}`).toBe("run");
      }
    }
  });

  test("behavior: the apply on merge applies the plan the pull request saved and uploaded, and nothing unplanned", () => {
    const [plan] = commands("plan.yml").filter((argv) => argv[0] === "plan");
    const planned = parseCli(plan as string[]);
    if (planned.kind !== "run") throw new Error("plan did not parse");
    const upload = steps("plan.yml").find((s) => s.uses?.startsWith("actions/upload-artifact"));
    expect(upload?.with?.name).toBe("run402-plan");
    expect(planned.options.save?.startsWith(`${String(upload?.with?.path).replace(/\/$/, "")}/`)).toBe(true);

    const applies = commands("apply.yml").filter((argv) => argv[0] === "apply");
    expect(applies).toHaveLength(1);
    const applied = parseCli(applies[0] as string[]);
    if (applied.kind !== "run") throw new Error("apply did not parse");
    expect(applied.options.plan).toBe(planned.options.save);
    expect(applied.options.yes).toBe(false);
    expect({ manifest: applied.options.manifest, stack: applied.options.stack }).toEqual({
      manifest: planned.options.manifest,
      stack: planned.options.stack,
    });
    const download = steps("apply.yml").find((s) => s.uses?.startsWith("actions/download-artifact"));
    expect(download?.with).toMatchObject({ name: "run402-plan", path: "run402-plan" });
  });

  test("behavior: the pull request comment names the saved plan and what merging pays at most", () => {
    const report = join(tmp, "report.json");
    writeFileSync(
      report,
      JSON.stringify({
        ok: true,
        command: "plan",
        stack: "prod",
        actions: [
          { resource: "tier", action: "subscribe", amountUsd: "0.10", rail: "x402", reason: "no tier" },
        ],
        totalPlannedUsd: "0.10",
        plannedByRail: { x402: "0.10" },
        savedPlan: {
          id: "plan_0123456789abcdef",
          fingerprint: "sha256:ab",
          file: "/x/plan.json",
          totalUsd: "0.10",
        },
        errors: [],
      }),
    );
    const comment = execFileSync(process.execPath, [join(here, "plan-comment.mjs"), report, "0"], {
      encoding: "utf8",
    });
    expect(comment).toMatch(/^<!-- run402-plan -->/);
    expect(comment).toContain("| tier | subscribe | $0.10 | x402 | no tier |");
    expect(comment).toContain("Plan `plan_0123456789abcdef`");
    expect(comment).toMatch(/Merging applies exactly this plan, paying at most \$0\.10/);
  });
});
