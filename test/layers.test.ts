/**
 * The layers of docs/ARCHITECTURE.md, checked on the import graph of the product code (test/layers.ts):
 * nothing imports up (core ← schema ← sdk ← provider ← program, cli), provider/impl never imports
 * provider/resources, schema/ and core/ import no I/O module, and there is no import cycle. In the CLI,
 * cli/engine/ imports neither cli/commands/ nor the dispatcher (cli/run.ts) and its entry points, the
 * commands do not import the dispatcher, and everything outside cli/engine/ (tests, bench and scripts
 * too) imports only cli/engine/index.ts. Each rule is also shown to catch a planted violation.
 */
import { describe, expect, test } from "vitest";
import {
  entryBypasses,
  importCycles,
  importGraph,
  ioImports,
  layers,
  productSources,
  repositoryRoot,
  type Source,
  sourcesUnder,
  upwardImports,
} from "./layers.js";

const sources = productSources(repositoryRoot);
/** The code around the product that imports it: tests, the bench, scripts, examples (tests included). */
const around = sourcesUnder(repositoryRoot, ["test", "bench", "scripts", "examples", ...layers], true).filter(
  (s) => !sources.some((p) => p.path === s.path),
);

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

describe("the CLI's engine boundary and commands", () => {
  test("behavior: cli/engine/ and cli/commands/ are read, and cli/engine/ imports neither the commands nor the dispatcher", () => {
    const graph = importGraph(sources);
    for (const file of [
      "cli/engine/index.ts",
      "cli/engine/stack.ts",
      "cli/commands/session.ts",
      "cli/commands/apply.ts",
    ])
      expect(graph.has(file), file).toBe(true);
    expect(graph.get("cli/run.ts")).toContain("cli/commands/apply.ts");
    expect(upwardImports(graph)).toEqual([]);
  });

  test("behavior: outside cli/engine/, code imports only cli/engine/index.ts (product, tests, bench, scripts)", () => {
    const graph = importGraph([...sources, ...around]);
    expect(graph.get("test/cli.test.ts")).toContain("cli/engine/index.ts");
    expect(entryBypasses(graph)).toEqual([]);
  });

  test("error: a planted import from cli/engine/ into the commands or the dispatcher, or from a command into the dispatcher, is found", () => {
    const cases: [string, string, string][] = [
      [
        "cli/engine/stack.ts",
        'import { plan } from "../commands/plan.js";',
        "cli/engine/stack.ts → cli/commands/plan.ts",
      ],
      ["cli/engine/lookup.ts", 'import type { Io } from "../run.js";', "cli/engine/lookup.ts → cli/run.ts"],
      ["cli/engine/stop.ts", 'import "../main.js";', "cli/engine/stop.ts → cli/main.ts"],
      [
        "cli/commands/status.ts",
        'import { runCommand } from "../run.js";',
        "cli/commands/status.ts → cli/run.ts",
      ],
    ];
    for (const [file, line, arrow] of cases)
      expect(upwardImports(importGraph(planted(file, line)))).toEqual([arrow]);
  });

  test("error: a planted import past cli/engine/index.ts is found, in product code and in a test", () => {
    const product = planted("cli/commands/status.ts", 'import { stateOutputs } from "../engine/state.js";');
    expect(entryBypasses(importGraph(product))).toEqual(["cli/commands/status.ts → cli/engine/state.ts"]);
    const test: Source = {
      path: "test/planted.e2e.test.ts",
      text: 'import { FileBackend } from "../cli/engine/state.js";',
    };
    expect(entryBypasses(importGraph([...sources, test]))).toEqual([
      "test/planted.e2e.test.ts → cli/engine/state.ts",
    ]);
  });
});
