import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { repoRoot } from "~test/engine.js";

const supervise = join(repoRoot, "dist", "cli", "supervise.js");
const dir = mkdtempSync(join(tmpdir(), "run402-supervise-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

test("behavior: a hard stop (SIGUSR2) ends an engine that ignores interrupts, and what it started, within about 2 s", {
  timeout: 60_000,
}, async () => {
  if (!existsSync(supervise)) throw new Error(`${supervise} is missing: run \`npm run build\` first.`);
  // A stand-in engine that ignores SIGINT and starts a plugin (its own process group) that does too.
  const engine = join(dir, "pulumi");
  writeFileSync(
    engine,
    `#!${process.execPath}
const { spawn } = require("node:child_process");
process.on("SIGINT", () => {});
const plugin = spawn(process.execPath, ["-e", "process.on('SIGINT', () => {}); setInterval(() => {}, 1000)"], { detached: true, stdio: "ignore" });
process.stdout.write(\`plugin \${plugin.pid} engine \${process.pid}\\n\`);
setInterval(() => {}, 1000);
`,
  );
  chmodSync(engine, 0o755);
  const child = spawn(process.execPath, [supervise, engine], { stdio: ["pipe", "pipe", "pipe"] });
  const [plugin, enginePid] = await new Promise<[number, number]>((resolve) => {
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /plugin (\d+) engine (\d+)/.exec(out);
      if (m) resolve([Number(m[1]), Number(m[2])]);
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  // An interrupt alone does not stop this engine.
  child.kill("SIGINT");
  expect(alive(plugin)).toBe(true);
  const at = Date.now();
  child.kill("SIGUSR2");
  const code = await exited;
  // Whatever happens, nothing this test started keeps running.
  const engineDead = !alive(plugin) && !alive(enginePid);
  for (const pid of [plugin, enginePid]) if (alive(pid)) process.kill(pid, "SIGKILL");
  expect(code).toBe(130);
  expect(Date.now() - at).toBeLessThan(4000);
  expect(engineDead).toBe(true);
});
