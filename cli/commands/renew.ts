/** `renew`: pays the Tier's due renewals and nothing else (pulumi up --target tier). */
import { type Report, withTotals } from "../report.js";
import { shortType } from "../urn.js";
import { explainInterrupted, operate, ready } from "./operate.js";
import { missingStack, policyOf, prepare, type Session, useSettings } from "./session.js";

export async function renew(session: Session, report: Report): Promise<Report> {
  const stack = await prepare(session, false);
  if (!stack) return missingStack(session, report);
  const state = await stack.exportStack();
  const tier = (state.deployment.resources ?? []).find((r) => shortType(r.type) === "run402:Tier");
  if (!tier) {
    session.io.progress("the stack holds no Tier: nothing to renew");
    return withTotals(report, false);
  }
  if (!(await ready(session, stack, report))) return withTotals(report, true);
  // This run may pay for renewals only: any other action the tier needs is reported and refused.
  useSettings(session, stack, { allowedActions: "renew" });
  await operate(
    session.io,
    report,
    "renewing due leases (pulumi up --target tier; pays renewals only)",
    (c) =>
      stack.up({ onEvent: c.onEvent, target: [tier.urn], signal: session.io.abort, ...policyOf(session) }),
  );
  await explainInterrupted(session, stack, report);
  return withTotals(report, true);
}
