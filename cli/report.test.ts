import { describe, expect, test } from "vitest";
import { parseCli } from "./args.js";
import { bounded, changeListLimit, emptyReport, ordered, renderHuman, withTotals } from "./report.js";

describe("the human summary", () => {
  test("behavior: a plan refused by the spend policy says it was refused and by which setting, not $0.00", () => {
    const report = withTotals(emptyReport("plan", "dev"), true);
    report.ok = false;
    report.errors = [
      {
        code: "POLICY_MAX_PAYMENT",
        message:
          "The hobby tier's upgrade costs $5.00, above run402:maxPaymentUsd ($1); up would refuse to pay it.",
      },
    ];
    const text = renderHuman(report);
    expect(text).not.toContain("Planned: $0.00");
    expect(text).toMatch(/Planned: refused by run402:maxPaymentUsd \(POLICY_MAX_PAYMENT\); nothing is paid/);
  });

  test("behavior: a plan refused by a policy pack names the pack", () => {
    const report = withTotals(emptyReport("plan", "dev"), true);
    report.ok = false;
    report.errors = [{ code: "POLICY_PACK_VIOLATION", message: "run402-payment-ceiling (tier): above 1" }];
    expect(renderHuman(report)).toMatch(/Planned: refused by the policy pack \(POLICY_PACK_VIOLATION\)/);
  });

  test("behavior: a plan that failed otherwise does not claim a total", () => {
    const report = withTotals(emptyReport("plan", "dev"), true);
    report.ok = false;
    report.errors = [{ code: "HTTP_REQUEST_FAILED", message: "down" }];
    const text = renderHuman(report);
    expect(text).not.toContain("Planned: $0.00");
    expect(text).toContain("Planned: unknown: the plan failed (see Errors)");
  });

  test("behavior: a plan that succeeded prints its total per rail", () => {
    const report = emptyReport("plan", "dev");
    report.actions = [{ resource: "tier", action: "upgrade", amountUsd: "5.00", rail: "x402", reason: "r" }];
    expect(renderHuman(withTotals(report, true))).toContain("Planned: $5.00 (x402 $5.00)");
  });
});

/** A status/apply report of a Deployment of `n` site files (a path and a sha256 each, as the state holds them). */
function siteReport(n: number) {
  const files: Record<string, string> = {};
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    const path = `assets/chunk-${String(i).padStart(5, "0")}.js`;
    files[path] = "a".repeat(64);
    paths.push(path);
  }
  const changes = {
    summary: `${n} site paths added`,
    site: { added: paths, changed: [], removed: [] },
    functions: { added: [], changed: [], removed: [] },
    migrations: { added: [] },
    secrets: { added: [], removed: [] },
    routes: { added: [], changed: [], removed: [] },
    subdomains: { added: [], removed: [] },
  };
  const report = emptyReport("apply", "dev");
  report.outputs = { projectId: "prj_1", files, changes };
  report.actions.push({
    resource: "deployment",
    action: "create",
    amountUsd: "0",
    rail: null,
    reason: "",
    changes,
  });
  return report;
}

const size = (report: ReturnType<typeof siteReport>) => JSON.stringify(ordered(report), null, 2).length;

describe("bounded JSON reports", () => {
  test("behavior: a 10,000-file site's report is a count and the first names by default, everything with --files", () => {
    const report = siteReport(10_000);
    const full = size(bounded(report, true));
    const small = size(bounded(report, false));
    expect(full).toBeGreaterThan(1_000_000);
    expect(small).toBeLessThan(30_000);
    const doc = bounded(report, false);
    expect(doc.outputs?.files).toMatchObject({ count: 10_000 });
    const added = doc.actions[0]?.changes?.site.added ?? [];
    expect(added).toHaveLength(changeListLimit + 1);
    expect(added.at(-1)).toMatch(/^… 9900 more \(--files/);
    // The full report is the report itself.
    expect(bounded(report, true)).toBe(report);
    // A small site loses nothing but the hashes.
    const few = bounded(siteReport(3), false);
    expect(few.actions[0]?.changes?.site.added).toHaveLength(3);
  });

  test("behavior: --files applies to the commands that report outputs or changes", () => {
    for (const command of ["plan", "apply", "status", "renew", "refresh", "reconcile"]) {
      const parsed = parseCli([command, "--files", "--json"]);
      expect(parsed.kind === "run" && parsed.options.files, command).toBe(true);
    }
    expect(
      parseCli(["status"]).kind === "run" &&
        (parseCli(["status"]) as { options: { files: boolean } }).options.files,
    ).toBe(false);
    expect(parseCli(["validate", "--files"]).kind).toBe("error");
  });
});
