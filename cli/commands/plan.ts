/** `plan`: a preview of what apply would change and pay (nothing is paid); `--save` writes a plan file. */
import { relative, resolve } from "node:path";
import type { EngineStack } from "../engine/index.js";
import { buildPlan, type PlanDocument, PlanRecorder, writePlan } from "../plan.js";
import { type Report, withTotals } from "../report.js";
import { stackForecast } from "./forecast.js";
import { operate } from "./operate.js";
import { defaultApiBase, policyOf, prepare, type Session, useSettings } from "./session.js";

export async function plan(session: Session, report: Report): Promise<Report> {
  const stack = (await prepare(session, true)) as EngineStack;
  // With a policy pack, the JSON always says what it found (an empty list: none).
  if (session.options.policyPacks.length > 0) report.violations = [];
  const { save } = session.options;
  if (!save) {
    useSettings(session, stack);
    const previewed = await operate(session.io, report, "planning (pulumi preview; nothing is paid)", (c) =>
      stack
        .preview({ onEvent: c.onEvent, signal: session.io.abort, ...policyOf(session) })
        .then(() => undefined),
    );
    if (previewed) await planForecast(session, stack, report);
    return withTotals(report, true);
  }
  const doc = await previewPlan(session, stack, report, "planning (pulumi preview; nothing is paid)");
  withTotals(report, true);
  if (!doc) return report;
  await planForecast(session, stack, report);
  const file = resolve(session.cwd, save);
  writePlan(file, doc);
  report.savedPlan = { id: doc.id, fingerprint: doc.fingerprint, file, totalUsd: doc.totalUsd };
  session.io.progress(
    `saved plan ${doc.id} to ${file}: ${doc.steps.length} step(s), pays at most $${doc.totalUsd}`,
  );
  return report;
}

/** `plan`: the renewals the existing state will pay within --days, beside what converging pays now. */
async function planForecast(session: Session, stack: EngineStack, report: Report): Promise<void> {
  try {
    report.forecast = await stackForecast(session, stack, await stack.exportStack(), session.options.days);
  } catch (error) {
    // The plan stands without it; say why it is missing.
    session.io.progress(`forecast unavailable: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Previews the stack and returns the plan document it makes (undefined when the preview failed). */
export async function previewPlan(
  session: Session,
  stack: EngineStack,
  report: Report,
  label: string,
): Promise<PlanDocument | undefined> {
  const recorder = new PlanRecorder();
  useSettings(session, stack);
  const previewed = await operate(session.io, report, label, (c) =>
    stack
      .preview({
        onEvent: (event) => {
          c.onEvent(event);
          recorder.onEvent(event);
        },
        signal: session.io.abort,
        ...policyOf(session),
      })
      .then(() => undefined),
  );
  if (!previewed) return undefined;
  const config = await stack.getAllConfig();
  return buildPlan(
    {
      project: session.projectName,
      stack: stack.name,
      stackId: session.settings.stackId,
      apiBase: session.settings.apiBase ?? config["run402:apiBase"]?.value ?? defaultApiBase,
      manifestFile: relative(session.cwd, session.manifestFile) || session.manifestFile,
      manifest: session.manifest,
    },
    recorder.result(),
  );
}
