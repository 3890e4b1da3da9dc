import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { openState } from "./state.js";

const root = mkdtempSync(join(tmpdir(), "run402-state-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o777;

describe("openState", () => {
  test("behavior: state.json (project keys, secret values) is 0600 and its folder 0700", () => {
    const dir = join(root, "fresh");
    const store = openState(dir);
    store.state.seq = 7;
    store.save();
    expect(mode(join(dir, "state.json"))).toBe(0o600);
    expect(mode(dir)).toBe(0o700);
  });

  test("behavior: a state folder written world-readable by an older version is tightened", () => {
    const dir = join(root, "old");
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "state.json"), JSON.stringify({ seq: 3 }), { mode: 0o644 });
    chmodSync(join(dir, "state.json"), 0o644);
    const store = openState(dir);
    expect(store.state.seq).toBe(3);
    expect(mode(join(dir, "state.json"))).toBe(0o600);
    expect(mode(dir)).toBe(0o700);
  });
});
