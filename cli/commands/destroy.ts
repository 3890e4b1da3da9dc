/** `destroy`: deletes every resource of the stack, after a confirmation. */
import type { EngineStack } from "../engine/index.js";
import { type Report, withTotals } from "../report.js";
import { explainInterrupted, operate, ready } from "./operate.js";
import { fail, prepare, type Session, useSettings } from "./session.js";

export async function destroy(session: Session, report: Report): Promise<Report> {
  if (!session.options.yes && !session.io.interactive) {
    fail(report, [
      {
        code: "CLI_CONFIRMATION_REQUIRED",
        message: "destroy deletes resources: pass --yes to run it without a terminal.",
      },
    ]);
    return report;
  }
  if (
    !session.options.yes &&
    !(await session.io.confirm(`Destroy every resource of stack ${session.options.stack}? [y/N] `))
  ) {
    fail(report, [{ code: "CLI_ABORTED", message: "Not confirmed; nothing was changed." }]);
    return report;
  }
  const stack = (await prepare(session, true)) as EngineStack;
  if (!(await ready(session, stack, report))) return withTotals(report, false);
  useSettings(session, stack);
  await operate(session.io, report, "destroying (pulumi destroy)", (c) =>
    stack.destroy({ onEvent: c.onEvent, signal: session.io.abort }).then(() => undefined),
  );
  await explainInterrupted(session, stack, report);
  return withTotals(report, false);
}
