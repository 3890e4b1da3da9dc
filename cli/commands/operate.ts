/**
 * Running engine operations into a report: one operation's steps, payments and errors; making a
 * stack ready for a run that changes it (stale locks, pending operations); and explaining a run a
 * signal stopped.
 */
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import type * as Journal from "../../sdk/pay/journal.js";
import {
  type EngineStack,
  type ExportedState,
  lockedFromEngine,
  type OperationResult,
  type Outputs,
} from "../engine/index.js";
import { clearStale, describeLock, fileBackendDir, leftovers, lockedError, stackLocks } from "../locks.js";
import { emptyReport, type PendingReport, type Report } from "../report.js";
import type { ReportedError } from "../reported.js";
import { StepCollector } from "../steps.js";
import { urnName } from "../urn.js";
import { defaultApiBase, fail, type Io, recover, type Session, toErrors, useSettings } from "./session.js";

export function plainOutputs(outputs: Outputs): Record<string, unknown> {
  const plain: Record<string, unknown> = {};
  for (const [key, output] of Object.entries(outputs)) plain[key] = output.secret ? "[secret]" : output.value;
  return plain;
}

/** The backend URL the stack lives in. */
function backendOf(session: Session, stack: EngineStack): string {
  return stack.backend || session.options.backend || "";
}

/** The exact command that repairs this stack (refresh), as the user would type it. */
function refreshCommand(session: Session): string {
  const { options } = session;
  const manifest = relative(session.cwd, session.manifestFile) || session.manifestFile;
  return [
    "run402-pulumi refresh",
    `--manifest ${manifest}`,
    ...(options.stack !== "dev" ? [`--stack ${options.stack}`] : []),
    ...(options.backend ? [`--backend ${options.backend}`] : []),
    ...(options.sandbox ? ["--sandbox"] : []),
  ].join(" ");
}

/** Pending operations in the stack's state (left by a run that died or was stopped). */
export async function pendingOperations(stack: EngineStack, state?: ExportedState): Promise<PendingReport[]> {
  const pending = (state ?? (await stack.exportStack())).deployment.pending_operations ?? [];
  return pending.map((p) => ({ resource: urnName(p.resource.urn), op: p.type }));
}

/**
 * Makes the stack ready for a run that changes it: a lock left by a run that is gone (same host,
 * dead pid) is cleared, a live one stops here; pending operations a dead run left are cleared by a
 * refresh (what they were doing is read back from Run402; creates are keyed, so a retried create
 * returns what the dead run made). Everything repaired is reported.
 */
export async function ready(
  session: Session,
  stack: EngineStack,
  report: Report,
  clearPending = true,
): Promise<boolean> {
  for (const left of leftovers()) {
    session.io.progress(
      `warning: process ${left.pid} (${left.name}) of an earlier run is still running, although the run402-pulumi process that started it (pid ${left.owner}) is gone; if it does not end by itself, stop it: kill ${left.pid}`,
    );
  }
  const dir = fileBackendDir(backendOf(session, stack));
  if (dir) {
    const holders: string[] = [];
    for (const lock of stackLocks(dir, session.projectName, stack.name)) {
      if (clearStale(lock)) {
        const line = `cleared a stale lock of stack ${stack.name}: ${describeLock(lock)}; that run is gone`;
        session.io.progress(line);
        recover(report, line);
      } else holders.push(describeLock(lock));
    }
    if (holders.length > 0) {
      fail(report, [lockedError(stack.name, holders)]);
      return false;
    }
  }
  if (session.repaired) recover(report, session.repaired);
  if (!clearPending) return true;
  const pending = await pendingOperations(stack);
  if (pending.length === 0 && !session.repaired) return true;
  const list = pending.map((p) => `${p.op} ${p.resource}`).join(", ");
  const sub = emptyReport("refresh", report.stack);
  useSettings(session, stack);
  const cleared = await operate(
    session.io,
    sub,
    pending.length > 0
      ? `clearing pending operations of an interrupted run (${list}): refresh`
      : "refreshing the restored checkpoint from Run402: refresh",
    (c) =>
      stack
        .refresh({ onEvent: c.onEvent, signal: session.io.abort, clearPendingCreates: true })
        .then(() => undefined),
  );
  if (!cleared) {
    fail(report, sub.errors);
    return false;
  }
  if (pending.length > 0) {
    const line = `cleared ${pending.length} pending operation(s) left by an interrupted run (${list}) and refreshed the stack from Run402`;
    session.io.progress(line);
    recover(report, line);
  }
  return true;
}

/** Runs one engine operation, folding its steps, payments and errors into the report. */
export async function operate(
  io: Io,
  report: Report,
  label: string,
  op: (collector: StepCollector) => Promise<OperationResult | undefined>,
): Promise<boolean> {
  if (io.abort.aborted) {
    fail(report, [{ code: "ENGINE_CANCELLED", message: `Stopped by a signal before ${label}.` }]);
    return false;
  }
  const collector = new StepCollector((line) => io.progress(line));
  io.progress(`${label}…`);
  try {
    const result = await op(collector);
    if (result?.outputs) report.outputs = plainOutputs(result.outputs);
    return true;
  } catch (error) {
    const text = `${collector.diagnostics()}\n${error instanceof Error ? error.message : String(error)}`;
    const coded = collector.errors();
    const locked = lockedFromEngine(report.stack, text);
    if (io.abort.aborted) {
      const unfinished = collector.unfinished();
      report.pending = [...(report.pending ?? []), ...unfinished];
      const finished = collector
        .resources()
        .filter((r) => !["same", "read", "refresh"].includes(r.op))
        .filter((r) => !unfinished.some((u) => u.resource === r.name))
        .map((r) => `${r.op} ${r.name}`);
      fail(report, [
        {
          code: "ENGINE_CANCELLED",
          message: `Stopped by a signal during ${label}. Finished: ${finished.join(", ") || "nothing"}. Unfinished: ${unfinished.map((u) => `${u.op} ${u.resource}`).join(", ") || "nothing"}.`,
        },
      ]);
    } else if (locked) fail(report, [locked]);
    else if (collector.violations().some((v) => v.level === "mandatory")) {
      // A policy pack stopped the run: one error per mandatory violation, naming its policy.
      fail(
        report,
        collector
          .violations()
          .filter((v) => v.level === "mandatory")
          .map((v) => ({
            code: "POLICY_PACK_VIOLATION",
            message: `${v.policy}${v.resource ? ` (${v.resource})` : ""}: ${v.message}`,
          })),
      );
    } else if (coded.length > 0) fail(report, coded);
    else fail(report, toErrors(error));
    return false;
  } finally {
    const violations = collector.violations();
    if (violations.length > 0) report.violations = [...(report.violations ?? []), ...violations];
    report.resources = collector.resources();
    report.actions = collector.actions();
    report.payments.push(...collector.payments());
  }
}

/** The journal's unfinished intents (pending, paid) for this run's API: what a stopped run leaves. */
async function unresolvedIntents(session: Session, stack: EngineStack): Promise<Journal.IntentRecord[]> {
  const config = await stack.getAllConfig();
  // Loaded here, on a stopped run only: the wallet module brings viem's signers (~0.3 s of start-up).
  const [{ configDir }, { open }] = await Promise.all([
    import("../../sdk/wallet.js"),
    import("../../sdk/pay/journal.js"),
  ]);
  const path =
    session.settings.journalPath ??
    config["run402:journalPath"]?.value ??
    join(configDir(), "payment-journal.jsonl");
  if (!existsSync(path)) return [];
  const apiBase = new URL(session.settings.apiBase ?? config["run402:apiBase"]?.value ?? defaultApiBase);
  return open({ path }).unfinished(apiBase.origin + apiBase.pathname.replace(/\/$/, ""));
}

/** After a run a signal stopped: name what is pending in the state and the command that clears it. */
export async function explainInterrupted(
  session: Session,
  stack: EngineStack,
  report: Report,
): Promise<void> {
  if (!report.errors.some((e) => e.code === "ENGINE_CANCELLED")) return;
  let pending: PendingReport[] = [];
  try {
    pending = await pendingOperations(stack);
  } catch {
    // The state cannot be read now; the message below still names the command.
  }
  report.pending = [...(report.pending ?? []), ...pending];
  const cancelled = report.errors.find((e) => e.code === "ENGINE_CANCELLED") as ReportedError;
  const unresolved = await unresolvedIntents(session, stack).catch(() => []);
  if (unresolved.length > 0) {
    cancelled.message += ` Unresolved payment(s): ${unresolved.map((r) => `${r.intentId} (${r.state === "paid" ? "paid, answer not yet delivered" : "may have been paid"}; idempotency key ${r.idempotencyKey})`).join(", ")}: they stay in the payment journal, and the next run resolves them with the server and on chain without paying again.`;
  }
  cancelled.message +=
    pending.length > 0
      ? ` The state holds ${pending.length} pending operation(s) (${pending.map((p) => `${p.op} ${p.resource}`).join(", ")}): run \`${refreshCommand(session)}\` to read them back from Run402 and clear them (the next apply also does).`
      : " Nothing is pending in the state; the next apply continues from here.";
}
