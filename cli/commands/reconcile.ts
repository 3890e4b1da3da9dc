/** `reconcile`: refresh then converge, round after round, until a signal stops it. */
import { sumUsd } from "../../sdk/money.js";
import type { EngineStack } from "../engine/index.js";
import { emptyReport, type Report, withTotals } from "../report.js";
import type { ReportedError } from "../reported.js";
import { explainInterrupted, operate, ready } from "./operate.js";
import { fail, policyOf, prepare, type Session, useSettings } from "./session.js";

function sleep(ms: number, stopping: Promise<void>): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(done, ms);
    void stopping.then(() => {
      clearTimeout(timer);
      done();
    });
  });
}

export async function reconcile(session: Session, report: Report): Promise<Report> {
  const stack = (await prepare(session, true)) as EngineStack;
  let stopped = false;
  void session.io.stopping.then(() => {
    stopped = true;
    session.io.progress(
      "stopping: no new round; the current one is cancelled unless it ends within 3 s (a second signal exits at once)",
    );
  });
  if (!(await ready(session, stack, report))) return withTotals(report, false);
  useSettings(session, stack);
  let rounds = 0;
  let failedRounds = 0;
  const errors: ReportedError[] = [];
  const payments = report.payments;
  while (!stopped) {
    rounds += 1;
    const round = emptyReport("reconcile", report.stack);
    round.payments = payments;
    session.io.progress(`round ${rounds} at ${new Date().toISOString()}`);
    const refreshed = await operate(session.io, round, "refreshing (pulumi refresh)", (c) =>
      stack.refresh({ onEvent: c.onEvent, signal: session.io.abort }).then(() => undefined),
    );
    const resources = round.resources;
    const converged =
      refreshed &&
      !stopped &&
      (await operate(session.io, round, "converging (pulumi up)", (c) =>
        stack.up({ onEvent: c.onEvent, signal: session.io.abort, ...policyOf(session) }),
      ));
    if (!round.ok) {
      failedRounds += 1;
      for (const e of round.errors) errors.push({ ...e, message: `round ${rounds}: ${e.message}` });
    }
    Object.assign(report, {
      resources: round.resources.length > 0 ? round.resources : resources,
      actions: round.actions,
      outputs: round.outputs ?? report.outputs,
    });
    session.io.progress(
      converged
        ? `round ${rounds} done: ${round.actions.length} change(s), paid $${sumUsd(round.payments.map((p) => p.amountUsd))} so far`
        : `round ${rounds} failed: ${round.errors.map((e) => `[${e.code}] ${e.message}`).join("; ")}`,
    );
    if (!stopped) await sleep(session.options.everyMs, session.io.stopping);
  }
  report.rounds = rounds;
  report.failedRounds = failedRounds;
  // A failed round is not hidden by a later one: the run reports every failure and exits non-zero.
  if (errors.length > 0) fail(report, errors);
  await explainInterrupted(session, stack, report);
  return withTotals(report, false);
}
