/** The engine's event log (`--event-log`), tailed as the engine writes it. */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { EngineEvent } from "@pulumi/pulumi/automation/events.js";

/**
 * Reads the engine's event log (JSON lines) as it grows: on every change the file reports, and once
 * more when the engine has exited, so nothing written is missed and nothing is polled.
 */
export class EventLog {
  readonly file: string;
  private readonly dir: string;
  private fd: number;
  private offset = 0;
  private partial = "";
  private readonly watcher: ReturnType<typeof watch> | undefined;
  private readonly buffer = Buffer.allocUnsafe(1 << 20);

  constructor(private readonly onEvent: (event: EngineEvent) => void) {
    this.dir = mkdtempSync(join(tmpdir(), "run402-events-"));
    this.file = join(this.dir, "events.jsonl");
    writeFileSync(this.file, "");
    this.fd = openSync(this.file, "r");
    try {
      this.watcher = watch(this.file, () => this.drain());
    } catch {
      this.watcher = undefined;
    }
  }

  drain(): void {
    if (this.fd < 0) return;
    for (;;) {
      const read = readSync(this.fd, this.buffer, 0, this.buffer.length, this.offset);
      if (read === 0) break;
      this.offset += read;
      const text = this.partial + this.buffer.toString("utf8", 0, read);
      const lines = text.split("\n");
      this.partial = lines.pop() ?? "";
      for (const line of lines) this.emit(line);
    }
  }

  private emit(line: string): void {
    if (line.trim() === "") return;
    let event: EngineEvent;
    try {
      event = JSON.parse(line) as EngineEvent;
    } catch {
      return; // A line the engine cut short (it was killed): nothing more can be read from it.
    }
    this.onEvent(event);
  }

  close(): void {
    this.drain();
    if (this.partial !== "") this.emit(this.partial);
    this.partial = "";
    this.watcher?.close();
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
