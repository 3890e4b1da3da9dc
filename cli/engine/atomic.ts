/** Whole-file writes shared by the engine's modules. */
import { randomUUID } from "node:crypto";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** Writes a file whole (temp file + rename): a concurrent reader sees the old or the new content. */
export function writeAtomic(file: string, text: string, mode?: number): void {
  mkdirSync(dirname(file), { recursive: true });
  const temp = `${file}.${randomUUID()}.tmp`;
  writeFileSync(temp, text, mode === undefined ? {} : { mode });
  renameSync(temp, file);
}
