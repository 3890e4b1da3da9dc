import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { holderAlive } from "./locks.js";

const dir = mkdtempSync(join(tmpdir(), "run402-locks-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function state(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  } catch {
    return undefined;
  }
}

describe("holderAlive", () => {
  test.runIf(process.platform === "linux")(
    "behavior: an engine that exited and waits to be reaped (a zombie) holds no lock",
    async () => {
      // A process named like the engine, whose parent never reaps it: a zombie once it exits.
      const engine = join(dir, "pulumi");
      copyFileSync("/bin/sleep", engine);
      const parent = spawn("sh", ["-c", `'${engine}' 60 & echo $!; exec sleep 60`], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      try {
        const pid = Number(
          await new Promise<string>((done) => parent.stdout.once("data", (d) => done(String(d)))),
        );
        // Once the shell's child has become the engine-named program, it holds the lock.
        for (let i = 0; i < 200 && !holderAlive(pid); i++) await new Promise((r) => setTimeout(r, 25));
        expect(holderAlive(pid)).toBe(true);
        // The parent must be `sleep` (the shell exec'd it) before the kill: a shell still running
        // would reap its background child, and the zombie would be gone before it is looked at.
        const comm = () => {
          try {
            return readFileSync(`/proc/${parent.pid}/comm`, "utf8").trim();
          } catch {
            return undefined;
          }
        };
        for (let i = 0; i < 400 && comm() !== "sleep"; i++) await new Promise((r) => setTimeout(r, 25));
        expect(comm()).toBe("sleep");
        // It exits (killed); its parent never reaps it, so it stays a zombie.
        process.kill(pid, "SIGKILL");
        for (let i = 0; i < 200 && state(pid) !== "Z"; i++) await new Promise((r) => setTimeout(r, 25));
        expect(state(pid)).toBe("Z");
        expect(holderAlive(pid)).toBe(false);
      } finally {
        parent.kill("SIGKILL");
      }
    },
  );

  test("behavior: a pid that is gone holds no lock", () => {
    expect(holderAlive(2 ** 22 + 7)).toBe(false);
  });
});
