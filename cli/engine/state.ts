/**
 * The checkpoint reader: a stack's state, outputs and tags as `pulumi stack export`, `stack output`
 * and `stack tag ls` give them, read from a `file://` backend's files (Pulumi's documented checkpoint,
 * `version: 3`, and its tags file) without starting the engine; it also writes the little the CLI
 * needs there (a new stack's empty checkpoint, a tag). test/engine-conformance.e2e.test.ts holds it
 * to what the engine and the Automation API read from the same stack.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { fileBackendDir } from "../locks.js";
import { writeAtomic } from "./atomic.js";

/** A stack output: its value (secrets as `"[secret]"`) and whether it is secret. */
export type Outputs = Record<string, { value: unknown; secret: boolean }>;

/** The engine's `stack export` document: `{ version, deployment }`. */
export interface ExportedState {
  version: number;
  deployment: {
    resources?: { urn: string; type: string; outputs?: Record<string, unknown> }[];
    pending_operations?: { resource: { urn: string }; type: string }[];
  } & Record<string, unknown>;
}

/** Pulumi's marker for a secret value in state (a JSON object key with this fixed value). */
const secretSig = "4dabf18193072939515e22adb298388d";
const secretSigValue = "1b47061264138c4ac30d75fd1eb44270";

/** A state value with every secret replaced by `"[secret]"`; `secret` when the value itself is one. */
function unsecret(value: unknown): { value: unknown; secret: boolean } {
  if (Array.isArray(value)) return { value: value.map((v) => unsecret(v).value), secret: false };
  if (value && typeof value === "object") {
    const object = value as Record<string, unknown>;
    if (object[secretSig] === secretSigValue) return { value: "[secret]", secret: true };
    return {
      value: Object.fromEntries(Object.entries(object).map(([k, v]) => [k, unsecret(v).value])),
      secret: false,
    };
  }
  return { value, secret: false };
}

export const stackType = "pulumi:pulumi:Stack";

/** The stack's outputs in an exported state (the root resource's), secrets as `"[secret]"`. */
export function stateOutputs(state: ExportedState): Outputs {
  return outputsOf(state.deployment.resources?.find((r) => r.type === stackType)?.outputs);
}

export function outputsOf(values: Record<string, unknown> | undefined): Outputs {
  const outputs: Outputs = {};
  for (const [key, value] of Object.entries(values ?? {})) {
    outputs[key] = value === "[secret]" ? { value, secret: true } : unsecret(value);
  }
  return outputs;
}

/**
 * A file backend's stack, read and written directly. Pulumi's layout with per-project folders
 * (`.pulumi/meta.yaml` version 1): the checkpoint `.pulumi/stacks/<project>/<stack>.json` and its
 * tags `<stack>.pulumi-tags`. Anything else (the legacy layout, gzip, another organization) is left
 * to the engine: {@link FileBackend.for} returns undefined for it.
 */
export class FileBackend {
  private constructor(
    readonly dir: string,
    readonly project: string,
    readonly stack: string,
  ) {}

  /** The direct reader for this backend and stack, or undefined when the engine must be asked. */
  static for(backend: string, project: string, stackName: string): FileBackend | undefined {
    const dir = fileBackendDir(backend);
    if (!dir) return undefined;
    if (process.env.PULUMI_DIY_BACKEND_GZIP || process.env.PULUMI_SELF_MANAGED_STATE_GZIP) return undefined;
    if (process.env.PULUMI_DIY_BACKEND_LEGACY_LAYOUT || process.env.PULUMI_SELF_MANAGED_STATE_LEGACY_LAYOUT)
      return undefined;
    const parts = stackName.split("/");
    let stack = stackName;
    if (parts.length === 3) {
      if (parts[0] !== "organization" || parts[1] !== project) return undefined;
      stack = parts[2] as string;
    } else if (parts.length !== 1) return undefined;
    const meta = join(dir, ".pulumi", "meta.yaml");
    if (existsSync(meta)) {
      const version = /^version:\s*(\d+)\s*$/m.exec(readFileSync(meta, "utf8"))?.[1];
      if (version !== "1") return undefined;
    } else if (existsSync(join(dir, ".pulumi", "stacks"))) {
      // Stacks without meta.yaml: the legacy layout.
      return undefined;
    }
    return new FileBackend(dir, project, stack);
  }

  private get base(): string {
    return join(this.dir, ".pulumi", "stacks", this.project, this.stack);
  }

  /** The checkpoint file; a `.json.gz` one (written with gzip on) is read too. */
  private checkpointFile(): string | undefined {
    for (const file of [`${this.base}.json`, `${this.base}.json.gz`]) if (existsSync(file)) return file;
    return undefined;
  }

  exists(): boolean {
    return this.checkpointFile() !== undefined;
  }

  /**
   * Creates the stack as `pulumi stack init` would in this layout: an empty checkpoint. The engine
   * adds the secrets provider's salt to Pulumi.<stack>.yaml the first time it needs it.
   */
  create(): void {
    const meta = join(this.dir, ".pulumi", "meta.yaml");
    if (!existsSync(meta)) writeAtomic(meta, "version: 1\n");
    const file = `${this.base}.json`;
    if (existsSync(file)) return;
    const checkpoint = {
      version: 3,
      checkpoint: { stack: `organization/${this.project}/${this.stack}`, latest: null },
    };
    mkdirSync(dirname(file), { recursive: true });
    // Exclusive: two runs creating the same stack at once both end with one empty checkpoint.
    try {
      writeFileSync(file, JSON.stringify(checkpoint), { flag: "wx" });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }

  /** The state, as `pulumi stack export` prints it. */
  export(): ExportedState {
    const file = this.checkpointFile();
    if (!file) throw new Error(`Stack ${this.stack} does not exist in ${this.dir}.`);
    const raw = readFileSync(file);
    const parsed = JSON.parse((file.endsWith(".gz") ? gunzipSync(raw) : raw).toString("utf8")) as {
      version?: number;
      checkpoint?: { latest?: ExportedState["deployment"] | null };
    };
    if (parsed.version !== 3) throw new Error(`Unsupported checkpoint version ${parsed.version} in ${file}.`);
    return { version: 3, deployment: parsed.checkpoint?.latest ?? {} };
  }

  outputs(): Outputs {
    return stateOutputs(this.export());
  }

  tags(): Record<string, string> {
    try {
      const parsed = JSON.parse(readFileSync(`${this.base}.pulumi-tags`, "utf8")) as {
        version?: number;
        tags?: Record<string, string>;
      };
      if (parsed.version !== 1) throw new Error(`Unsupported tags file version ${parsed.version}.`);
      return parsed.tags ?? {};
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw error;
    }
  }

  setTag(key: string, value: string): void {
    const file = `${this.base}.pulumi-tags`;
    writeAtomic(file, JSON.stringify({ version: 1, tags: { ...this.tags(), [key]: value } }));
    // The blob store's attributes of the old content (its md5) no longer describe the file.
    rmSync(`${file}.attrs`, { force: true });
  }
}
