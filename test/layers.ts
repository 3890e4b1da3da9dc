/**
 * The import graph of the product code (every non-test .ts file under the layer folders and index.ts),
 * read with TypeScript's own pre-processor (static, dynamic and type-only imports alike), and the two
 * rules docs/ARCHITECTURE.md states: no arrow up the layers, and no cycle.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import ts from "typescript";

/** The layers, lowest first: a file may import from its own layer and the ones below it. */
export const layers = ["core", "schema", "sdk", "provider", "program", "cli", "sandbox"] as const;

/**
 * What each layer may not import (docs/ARCHITECTURE.md, "Layers"). The sandbox is a component of its
 * own, reached over HTTP: nothing imports it but the CLI's `--sandbox` (and tests).
 */
export const forbidden: Record<string, readonly string[]> = {
  core: ["schema", "sdk", "provider", "program", "cli", "sandbox"],
  schema: ["sdk", "provider", "program", "cli", "sandbox"],
  sdk: ["provider", "program", "cli", "sandbox"],
  provider: ["program", "cli", "sandbox"],
  program: ["cli", "sandbox"],
  cli: [],
  sandbox: ["provider", "program", "cli"],
};

/**
 * Folders (or files) inside a layer that may not import one another, `[from, to]`, each a path prefix:
 * - a resource reaches its implementation only through the stub's `require("pulumi-run402/provider/impl")`
 *   (what they share sits in provider/types.ts), so nothing in provider/impl imports provider/resources;
 * - the CLI's engine boundary (cli/engine/) drives Pulumi for the commands and knows nothing of them:
 *   it imports neither cli/commands/ nor the dispatcher (cli/run.ts) nor the entry points over it
 *   (cli/main.ts, cli/mcp.ts); the commands do not reach back up to those either.
 */
export const forbiddenWithin: readonly (readonly [string, string])[] = [
  ["provider/impl/", "provider/resources/"],
  ["cli/engine/", "cli/commands/"],
  ["cli/engine/", "cli/run.ts"],
  ["cli/engine/", "cli/main.ts"],
  ["cli/engine/", "cli/mcp.ts"],
  ["cli/commands/", "cli/run.ts"],
  ["cli/commands/", "cli/main.ts"],
  ["cli/commands/", "cli/mcp.ts"],
];

/**
 * Folders with one entry: code outside the folder imports only that file (cli/engine/index.ts is the
 * engine boundary; the modules behind it import one another).
 */
export const entries: Readonly<Record<string, string>> = {
  "cli/engine/": "cli/engine/index.ts",
};

/** Node's modules that touch files, processes or the network: schema/ (pure) imports none of them. */
const ioModules = /^node:(fs|fs\/promises|child_process|net|http|https|dgram|dns|worker_threads|os)$/;

/** A source file: its path from the repository root (posix) and its text. */
export interface Source {
  path: string;
  text: string;
}

/** The .ts files under `folders` of `root` (no .d.ts, nothing under node_modules or fixtures), tests too when `tests`. */
export function sourcesUnder(root: string, folders: readonly string[], tests = false): Source[] {
  const out: Source[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "node_modules" && entry.name !== "fixtures") walk(full);
      } else if (
        entry.name.endsWith(".ts") &&
        (tests || !/\.test(-d)?\.ts$/.test(entry.name)) &&
        !entry.name.endsWith(".d.ts")
      ) {
        out.push({ path: relative(root, full).split("\\").join("/"), text: readFileSync(full, "utf8") });
      }
    }
  };
  for (const folder of folders) if (existsSync(join(root, folder))) walk(join(root, folder));
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** The product sources under `root`: every .ts file in the layer folders (tests excluded) and index.ts. */
export function productSources(root: string): Source[] {
  const out = sourcesUnder(root, layers);
  out.push({ path: "index.ts", text: readFileSync(join(root, "index.ts"), "utf8") });
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** file → the product files it imports (relative specifiers resolved; `.js` names its `.ts` source). */
export function importGraph(sources: readonly Source[]): Map<string, string[]> {
  const known = new Set(sources.map((s) => s.path));
  const graph = new Map<string, string[]>();
  for (const { path, text } of sources) {
    const targets = new Set<string>();
    for (const ref of ts.preProcessFile(text, true, true).importedFiles) {
      if (!ref.fileName.startsWith(".")) continue;
      const base = posix.normalize(posix.join(posix.dirname(path), ref.fileName));
      const candidates = [base.replace(/\.js$/, ".ts"), `${base}.ts`, `${base}/index.ts`];
      const target = candidates.find((c) => known.has(c));
      if (target) targets.add(target);
    }
    graph.set(path, [...targets].sort());
  }
  return graph;
}

/** The layer a file belongs to (its top folder), or undefined for index.ts. */
export function layerOf(path: string): string | undefined {
  const top = path.split("/")[0] ?? "";
  return (layers as readonly string[]).includes(top) ? top : undefined;
}

/** Every import that goes up the layers (or between folders kept apart): `from → to`. */
export function upwardImports(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  for (const [from, targets] of graph) {
    const layer = layerOf(from);
    if (!layer) continue;
    for (const to of targets) {
      const target = layerOf(to);
      if (target && forbidden[layer]?.includes(target)) found.push(`${from} → ${to}`);
      else if (forbiddenWithin.some(([a, b]) => from.startsWith(a) && to.startsWith(b)))
        found.push(`${from} → ${to}`);
    }
  }
  return found;
}

/** Every import that reaches past a folder's entry ({@link entries}) from outside the folder: `from → to`. */
export function entryBypasses(graph: Map<string, string[]>): string[] {
  const found: string[] = [];
  for (const [from, targets] of graph) {
    for (const to of targets) {
      for (const [folder, entry] of Object.entries(entries)) {
        if (to.startsWith(folder) && to !== entry && !from.startsWith(folder)) found.push(`${from} → ${to}`);
      }
    }
  }
  return found;
}

/** Every import of a module that does I/O (files, processes, network) from `folder`: `file → module`. */
export function ioImports(sources: readonly Source[], folder: string): string[] {
  const found: string[] = [];
  for (const { path, text } of sources) {
    if (!path.startsWith(`${folder}/`)) continue;
    for (const ref of ts.preProcessFile(text, true, true).importedFiles) {
      const name = ref.fileName.startsWith("node:") ? ref.fileName : `node:${ref.fileName}`;
      if (ioModules.test(name)) found.push(`${path} → ${ref.fileName}`);
    }
  }
  return found;
}

/** Every import cycle, as the files around it (Tarjan's strongly connected components; a self-import counts). */
export function importCycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

/** The folder of the repository (this file is test/layers.ts). */
export const repositoryRoot = dirname(import.meta.dirname);
