/**
 * The layers of docs/ARCHITECTURE.md, checked on the import graph of the product code (test/layers.ts):
 * nothing imports up (core ← schema ← sdk ← provider ← program, cli), provider/impl never imports
 * provider/resources, schema/ and core/ import no I/O module, and there is no import cycle. Each rule is
 * also shown to catch a planted violation.
 */
import { describe, expect, test } from "vitest";
import {
  importCycles,
  importGraph,
  ioImports,
  productSources,
  repositoryRoot,
  type Source,
  upwardImports,
} from "./layers.js";

const sources = productSources(repositoryRoot);

/** The sources with `line` added at the top of `path`. */
function planted(path: string, line: string): Source[] {
  expect(
    sources.some((s) => s.path === path),
    path,
  ).toBe(true);
  return sources.map((s) => (s.path === path ? { path, text: `${line}\n${s.text}` } : s));
}

describe("layers", () => {
  test("behavior: the product code is read whole (every layer, index.ts)", () => {
    const graph = importGraph(sources);
    for (const file of [
      "core/errors.ts",
      "schema/validate.ts",
      "sdk/pay/payer.ts",
      "provider/impl.ts",
      "cli/run.ts",
      "index.ts",
    ])
      expect(graph.has(file), file).toBe(true);
    expect(graph.get("schema/errors.ts")).toEqual(["core/errors.ts"]);
  });

  test("behavior: no import goes up the layers, and provider/impl does not import provider/resources", () => {
    expect(upwardImports(importGraph(sources))).toEqual([]);
  });

  test("behavior: schema/ and core/ import no module that touches files, processes or the network", () => {
    expect([...ioImports(sources, "schema"), ...ioImports(sources, "core")]).toEqual([]);
  });

  test("behavior: there is no import cycle", () => {
    expect(importCycles(importGraph(sources))).toEqual([]);
  });

  test("error: a planted upward import is found, by layer", () => {
    const cases: [string, string, string][] = [
      [
        "schema/validate.ts",
        'import { BaseError } from "../sdk/index.js";',
        "schema/validate.ts → sdk/index.ts",
      ],
      [
        "sdk/client.ts",
        'import type { Tier } from "../provider/index.js";',
        "sdk/client.ts → provider/index.ts",
      ],
      ["provider/stack.ts", 'import { usage } from "../cli/args.js";', "provider/stack.ts → cli/args.ts"],
      [
        "provider/impl/tier.ts",
        'import type { Tier } from "../resources/tier.js";',
        "provider/impl/tier.ts → provider/resources/tier.ts",
      ],
      ["core/errors.ts", 'import "../schema/index.js";', "core/errors.ts → schema/index.ts"],
    ];
    for (const [file, line, arrow] of cases)
      expect(upwardImports(importGraph(planted(file, line)))).toEqual([arrow]);
  });

  test("error: a planted I/O import in schema/ is found", () => {
    expect(
      ioImports(planted("schema/release.ts", 'import { readFileSync } from "node:fs";'), "schema"),
    ).toEqual(["schema/release.ts → node:fs"]);
    expect(
      ioImports(planted("schema/release.ts", 'import { spawn } from "child_process";'), "schema"),
    ).toEqual(["schema/release.ts → child_process"]);
  });

  test("error: a planted cycle is found, also through a dynamic import", () => {
    expect(
      importCycles(importGraph(planted("cli/urn.ts", 'import type { Report } from "./report.js";'))),
    ).toEqual([["cli/plan.ts", "cli/report.ts", "cli/urn.ts"]]);
    const dynamic = planted("sdk/money.ts", 'export const later = () => import("./client.js");');
    expect(
      importCycles(importGraph(dynamic)).some(
        (c) => c.includes("sdk/money.ts") && c.includes("sdk/client.ts"),
      ),
    ).toBe(true);
  });
});
