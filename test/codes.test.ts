/**
 * The error-code registry (core/codes.ts) against what docs/cli.md promises: its "Exit codes" table
 * (each code in the row of its exit), its "Error codes" table (every code, its exit, its section),
 * and each code's docs anchor (a heading that exists). Reads files only.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { repoRoot } from "~test/engine.js";
import { errorCodes, exitCodeFor, isRegistered, type RegisteredCode } from "../core/codes.js";
import { BaseError, reportedCode } from "../core/errors.js";
import { ApiError, DeployFailedError } from "../sdk/errors/http.js";
import { PaymentCredentialMismatchError } from "../sdk/errors/payment.js";

const cliDoc = readFileSync(join(repoRoot, "docs", "cli.md"), "utf8");
const registered = Object.keys(errorCodes) as RegisteredCode[];

/** The rows of the first Markdown table after `heading`, as cells (header and rule dropped). */
function tableAfter(doc: string, heading: string): string[][] {
  const lines = doc.slice(doc.indexOf(`\n${heading}\n`)).split("\n");
  const start = lines.findIndex((line) => line.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith("|")) break;
    rows.push(
      line
        .slice(1, -1)
        .split("|")
        .map((cell) => cell.trim()),
    );
  }
  return rows.slice(2);
}

/** GitHub's anchors of a Markdown file's headings (fenced code left out). */
function anchors(doc: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of doc.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const heading = !fenced && /^#{1,6} (.+)$/.exec(line);
    if (heading)
      out.add(
        (heading[1] as string)
          .toLowerCase()
          .replace(/[^a-z0-9 _-]/g, "")
          .replace(/ /g, "-"),
      );
  }
  return out;
}

/** The backquoted names in a cell: codes (`POLICY_MAX_SPEND`) and families (`POLICY_*`). */
const namesIn = (cell: string): string[] =>
  [...cell.matchAll(/`([A-Z0-9_]+\*?)`/g)].map((m) => m[1] as string);
const covers = (name: string, code: string): boolean =>
  name.endsWith("*") ? code.startsWith(name.slice(0, -1)) : name === code;

describe("the error-code registry", () => {
  test("behavior: docs/cli.md's exit-code table puts every registered code in the row of its exit, and only there", () => {
    const rows = tableAfter(cliDoc, "## Exit codes").map(([exit, , names]) => ({
      exit: Number(exit),
      names: namesIn(names ?? ""),
    }));
    expect(rows.map((r) => r.exit)).toEqual([0, 2, 3, 4, 5, 6, 130]);
    // A code named outright belongs to that row; else to the row of its longest family (`PAYMENT_*`).
    const weight = (name: string, code: string) =>
      !covers(name, code) ? 0 : name.endsWith("*") ? name.length : 1000;
    for (const code of registered) {
      const best = Math.max(...rows.flatMap((r) => r.names.map((name) => weight(name, code))));
      const rowsCovering = rows.filter((r) => r.names.some((name) => weight(name, code) === best));
      expect(best, `${code} is in no row`).toBeGreaterThan(0);
      expect(
        rowsCovering.map((r) => r.exit),
        code,
      ).toEqual([errorCodes[code].exit]);
    }
    // Every code the table names is registered, with that row's exit; every family names at least one.
    for (const row of rows) {
      for (const name of row.names) {
        if (name.endsWith("*"))
          expect(
            registered.some((code) => covers(name, code)),
            name,
          ).toBe(true);
        else expect(isRegistered(name) && errorCodes[name].exit, name).toBe(row.exit);
      }
    }
  });

  test("behavior: docs/cli.md's error-code table lists exactly the registered codes, each with its exit and section", () => {
    const rows = tableAfter(cliDoc, "### Error codes").map(([code, exit, doc]) => ({
      code: (code ?? "").replaceAll("`", ""),
      exit: Number(exit),
      doc: /\]\(([^)]+)\)/.exec(doc ?? "")?.[1],
    }));
    expect(rows.map((r) => r.code)).toEqual(registered);
    for (const row of rows) {
      const entry = errorCodes[row.code as RegisteredCode];
      expect(row.exit, row.code).toBe(entry.exit);
      const [file, anchor] = entry.doc.split("#");
      expect(row.doc, row.code).toBe(file === "docs/cli.md" ? `#${anchor}` : `${file?.slice(5)}#${anchor}`);
    }
  });

  test("behavior: every code's docs anchor is a heading of its file", () => {
    const docs = new Map<string, Set<string>>();
    for (const code of registered) {
      const [file, anchor] = errorCodes[code].doc.split("#") as [string, string];
      if (!docs.has(file)) docs.set(file, anchors(readFileSync(join(repoRoot, file), "utf8")));
      expect(docs.get(file)?.has(anchor), `${code}: ${errorCodes[code].doc}`).toBe(true);
    }
  });

  test("behavior: an error reports its registered code; a code of Run402's API reports as RUN402_API_ERROR", () => {
    expect(
      reportedCode(
        new PaymentCredentialMismatchError({ rail: "x402", field: "amount", signed: "2", approved: "1" }),
      ),
    ).toBe("PAYMENT_CREDENTIAL_MISMATCH");
    const api = new ApiError({
      method: "POST",
      url: "https://api.run402.com/tiers/v1/hobby",
      status: 409,
      envelope: { code: "TIER_REQUIRED", message: "A tier is required" },
      body: null,
    });
    expect(api.code).toBe("TIER_REQUIRED");
    expect(reportedCode(api)).toBe("RUN402_API_ERROR");
    expect(api.shortMessage).toMatch(/TIER_REQUIRED/);
    const deploy = new DeployFailedError({ operationId: "op_1", status: "failed", code: "MIGRATION_FAILED" });
    expect(reportedCode(deploy)).toBe("RUN402_API_ERROR");
    expect(deploy.shortMessage).toMatch(/MIGRATION_FAILED/);
    expect(reportedCode(new DeployFailedError({ operationId: "op_1", status: "failed" }))).toBe(
      "DEPLOY_FAILED",
    );
    expect(reportedCode(Object.assign(new Error("in use"), { code: "CONFLICT_SANDBOX_IN_USE" }))).toBe(
      "CONFLICT_SANDBOX_IN_USE",
    );
    expect(reportedCode(Object.assign(new Error("gone"), { code: "ENOENT" }))).toBeUndefined();
    expect(reportedCode(new Error("a bug"))).toBeUndefined();
    expect(reportedCode(new BaseError("x", { code: "JOURNAL_LOCKED" }))).toBe("JOURNAL_LOCKED");
  });

  test("error: an unregistered code exits as the engine's", () => {
    expect(exitCodeFor("RUN402_PAYMENT_CREDENTIAL_MISMATCH")).toBe(5);
    expect(exitCodeFor("toString")).toBe(5);
    expect(isRegistered("constructor")).toBe(false);
  });
});
