import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { describeRepair, repairCheckpoint } from "./checkpoint.js";

const good = (n: number) =>
  JSON.stringify({ version: 3, checkpoint: { stack: "organization/p/dev", latest: { resources: [n] } } });
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function backend(checkpoint: string | undefined): string {
  dir = mkdtempSync(join(tmpdir(), "run402-checkpoint-"));
  mkdirSync(join(dir, ".pulumi", "stacks", "p"), { recursive: true });
  if (checkpoint !== undefined) writeFileSync(join(dir, ".pulumi", "stacks", "p", "dev.json"), checkpoint);
  return join(dir, ".pulumi", "stacks", "p", "dev.json");
}

describe("repairCheckpoint", () => {
  test("behavior: a readable checkpoint, or none, is left alone", () => {
    const file = backend(good(1));
    expect(repairCheckpoint(dir, "p", "dev")).toBeUndefined();
    expect(readFileSync(file, "utf8")).toBe(good(1));
    rmSync(file);
    expect(repairCheckpoint(dir, "p", "dev")).toBeUndefined();
  });

  test("error: an empty checkpoint is replaced by the newest readable copy, the damaged file kept", () => {
    const file = backend("");
    writeFileSync(`${file}.bak`, good(2));
    utimesSync(`${file}.bak`, new Date(2000), new Date(2000));
    const backups = join(dir, ".pulumi", "backups", "p", "dev");
    mkdirSync(backups, { recursive: true });
    writeFileSync(join(backups, "dev.1.json"), good(3)); // newer than the .bak
    writeFileSync(join(backups, "dev.2.json"), "{ cut off"); // newest, unreadable: skipped
    const repair = repairCheckpoint(dir, "p", "dev");
    expect(repair).toMatchObject({ damage: "empty", restoredFrom: join(backups, "dev.1.json") });
    expect(readFileSync(file, "utf8")).toBe(good(3));
    const kept = readdirSync(join(dir, ".pulumi", "stacks", "p")).filter((f) => f.includes(".damaged-"));
    expect(kept).toHaveLength(1);
    expect(describeRepair(repair!)).toMatch(/was empty .*restored Pulumi's copy .*dev\.1\.json/);
  });

  test("error: a cut-off checkpoint without a readable copy is reported, not touched", () => {
    const file = backend('{"version":3,"checkpoint":{"stack":');
    writeFileSync(`${file}.bak`, "");
    expect(repairCheckpoint(dir, "p", "dev")).toEqual({ file, damage: "unreadable" });
    expect(readFileSync(file, "utf8")).toBe('{"version":3,"checkpoint":{"stack":');
  });
});
