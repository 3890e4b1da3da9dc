/** `status`: the stack's outputs, resources and pending operations, read from its state (no engine operation). */
import { stateOutputs } from "../engine/index.js";
import type { Report } from "../report.js";
import { publicOutputs } from "../steps.js";
import { shortType, urnName } from "../urn.js";
import { pendingOperations, plainOutputs } from "./operate.js";
import { existingStack, missingStack, noteRepair, type Session } from "./session.js";

export async function status(session: Session, report: Report): Promise<Report> {
  const stack = await existingStack(session);
  if (!stack) return missingStack(session, report);
  noteRepair(session, stack, report);
  // One read of the state (a file in a file backend): outputs, resources and pending operations.
  const state = await stack.exportStack();
  report.outputs = plainOutputs(stateOutputs(state));
  report.resources = (state.deployment.resources ?? [])
    .filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/"))
    .map((r) => ({
      type: shortType(r.type),
      name: urnName(r.urn),
      op: "same",
      outputs: publicOutputs(r.type, r.outputs),
    }));
  report.pending = await pendingOperations(stack, state);
  return report;
}
