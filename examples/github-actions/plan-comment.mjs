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
const code = (text) => `\`${String(text).replaceAll("`", "'").replaceAll("\n", " ")}\``;
const html = (text) => String(text).replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
const names = (list, limit = 20) =>
  list.length > limit
    ? `${list.slice(0, limit).join(", ")} and ${list.length - limit} more`
    : list.join(", ");
/** A deployment's changes as Markdown list items: files, migrations, functions, secrets, routes, subdomains. */
const changeItems = (changes) => {
  const items = [];
  for (const [label, group] of [
    ["files", changes.site],
    ["migrations", changes.migrations],
    ["functions", changes.functions],
    ["secrets", changes.secrets],
    ["routes", changes.routes],
    ["subdomains", changes.subdomains],
  ]) {
    const parts = [];
    for (const [word, list] of [
      ["added", group?.added],
      ["changed", group?.changed],
      ["removed", group?.removed],
    ]) {
      if (Array.isArray(list) && list.length > 0)
        parts.push(`${list.length} ${word}: ${names(list.map(code))}`);
    }
    if (parts.length > 0) items.push(`- **${label}**: ${parts.join("; ")}`);
  }
  return items;
};
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
  for (const a of plan.actions) {
    if (!a.changes) continue;
    const items = changeItems(a.changes);
    if (items.length === 0) continue;
    lines.push(
      "",
      `<details open><summary>${html(a.resource)}: ${html(a.changes.summary || a.action)}</summary>`,
      "",
      ...items,
      "",
      "</details>",
    );
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
      `- \`${cell(e.code)}\`${e.file !== undefined ? ` in \`${cell(e.file)}\`` : ""}${e.pointer !== undefined ? ` at \`${cell(e.pointer || "/")}\`` : ""}: ${cell(e.message)}`,
    );
}
process.stdout.write(`${lines.join("\n")}\n`);
