/** `refresh`: reads the stack back from Run402, clearing pending operations an interrupted run left. */
import { type Report, withTotals } from "../report.js";
import { explainInterrupted, operate, pendingOperations, plainOutputs, ready } from "./operate.js";
import { missingStack, prepare, recover, type Session, useSettings } from "./session.js";

export async function refresh(session: Session, report: Report): Promise<Report> {
  const stack = await prepare(session, false);
  if (!stack) return missingStack(session, report);
  if (!(await ready(session, stack, report, false))) return withTotals(report, false);
  const pending = await pendingOperations(stack);
  useSettings(session, stack);
  const refreshed = await operate(session.io, report, "refreshing from Run402 (pulumi refresh)", (c) =>
    stack
      .refresh({ onEvent: c.onEvent, signal: session.io.abort, clearPendingCreates: true })
      .then(() => undefined),
  );
  if (refreshed && pending.length > 0) {
    recover(
      report,
      `cleared ${pending.length} pending operation(s) (${pending.map((p) => `${p.op} ${p.resource}`).join(", ")}); their resources were read back from Run402`,
    );
  }
  if (refreshed) report.outputs = plainOutputs(await stack.outputs());
  await explainInterrupted(session, stack, report);
  return withTotals(report, false);
}
