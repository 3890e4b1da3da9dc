/**
 * Every case of the bad-input corpus through the CLI's own command code, in this process (the
 * process boundary is tested by corpus.process.test.ts): `validate` and `plan` each exit 2 with
 * MANIFEST_* errors that carry a pointer or the manifest's path, no stack trace, one JSON document,
 * within a time and memory bound; `plan` sends nothing to the API (a counting server is its apiBase).
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { parseCli } from "../../cli/args.js";
import { exitCodeOf } from "../../cli/exit.js";
import { ordered, type Report, renderHuman } from "../../cli/report.js";
import { runCommand } from "../../cli/run.js";
import { type Case, cases, closeSockets } from "./cases.js";

/** Per case and command; the slowest cases (100,000 problems) take about 3 s on a loaded 2-core machine. */
const TIME_LIMIT_MS = 20_000;
/** Growth of the process's peak resident memory one case may cause. */
const MEMORY_LIMIT_BYTES = 512 * 1024 * 1024;
/** What a stack trace, or a raw Node error, looks like in a message. */
const STACK = /\n\s+at |node:internal|\bE(LOOP|ISDIR|NOENT|ACCES|NXIO)\b|\.[cm]?[jt]s:\d+:\d+/;

let root: string;
let api: Server;
let apiBase: string;
let requests = 0;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "run402-bad-input-"));
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
  closeSockets();
  await new Promise<void>((resolve) => api.close(() => resolve()));
  rmSync(root, { recursive: true, force: true });
});

async function run(
  argv: string[],
): Promise<{ report: Report; progress: string[]; ms: number; grew: number }> {
  const parsed = parseCli(argv);
  if (parsed.kind !== "run") throw new Error(`bad argv ${argv.join(" ")}`);
  const progress: string[] = [];
  const before = process.resourceUsage().maxRSS * 1024;
  const started = performance.now();
  const report = await runCommand(parsed.options, {
    progress: (line) => progress.push(line),
    interactive: false,
    confirm: async () => false,
    abort: new AbortController().signal,
    stopping: new Promise<void>(() => {}),
  });
  const ms = performance.now() - started;
  return { report, progress, ms, grew: process.resourceUsage().maxRSS * 1024 - before };
}

function check(c: Case, command: string, result: Awaited<ReturnType<typeof run>>): void {
  const { report } = result;
  const errors = report.errors;
  const where = `${c.name} (${command}): ${JSON.stringify(errors.slice(0, 3))}`;
  expect(report.ok, where).toBe(false);
  expect(report.command, where).toBe(command);
  expect(exitCodeOf(errors), where).toBe(2);
  expect(errors.length, where).toBeGreaterThan(0);
  const code = c.expect.code ?? "MANIFEST_INVALID";
  // Every error: a MANIFEST_ code, a pointer or at least the manifest's path, a message without a stack.
  const bad = errors.filter(
    (e) =>
      !e.code.startsWith("MANIFEST_") ||
      (e.pointer === undefined && !e.file) ||
      STACK.test(e.message) ||
      e.message.length >= 2000,
  );
  expect(bad.slice(0, 5), where).toEqual([]);
  expect(
    errors.some((e) => e.code === code),
    where,
  ).toBe(true);
  if (c.expect.pointer !== undefined) {
    const at = errors.filter((e) => e.pointer === c.expect.pointer);
    expect(at.length, where).toBeGreaterThan(0);
    if (c.expect.message)
      expect(
        at.some((e) => c.expect.message?.test(e.message)),
        where,
      ).toBe(true);
  } else if (c.expect.message)
    expect(
      errors.some((e) => c.expect.message?.test(e.message)),
      where,
    ).toBe(true);
  if (c.expect.file)
    expect(
      errors.every((e) => e.file !== undefined && e.pointer === undefined),
      where,
    ).toBe(true);
  if (c.expect.count !== undefined) expect(errors.length, where).toBe(c.expect.count);
  // Each problem once per place.
  const places = new Set(errors.map((e) => `${e.code}\u0000${e.pointer}\u0000${e.message}`));
  expect(places.size, where).toBe(errors.length);
  // Exactly one JSON document (what main.ts writes), and a human summary, without a stack trace.
  const text = `${JSON.stringify(ordered(report), null, 2)}\n`;
  expect(JSON.stringify(JSON.parse(text)) === JSON.stringify(ordered(report)), where).toBe(true);
  if (errors.length < 1000) expect(renderHuman(report), where).not.toMatch(STACK);
  for (const line of result.progress) expect(line, where).not.toMatch(STACK);
  expect(result.ms, where).toBeLessThan(TIME_LIMIT_MS);
  expect(result.grew, where).toBeLessThan(MEMORY_LIMIT_BYTES);
}

describe("the bad-input corpus", () => {
  test("covers every class with at least 100 cases, each named once", () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
    const classes = new Set(cases.map((c) => c.class));
    expect([...classes].sort()).toEqual(
      [
        "content",
        "encoding",
        "files",
        "json",
        "paths",
        "read",
        "scale",
        "semantics",
        "values",
        "yaml",
      ].sort(),
    );
  });

  test.each(cases.map((c, i) => [i, c.name, c] as const))("case %i: %s", async (index, _name, c) => {
    const dir = join(root, String(index));
    mkdirSync(dir, { recursive: true });
    const manifest = await c.setup(dir);
    const validate = await run(["validate", "--manifest", manifest, "--json"]);
    check(c, "validate", validate);
    const before = requests;
    const plan = await run(["plan", "--manifest", manifest, "--json", "-c", `run402:apiBase=${apiBase}`]);
    check(c, "plan", plan);
    // plan refuses before the engine, the sandbox or the API is involved.
    expect(requests - before, c.name).toBe(0);
    // plan reports exactly the problems validate does, with their pointers and files.
    expect(JSON.stringify(plan.report.errors) === JSON.stringify(validate.report.errors), c.name).toBe(true);
  });
});
