/**
 * The commands of run402-pulumi: each builds one {@link Report}; main.ts prints it and exits. This
 * module dispatches a command to its module in cli/commands/ (one per command, sharing
 * cli/commands/session.ts); cli/engine/ drives Pulumi for them.
 */
import type { CliOptions } from "./args.js";
import { apply } from "./commands/apply.js";
import { destroy } from "./commands/destroy.js";
import { forecast } from "./commands/forecast.js";
import { plan } from "./commands/plan.js";
import { reconcile } from "./commands/reconcile.js";
import { refresh } from "./commands/refresh.js";
import { renew } from "./commands/renew.js";
import { fail, type Io, load, type Session, toErrors } from "./commands/session.js";
import { status } from "./commands/status.js";
import { emptyReport, type Report } from "./report.js";

export {
  type Io,
  runnerLocalBackend,
  runnerLocalJournal,
  toErrors,
} from "./commands/session.js";

/** Runs one command to its report (never throws). */
export async function runCommand(options: CliOptions, io: Io): Promise<Report> {
  const report = emptyReport(options.command, options.stack);
  let session: Session | undefined;
  try {
    session = await load(options, report, io);
    if (!session) return report;
    switch (options.command) {
      case "validate":
        return report;
      case "status":
        return await status(session, report);
      case "plan":
        return await plan(session, report);
      case "apply":
        return await apply(session, report);
      case "renew":
        return await renew(session, report);
      case "refresh":
        return await refresh(session, report);
      case "destroy":
        return await destroy(session, report);
      case "reconcile":
        return await reconcile(session, report);
      case "forecast":
        return await forecast(session, report);
      default:
        return report;
    }
  } catch (error) {
    fail(report, toErrors(error));
    return report;
  } finally {
    if (session?.stop) {
      io.progress(
        "stopping the sandbox… (its state stays in .run402/sandbox; its URLs answer only while one runs)",
      );
      await session.stop().catch((error: unknown) => io.progress(`sandbox stop failed: ${String(error)}`));
    }
  }
}
