import { stat } from "node:fs/promises";
import { dirname, extname, isAbsolute, join, relative, resolve } from "node:path";
import { BaseError } from "../../core/errors.js";
import type { AppManifest } from "../../schema/app.types.js";
import { ManifestValidationError } from "../../schema/errors.js";
import { assertManifest } from "../../schema/validate.js";
import { parseJson, parseYaml } from "./parse.js";
import { decodeUtf8, describeFsError, describeKind, READ_LIMITS, readBounded } from "./read.js";

/** The manifest file named on the command line or in a resource does not exist. */
export class ManifestNotFoundError extends BaseError {
  override name = "ManifestNotFoundError" as const;
  declare readonly code: "MANIFEST_NOT_FOUND";
  readonly path: string;
  constructor(options: { path: string; cause?: unknown }) {
    super(`No manifest at ${options.path}.`, {
      code: "MANIFEST_NOT_FOUND",
      metaMessages: ["Check the path (relative paths start at the current directory) or create the file."],
      cause: options.cause,
    });
    this.path = options.path;
  }
}
export type ManifestNotFoundErrorType = ManifestNotFoundError & { name: "ManifestNotFoundError" };

/**
 * The manifest path names something that cannot be a manifest: a directory where a file was expected,
 * a FIFO, socket or device, a symlink loop, an unreadable or oversized file.
 */
export class ManifestUnreadableError extends BaseError {
  override name = "ManifestUnreadableError" as const;
  declare readonly code: "MANIFEST_UNREADABLE";
  readonly path: string;
  readonly reason: string;
  constructor(options: { path: string; reason: string; cause?: unknown }) {
    super(`The manifest ${options.path} ${options.reason}.`, {
      code: "MANIFEST_UNREADABLE",
      metaMessages: ["A manifest is a regular JSON or YAML file (or a folder holding one)."],
      cause: options.cause,
    });
    this.path = options.path;
    this.reason = options.reason;
  }
}
export type ManifestUnreadableErrorType = ManifestUnreadableError & { name: "ManifestUnreadableError" };

/** A loaded, validated manifest and where it lives. */
export type LoadedManifest = {
  manifest: AppManifest;
  /** Absolute path of the manifest file. */
  file: string;
  /** Absolute path of its folder: the root of every path in it. */
  dir: string;
};

const EXTENSIONS = [".json", ".yaml", ".yml"];

/** A path as a person would name it: relative to the current directory when under it, else absolute. */
export function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  if (rel === "") return ".";
  return !rel.startsWith("..") && !isAbsolute(rel) ? rel : file;
}

/**
 * The file names a folder's manifest is found by, in order: Run402's own (`run402.json`,
 * `run402.deploy.json`, as `run402 up` looks for them), then `app.json` and its YAML forms.
 */
export const MANIFEST_NAMES: readonly string[] = [
  "run402.json",
  "run402.deploy.json",
  "app.json",
  "app.yaml",
  "app.yml",
];

/**
 * The manifest in `dir`: the first of {@link MANIFEST_NAMES} that exists. One that exists but is not a
 * regular file (a directory, a FIFO, a symlink loop) is an error, never skipped in silence. Throws
 * `ManifestNotFoundError` or `ManifestUnreadableError`.
 */
export async function findManifest(dir: string): Promise<string> {
  for (const name of MANIFEST_NAMES) {
    const candidate = join(dir, name);
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(candidate);
    } catch (error) {
      const { reason, kind } = describeFsError(error);
      if (kind === "missing") continue;
      throw new ManifestUnreadableError({ path: displayPath(candidate), reason, cause: error });
    }
    if (info.isFile()) return candidate;
    throw new ManifestUnreadableError({
      path: displayPath(candidate),
      reason: `is ${describeKind(info)}, not a regular file`,
    });
  }
  throw new ManifestNotFoundError({ path: join(displayPath(dir), `{${MANIFEST_NAMES.join(",")}}`) });
}

/**
 * Reads a manifest (a file, or a folder holding one of {@link MANIFEST_NAMES}), parses JSON or YAML and
 * validates it; throws `ManifestValidationError` (with line and column for syntax errors) or
 * `ManifestNotFoundError`. This is the one place manifests are read from disk.
 * @example
 * import { loadManifest } from "pulumi-run402/provider/manifest";
 * const { manifest, dir } = await loadManifest("examples/quickstart/app.json");
 */
export async function loadManifest(path: string): Promise<LoadedManifest> {
  let file = resolve(path);
  if (
    await stat(file).then(
      (s) => s.isDirectory(),
      () => false,
    )
  )
    file = await findManifest(file);
  const shown = displayPath(file);
  const read = await readBounded(file, READ_LIMITS.manifestBytes);
  if (!read.ok) {
    if (read.kind === "missing") throw new ManifestNotFoundError({ path: shown });
    throw new ManifestUnreadableError({ path: shown, reason: read.reason });
  }
  const extension = extname(file).toLowerCase();
  if (!EXTENSIONS.includes(extension)) {
    throw new ManifestValidationError({
      file: shown,
      issues: [
        {
          pointer: "",
          message: `Unsupported manifest extension ${JSON.stringify(extension || "(none)")}.`,
          hint: "Use .json, .yaml or .yml.",
        },
      ],
    });
  }
  const decoded = decodeUtf8(read.bytes);
  if (!("text" in decoded)) {
    throw new ManifestValidationError({
      file: shown,
      issues: [
        {
          pointer: "",
          message: `Not UTF-8: the byte at offset ${decoded.badByte} does not start or continue a valid UTF-8 sequence.`,
          hint: "Save the manifest as UTF-8.",
        },
      ],
    });
  }
  const parsed = extension === ".json" ? parseJson(decoded.text) : parseYaml(decoded.text);
  if (!parsed.ok) throw new ManifestValidationError({ file: shown, issues: parsed.issues });
  return { manifest: assertManifest(parsed.value, { file: shown }), file, dir: dirname(file) };
}
