/**
 * A damaged checkpoint of a file backend, repaired instead of fatal. Pulumi's file backend writes a
 * stack's checkpoint `.pulumi/stacks/<project>/<stack>.json` in place after copying the previous
 * one to `<stack>.json.bak`, and keeps a copy of the state after each finished update under
 * `.pulumi/backups/<project>/<stack>/` (pkg/backend/diy/state.go, pulumi v3.276.0: backupTarget,
 * backupStack). A write that fails halfway (a full disk) leaves the checkpoint empty or cut off,
 * and every later engine run fails on it. This module finds such a checkpoint, puts the newest
 * readable copy in its place (the damaged file is kept beside it), and says what it did; the CLI
 * then refreshes the stack against Run402, which reads back what the copy knows. What the copy
 * predates (a resource created in the lost update) is created again by the next update: creates
 * are keyed, so Run402 answers with what it made the first time and nothing is paid twice.
 */
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

/** What {@link repairCheckpoint} did. */
export interface CheckpointRepair {
  /** The damaged checkpoint. */
  file: string;
  /** `empty` (0 bytes) or `unreadable` (cut off, or not a checkpoint). */
  damage: "empty" | "unreadable";
  /** The copy put in its place, or undefined when none was readable. */
  restoredFrom?: string | undefined;
  /** Where the damaged file was moved (kept, never deleted). */
  keptAs?: string | undefined;
  /** When the copy was written (its mtime), ISO. */
  copyTime?: string | undefined;
}

/** Whether `text` is a checkpoint the engine can read (`version: 3`, a `checkpoint` object). */
function readable(text: string): boolean {
  try {
    const parsed = JSON.parse(text) as { version?: unknown; checkpoint?: unknown };
    return parsed.version === 3 && typeof parsed.checkpoint === "object" && parsed.checkpoint !== null;
  } catch {
    return false;
  }
}

/** The copies Pulumi keeps of a stack's checkpoint, newest first. */
function copies(dir: string, project: string, stack: string, file: string): string[] {
  const found = [`${file}.bak`];
  const backups = join(dir, ".pulumi", "backups", project, stack);
  if (existsSync(backups)) {
    for (const name of readdirSync(backups)) if (/\.json$/.test(name)) found.push(join(backups, name));
  }
  return found
    .filter((f) => existsSync(f))
    .map((f) => ({ f, at: statSync(f).mtimeMs }))
    .sort((a, b) => b.at - a.at)
    .map((c) => c.f);
}

/**
 * Checks the plain-JSON checkpoint of `stack` in the file backend at `dir`; when it is empty or
 * unreadable, restores the newest readable copy. Undefined when there is no checkpoint or it is
 * fine (a gzip checkpoint is left to the engine).
 */
export function repairCheckpoint(dir: string, project: string, stack: string): CheckpointRepair | undefined {
  const file = join(dir, ".pulumi", "stacks", project, `${stack}.json`);
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, "utf8");
  if (readable(text)) return undefined;
  const damage = text.trim() === "" ? "empty" : "unreadable";
  for (const copy of copies(dir, project, stack, file)) {
    const content = readFileSync(copy, "utf8");
    if (!readable(content)) continue;
    const keptAs = `${file}.damaged-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    renameSync(file, keptAs);
    // Written beside, then renamed: a disk still full fails here, before the damaged file is lost.
    const next = `${file}.restoring`;
    try {
      writeFileSync(next, content);
      renameSync(next, file);
    } catch (error) {
      renameSync(keptAs, file);
      throw error;
    }
    // The blob store's attributes (md5) of the old content no longer describe the file.
    for (const attrs of [`${file}.attrs`]) if (existsSync(attrs)) renameSync(attrs, `${keptAs}.attrs`);
    return {
      file,
      damage,
      restoredFrom: copy,
      keptAs: basename(keptAs),
      copyTime: statSync(copy).mtime.toISOString(),
    };
  }
  return { file, damage };
}

/** One line for the report: what was found and what was done. */
export function describeRepair(repair: CheckpointRepair): string {
  const what = repair.damage === "empty" ? "was empty" : "could not be read (cut off)";
  if (!repair.restoredFrom)
    return `the stack's checkpoint ${repair.file} ${what} and no readable copy was found`;
  return `the stack's checkpoint ${repair.file} ${what} (a write that failed, e.g. a full disk): restored Pulumi's copy ${repair.restoredFrom} (written ${repair.copyTime}), kept the damaged file as ${repair.keptAs}, and refreshed the stack from Run402`;
}
