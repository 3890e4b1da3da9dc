// Renders the `run402-pulumi plan --save … --json` document as a Markdown PR comment.
// Usage: node plan-comment.mjs plan.json [exit-code] > comment.md
import { readFileSync } from "node:fs";

const [file = "plan.json", exit = "0"] = process.argv.slice(2);
const marker = "<!-- run402-plan -->";
let plan;
try {
  plan = JSON.parse(readFileSync(file, "utf8"));
} catch (error) {
  process.stdout.write(
    `${marker}\n### Run402 plan failed\n\nNo plan was produced (exit ${exit}): ${error.message}\n`,
  );
  process.exit(0);
}

const cell = (text) =>
  String(text ?? "")
    .replaceAll("|", "\\|")
    .replaceAll("\n", " ");
const lines = [marker];
if (plan.ok) {
  const rails = Object.entries(plan.plannedByRail ?? {})
    .map(([rail, usd]) => `$${usd} on ${rail}`)
    .join(", ");
  lines.push(
    `### Run402 plan for \`${cell(plan.stack)}\`: $${plan.totalPlannedUsd ?? "0.00"} to pay${rails ? ` (${rails})` : ""}`,
    "",
  );
  if (plan.actions.length === 0) {
    lines.push("No changes: the stack matches the manifest.");
  } else {
    lines.push("| resource | action | cost | rail | why |", "| --- | --- | --- | --- | --- |");
    for (const a of plan.actions) {
      lines.push(
        `| ${cell(a.resource)} | ${cell(a.action)} | ${a.rail ? `$${cell(a.amountUsd)}` : "free"} | ${cell(a.rail ?? "–")} | ${cell(a.reason)} |`,
      );
    }
  }
  const saved = plan.savedPlan;
  if (saved) {
    lines.push(
      "",
      `Plan \`${cell(saved.id)}\` (fingerprint \`${cell(saved.fingerprint)}\`), saved as the artifact \`run402-plan\`.`,
      `Nothing was paid by this plan. Merging applies exactly this plan, paying at most $${cell(saved.totalUsd)}; if the stack no longer makes it by then (a price, the lease or main changed), the apply changes and pays nothing.`,
    );
  } else {
    lines.push("", "Nothing was paid by this plan.");
  }
} else {
  lines.push(`### Run402 plan for \`${cell(plan.stack)}\` failed (exit ${exit})`, "");
  for (const e of plan.errors)
    lines.push(
      `- \`${cell(e.code)}\`${e.pointer !== undefined ? ` at \`${cell(e.pointer || "/")}\`` : ""}: ${cell(e.message)}`,
    );
}
process.stdout.write(`${lines.join("\n")}\n`);
