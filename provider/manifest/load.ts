import { readFile, stat } from "node:fs/promises";
import { dirname, extname, join, resolve } from "node:path";
import { parseDocument } from "yaml";
import type { AppManifest } from "../../schema/app.types.js";
import { ManifestValidationError } from "../../schema/errors.js";
import { assertManifest } from "../../schema/validate.js";
import { BaseError } from "../../sdk/errors/base.js";

/** The manifest file named on the command line or in a resource does not exist. */
export class ManifestNotFoundError extends BaseError {
  override name = "ManifestNotFoundError" as const;
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

/** A loaded, validated manifest and where it lives. */
export type LoadedManifest = {
  manifest: AppManifest;
  /** Absolute path of the manifest file. */
  file: string;
  /** Absolute path of its folder: the root of every path in it. */
  dir: string;
};

const EXTENSIONS = [".json", ".yaml", ".yml"];

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

/** The manifest in `dir` (the first of {@link MANIFEST_NAMES} that exists); throws `ManifestNotFoundError`. */
export async function findManifest(dir: string): Promise<string> {
  for (const name of MANIFEST_NAMES) {
    const candidate = join(dir, name);
    if (
      await stat(candidate).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return candidate;
  }
  throw new ManifestNotFoundError({ path: join(dir, `{${MANIFEST_NAMES.join(",")}}`) });
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
  const extension = extname(file).toLowerCase();
  if (!EXTENSIONS.includes(extension)) {
    throw new ManifestValidationError({
      file: path,
      issues: [
        {
          pointer: "",
          message: `Unsupported manifest extension ${JSON.stringify(extension || "(none)")}.`,
          hint: "Use .json, .yaml or .yml.",
        },
      ],
    });
  }
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      throw new ManifestNotFoundError({ path: file, cause: err });
    throw err;
  }
  const value = extension === ".json" ? parseJson(text, path) : parseYaml(text, path);
  return { manifest: assertManifest(value, { file: path }), file, dir: dirname(file) };
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const position = /position (\d+)/.exec(message);
    const where = position ? ` at ${lineColumn(text, Number(position[1]))}` : "";
    throw new ManifestValidationError({
      file: path,
      issues: [{ pointer: "", message: `Not valid JSON${where}: ${message}.` }],
      cause: err,
    });
  }
}

function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split("\n");
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

function parseYaml(text: string, path: string): unknown {
  // prettyErrors fills in linePos (line and column, 1-based).
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ManifestValidationError({
      file: path,
      issues: doc.errors.map((e) => {
        const at = e.linePos?.[0];
        const where = at ? ` at line ${at.line}, column ${at.col}` : "";
        const first = (e.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
        return { pointer: "", message: `Not valid YAML${where}: ${first}.` };
      }),
    });
  }
  return doc.toJS({ maxAliasCount: 100 });
}
