/** `apply`: converges the stack (pulumi up), after a confirmation or against a saved plan (`--plan`). */
import { resolve } from "node:path";
import type { RunSettings } from "../../provider/settings.js";
import { atomicToUsd, usdToAtomic } from "../../sdk/money.js";
import type { EngineStack } from "../engine/index.js";
import { planChanges, readPlan } from "../plan.js";
import { emptyReport, type Report, renderHuman, withTotals } from "../report.js";
import { explainInterrupted, operate, ready } from "./operate.js";
import { previewPlan } from "./plan.js";
import { fail, policyOf, prepare, type Session, useSettings } from "./session.js";

/**
 * `apply --plan <file>`: a fresh preview must make the saved plan again (same fingerprint), else
 * nothing is changed or paid (CONFLICT_PLAN_STALE, with what changed). The update then runs with
 * the provider's per-run cap at the plan's total and only the plan's paid actions allowed.
 */
async function applyPlan(session: Session, report: Report, planFile: string): Promise<Report> {
  const file = resolve(session.cwd, planFile);
  const saved = readPlan(file);
  report.savedPlan = { id: saved.id, fingerprint: saved.fingerprint, file, totalUsd: saved.totalUsd };
  if (saved.stack.project !== session.projectName || saved.stack.name !== session.options.stack) {
    fail(report, [
      {
        code: "CLI_PLAN_INVALID",
        message: `The plan ${saved.id} was made for stack ${saved.stack.name} of project ${saved.stack.project}; this run is for stack ${session.options.stack} of project ${session.projectName}. Pass the --manifest and --stack the plan was made with.`,
      },
    ]);
    return report;
  }
  const stack = (await prepare(session, true)) as EngineStack;
  if (!(await ready(session, stack, report))) return withTotals(report, true);
  const checked = emptyReport("plan", report.stack);
  const fresh = await previewPlan(
    session,
    stack,
    checked,
    `checking the saved plan ${saved.id} against the stack (pulumi preview; nothing is paid)`,
  );
  if (!fresh) {
    Object.assign(report, { resources: checked.resources, actions: checked.actions });
    fail(report, checked.errors);
    return withTotals(report, true);
  }
  if (fresh.fingerprint !== saved.fingerprint) {
    const changed = planChanges(saved, fresh);
    report.savedPlan.changed = changed;
    fail(report, [
      {
        code: "CONFLICT_PLAN_STALE",
        message: `The saved plan ${saved.id} no longer matches the stack: ${changed.join("; ")}. Nothing was changed or paid. Make a new plan (plan --save), review it, and apply that one.`,
      },
    ]);
    return withTotals(report, true);
  }
  session.io.progress(
    `the stack still makes plan ${saved.id}: applying it, paying at most $${saved.totalUsd}`,
  );
  // The provider holds this run to the plan: its spend cap is the plan's total (never above the cap
  // the run had), and it may pay only the actions the plan pays (within those the run allowed).
  const config = await stack.getAllConfig();
  const cap = minAtomic(usdToAtomic(saved.totalUsd), usdToAtomic(await currentCapUsd(session, stack)));
  const allowed = (session.settings.allowedActions ?? config["run402:allowedActions"]?.value ?? "")
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
  const planned = [...new Set(saved.payments.map((p) => p.action))].filter(
    (a) => allowed.length === 0 || allowed.includes(a),
  );
  const run: RunSettings = { maxSpendUsd: planned.length > 0 ? atomicToUsd(cap) : "0" };
  if (planned.length > 0) run.allowedActions = planned.join(",");
  useSettings(session, stack, run);
  await operate(session.io, report, `applying the saved plan ${saved.id} (pulumi up)`, (c) =>
    stack.up({ onEvent: c.onEvent, signal: session.io.abort, ...policyOf(session) }),
  );
  await explainInterrupted(session, stack, report);
  return withTotals(report, true);
}

/** The smaller of two atomic amounts. */
const minAtomic = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** The spend cap this run has before any confirmation: --max-spend, else the stack's, else 25. */
async function currentCapUsd(session: Session, stack: EngineStack): Promise<string> {
  const cap =
    session.settings.maxSpendUsd ?? ((await stack.getAllConfig())["run402:maxSpendUsd"]?.value || "25");
  const ceiling = session.settings.spendCeilingUsd;
  return ceiling === undefined ? cap : atomicToUsd(minAtomic(usdToAtomic(cap), usdToAtomic(ceiling)));
}

export async function apply(session: Session, report: Report): Promise<Report> {
  // A saved plan is the reviewed confirmation: it needs no --yes.
  if (session.options.plan) return applyPlan(session, report, session.options.plan);
  if (!session.options.yes && !session.io.interactive) {
    fail(report, [
      {
        code: "CLI_CONFIRMATION_REQUIRED",
        message: "apply changes and may pay: pass --yes to run it without a terminal.",
      },
    ]);
    return report;
  }
  const stack = (await prepare(session, true)) as EngineStack;
  if (!(await ready(session, stack, report))) return withTotals(report, true);
  const run: RunSettings = {};
  if (!session.options.yes) {
    const planned = emptyReport("plan", report.stack);
    useSettings(session, stack);
    const previewed = await operate(session.io, planned, "planning (nothing is paid)", (c) =>
      stack
        .preview({ onEvent: c.onEvent, signal: session.io.abort, ...policyOf(session) })
        .then(() => undefined),
    );
    withTotals(planned, true);
    process.stderr.write(renderHuman(planned));
    if (!previewed) return Object.assign(report, { ok: false, errors: planned.errors });
    const total = planned.totalPlannedUsd ?? "0.00";
    const question =
      usdToAtomic(total) > 0n
        ? `Apply these changes, paying up to $${total}? [y/N] `
        : "Apply these changes? Nothing will be paid. [y/N] ";
    if (!(await session.io.confirm(question))) {
      fail(report, [{ code: "CLI_ABORTED", message: "Not confirmed; nothing was changed or paid." }]);
      return report;
    }
    // What was confirmed is what this run may pay: its spend cap (never above the cap it had).
    run.maxSpendUsd = atomicToUsd(
      minAtomic(usdToAtomic(total), usdToAtomic(await currentCapUsd(session, stack))),
    );
  }
  useSettings(session, stack, run);
  await operate(session.io, report, "applying (pulumi up)", (c) =>
    stack.up({ onEvent: c.onEvent, signal: session.io.abort, ...policyOf(session) }),
  );
  await explainInterrupted(session, stack, report);
  return withTotals(report, true);
}
