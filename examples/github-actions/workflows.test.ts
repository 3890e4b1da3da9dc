/**
 * The GitHub Actions examples: every run402-pulumi command line in them parses with the CLI's own
 * parser; the apply on merge applies the plan file the pull request's plan saved (same artifact,
 * same path, --plan, never --yes); the comment renders the saved plan, a failed validation, and a
 * fork's validation; the install is pinned; the comment is posted when validation fails; forks are
 * not planned or applied; state and payment journal live in one PostgreSQL named by a secret.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { parse } from "yaml";
import { parseCli } from "../../cli/args.js";
import { runnerLocalBackend, runnerLocalJournal } from "../../cli/run.js";

const here = import.meta.dirname;
const tmp = mkdtempSync(join(tmpdir(), "run402-gha-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Step {
  name?: string;
  id?: string;
  if?: string;
  uses?: string;
  run?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}

interface Workflow {
  env?: Record<string, string>;
  permissions?: Record<string, string>;
  jobs: Record<string, { if?: string; env?: Record<string, string>; steps: Step[] }>;
}

function workflow(file: string): Workflow {
  return parse(readFileSync(join(here, file), "utf8")) as Workflow;
}

function steps(file: string): Step[] {
  return Object.values(workflow(file).jobs).flatMap((job) => job.steps);
}

/** A GitHub Actions expression as a workflow writes it: `${{ text }}`. */
const expression = (text: string): string => `\${{ ${text} }}`;

/** Values for the variables the steps get from secrets and repository variables. */
const stepEnv: Record<string, string> = {
  RUN402_DATABASE_URL: "postgres://run402@db.example.com:5432/run402?sslmode=verify-full",
  MAX_SPEND: "5",
};

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

  test("behavior: run402-pulumi is installed at this package's exact version, never unpinned", () => {
    const { version } = JSON.parse(readFileSync(join(here, "..", "..", "package.json"), "utf8")) as {
      version: string;
    };
    for (const file of ["plan.yml", "apply.yml", "renew.yml"]) {
      expect(workflow(file).env?.RUN402_PULUMI_VERSION, file).toBe(version);
      const installs = steps(file)
        .map((s) => s.run ?? "")
        .filter((run) => /\bnpm (install|i|add)\b/.test(run));
      expect(installs, file).toEqual([
        'npm install --global --no-audit --no-fund "pulumi-run402@$RUN402_PULUMI_VERSION"',
      ]);
    }
  });

  test("behavior: the plan comment is rendered and posted also when validation or the plan fails, and the job then fails", () => {
    const all = steps("plan.yml");
    const validate = all.find((s) => s.id === "validate");
    expect(validate?.run).toMatch(/set \+e[\s\S]*run402-pulumi validate[\s\S]*> run402-plan\/report\.json/);
    const render = all.find((s) => s.run?.includes("run402-plan-comment.mjs"));
    const post = all.find((s) => s.uses?.startsWith("actions/github-script"));
    const last = all.at(-1);
    for (const step of [render, post, last]) expect(step?.if, step?.name).toMatch(/^always\(\) && /);
    expect(last?.run).toBe('exit "$EXIT"');
    expect(last?.env?.EXIT).toBe(expression("steps.plan.outputs.exit || steps.validate.outputs.exit"));
    // The apply's comment too: also when no plan was found or the apply did not start.
    const said = steps("apply.yml").find((s) => s.name === "Say it on the pull request");
    expect(said?.if).toBe("always() && github.event_name == 'pull_request'");
  });

  test("behavior: a fork's pull request (no secrets, read-only token) is validated only: not planned, not commented, not applied", () => {
    const plan = workflow("plan.yml");
    expect(plan.jobs.plan?.env?.FROM_FORK).toBe(
      expression(
        "github.event_name == 'pull_request' && github.event.pull_request.head.repo.full_name != github.repository",
      ),
    );
    const all = steps("plan.yml");
    expect(all.find((s) => s.id === "plan")?.if).toContain("env.FROM_FORK != 'true'");
    expect(all.find((s) => s.uses?.startsWith("actions/github-script"))?.if).toContain(
      "env.FROM_FORK != 'true'",
    );
    expect(workflow("apply.yml").jobs.apply?.if).toContain(
      "github.event.pull_request.head.repo.full_name == github.repository",
    );
  });

  test("behavior: state and payment journal live in the team's PostgreSQL (a secret), which CI accepts as durable for both; no journal artifact", () => {
    for (const file of ["plan.yml", "apply.yml", "renew.yml"]) {
      const all = steps(file);
      const running = all.find((s) => /run402-pulumi (plan|apply|renew) /.test(s.run ?? ""));
      expect(running?.env?.RUN402_DATABASE_URL, file).toBe(expression("secrets.RUN402_DATABASE_URL"));
      for (const line of commands(file).filter((c) => c[0] !== "validate")) {
        const parsed = parseCli(line);
        if (parsed.kind !== "run") throw new Error(`${file}: ${line.join(" ")} does not parse`);
        expect(parsed.options.backend, file).toBe(stepEnv.RUN402_DATABASE_URL);
        expect(runnerLocalBackend(parsed.options, { CI: "true" }), file).toBeUndefined();
        expect(runnerLocalJournal(parsed.options, {}, { CI: "true" }), file).toBeUndefined();
        expect(line.join(" "), file).not.toContain("journalPath");
      }
      expect(
        all.some((s) => s.uses?.includes("artifact") && s.with?.name === "run402-journal"),
        file,
      ).toBe(false);
    }
  });

  test("behavior: a failed validation and a fork's validation render as comments", () => {
    const render = (report: unknown, ...args: string[]) => {
      const file = join(tmp, "validate.json");
      writeFileSync(file, JSON.stringify(report));
      return execFileSync(process.execPath, [join(here, "plan-comment.mjs"), file, ...args], {
        encoding: "utf8",
      });
    };
    const invalid = render(
      {
        ok: false,
        command: "validate",
        stack: "dev",
        actions: [],
        errors: [
          {
            code: "MANIFEST_INVALID",
            message: "must be a string",
            pointer: "/project/name",
            file: "app.json",
          },
        ],
      },
      "2",
    );
    expect(invalid).toContain("### Run402: the manifest is invalid (exit 2)");
    expect(invalid).toContain("- `MANIFEST_INVALID` in `app.json` at `/project/name`: must be a string");
    const fork = render(
      { ok: true, command: "validate", stack: "dev", actions: [], errors: [] },
      "0",
      "fork",
    );
    expect(fork).toContain("the manifest is valid; not planned");
    expect(fork).toMatch(/fork.*no secrets/);
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
