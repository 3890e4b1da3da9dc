/**
 * A handful of bad-input cases through the built CLI as a real process (dist/cli/main.js), where the
 * process boundary is what matters: the exit code, exactly one JSON document on stdout, no stack
 * trace on either stream, a FIFO that never blocks, a YAML bomb or nesting that never brings the
 * process down, a bounded heap (`--max-old-space-size`) and time, and no request to the API.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuilt, type Run as CliRun, runCli } from "~test/cli-harness.js";
import type { Report } from "../../cli/report.js";
import { cases, closeSockets } from "./cases.js";

/** The CLI's heap, bounded: a case that needs more dies (exit 134), which fails the test. */
const HEAP_MB = 384;
const STACK = /\n\s+at |node:internal|\bE(LOOP|ISDIR|NOENT|ACCES|NXIO)\b|\.[cm]?[jt]s:\d+:\d+/;

let root: string;
let api: Server;
let apiBase: string;
let requests = 0;
const writers: ChildProcess[] = [];

beforeAll(async () => {
  assertBuilt();
  root = mkdtempSync(join(tmpdir(), "run402-bad-process-"));
  api = createServer((req, res) => {
    requests += 1;
    res.writeHead(500).end();
    req.resume();
  });
  await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
  const address = api.address();
  apiBase = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
});

afterAll(async () => {
  for (const w of writers) w.kill("SIGKILL");
  closeSockets();
  await new Promise<void>((resolve) => api.close(() => resolve()));
  rmSync(root, { recursive: true, force: true });
});

interface Run extends CliRun {
  ms: number;
}

/** The CLI as a process with a bounded heap and time; `ms` is how long it took. */
async function cli(args: string[]): Promise<Run> {
  const started = performance.now();
  const run = await runCli(
    root,
    args,
    {},
    { nodeArgs: [`--max-old-space-size=${HEAP_MB}`], timeout: 120_000 },
  );
  return { ...run, ms: performance.now() - started };
}

async function setup(name: string): Promise<string> {
  const c = cases.find((x) => x.name === name);
  if (!c) throw new Error(`no case ${name}`);
  const dir = join(root, name.replace(/[^a-z0-9]+/gi, "-"));
  mkdirSync(dir, { recursive: true });
  return c.setup(dir);
}

/** The run's checks; returns the one JSON document. */
function refused(run: Run, limitMs: number): Report {
  const why = `exit ${run.code}\n${run.stderr.slice(-3000)}\n${run.stdout.slice(0, 2000)}`;
  expect(run.code, why).toBe(2);
  expect(run.stderr, why).not.toMatch(STACK);
  // Exactly one JSON document: the whole of stdout parses, and nothing else was written to it.
  const doc = JSON.parse(run.stdout) as Report;
  expect(run.stdout.trim().startsWith("{") && run.stdout.trim().endsWith("}"), why).toBe(true);
  expect(doc.ok, why).toBe(false);
  expect(
    doc.errors.every((e) => e.code.startsWith("MANIFEST_") && (e.pointer !== undefined || !!e.file)),
    why,
  ).toBe(true);
  expect(run.stdout, why).not.toMatch(STACK);
  expect(run.ms, why).toBeLessThan(limitMs);
  return doc;
}

describe("bad input, as a process", () => {
  test("error: a FIFO manifest with a writer that never writes: refused at once, nothing blocks, no request", async () => {
    const manifest = await setup("the manifest is a FIFO (JSON)");
    // A writer holds the FIFO open and never writes: a blocking read would wait forever.
    const writer = spawn("sh", ["-c", `exec 3>"${manifest}"; sleep 300`], { stdio: "ignore" });
    writers.push(writer);
    const before = requests;
    const doc = refused(
      await cli(["plan", "--manifest", manifest, "--json", "-c", `run402:apiBase=${apiBase}`]),
      30_000,
    );
    expect(doc.errors).toEqual([
      expect.objectContaining({ code: "MANIFEST_UNREADABLE", file: expect.any(String) }),
    ]);
    expect(requests - before).toBe(0);
    writer.kill("SIGKILL");
  });

  test("error: a FIFO in the site, a symlink loop as the manifest, a directory as the manifest: exit 2 with the path, no request", async () => {
    const before = requests;
    for (const [name, expected] of [
      ["a FIFO in the site", { pointer: "/site/dir" }],
      ["the manifest is a symlink to itself", { code: "MANIFEST_UNREADABLE" }],
      ["a directory where the manifest file should be", { code: "MANIFEST_UNREADABLE" }],
    ] as const) {
      const manifest = await setup(name);
      const doc = refused(
        await cli(["plan", "--manifest", manifest, "--json", "-c", `run402:apiBase=${apiBase}`]),
        30_000,
      );
      expect(doc.errors, name).toEqual(expect.arrayContaining([expect.objectContaining(expected)]));
    }
    expect(requests - before).toBe(0);
  });

  test("error: an alias bomb and 50,000 levels of YAML nesting: refused, the process survives, no request", async () => {
    const before = requests;
    for (const name of [
      "an alias bomb (billion laughs)",
      "nesting 50,000 deep (YAML; exhausts the YAML library)",
    ]) {
      const manifest = await setup(name);
      const doc = refused(
        await cli(["plan", "--manifest", manifest, "--json", "-c", `run402:apiBase=${apiBase}`]),
        30_000,
      );
      expect(doc.errors, name).toHaveLength(1);
    }
    expect(requests - before).toBe(0);
  });

  test("error: 100,000 unknown keys: every one reported once, in bounded time and heap", async () => {
    const manifest = await setup("100,000 unknown top-level keys");
    const doc = refused(await cli(["validate", "--manifest", manifest, "--json"]), 60_000);
    expect(doc.errors).toHaveLength(100_000);
    expect(new Set(doc.errors.map((e) => e.pointer)).size).toBe(100_000);
  });

  test("error: without --json, the human summary names the file and pointer and shows no stack trace", async () => {
    const manifest = await setup("cron 61 * * * *");
    const run = await cli(["validate", "--manifest", manifest]);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stdout).toContain('/functions/replace/api/triggers/0/cron: The schedule "61 * * * *"');
    expect(run.stdout).toContain("app.json");
    expect(`${run.stdout}${run.stderr}`).not.toMatch(STACK);
  });
});
