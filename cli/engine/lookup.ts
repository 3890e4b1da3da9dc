/**
 * Finding the engine: the `pulumi` executable this CLI drives (RUN402_PULUMI, the bundled one, the
 * user's cache, PATH), its version, and what to install when it is missing.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, realpathSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { BaseError } from "../../core/errors.js";
import { writeAtomic } from "./atomic.js";

/** The Pulumi engine could not be found or started. */
export class EngineMissingError extends BaseError {
  override readonly name = "EngineMissingError";
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { code: "ENGINE_NOT_FOUND", cause: options.cause });
  }
}

/** The folder of this package (holding package.json): where `pulumi-run402` resolves by name. */
export function packageRoot(from: string = join(import.meta.dirname, "..")): string {
  let dir = from;
  for (;;) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      const name = (JSON.parse(readFileSync(file, "utf8")) as { name?: string }).name;
      if (name === "pulumi-run402") return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) return resolve(from, "..", "..");
    dir = parent;
  }
}

/**
 * The engine folder of the user's cache that scripts/engine.sh assembles when run from an installed
 * package (`RUN402_ENGINE_BIN`, default `~/.cache/pulumi-run402/bin`): outside node_modules, so it
 * survives `npm ci` and npx's cache.
 */
export function userEngineBin(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.RUN402_ENGINE_BIN ||
    join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "pulumi-run402", "bin")
  );
}

/**
 * The command that installs the engine for this installation of the package: `run402-pulumi engine`
 * through npx (pinned to this version when the package runs from npx's cache, whose paths change),
 * or the script itself in this repository.
 */
export function engineCommand(root: string): string {
  const sep = root.includes("\\") ? "\\" : "/";
  if (!root.includes(`${sep}node_modules${sep}`)) return `bash ${join(root, "scripts", "engine.sh")}`;
  if (root.includes(`${sep}_npx${sep}`)) {
    let version = "";
    try {
      version =
        (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: string }).version ?? "";
    } catch {
      // No version: the newest.
    }
    return `npx -y -p pulumi-run402${version ? `@${version}` : ""} run402-pulumi engine`;
  }
  return "npx run402-pulumi engine";
}

/** What to install when the engine is missing: the same advice as the README's. */
export function engineAdvice(root: string): string {
  return (
    "Install the Pulumi CLI 3.x with its language hosts (https://www.pulumi.com/docs/install/), or run " +
    `\`${engineCommand(root)}\` once (the engine script shipped with pulumi-run402: it uses a pulumi 3.x on ` +
    "PATH, else builds one, cached, and prints where it put it)."
  );
}

/** The environment variable naming the `pulumi` executable to run instead of the bundled one. */
export const engineEnv = "RUN402_PULUMI";

/**
 * The `pulumi` executable: the one {@link engineEnv} names, else `<package root>/.tools/pulumi/bin/pulumi`
 * when present, else the one in {@link userEngineBin}, else from PATH.
 */
export function pulumiExecutable(
  root: string,
  path: string = process.env.PATH ?? "",
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const named = env[engineEnv];
  if (named) return existsSync(named) ? resolve(named) : undefined;
  const bundled = join(root, ".tools", "pulumi", "bin", "pulumi");
  if (existsSync(bundled)) return bundled;
  const user = join(userEngineBin(env), "pulumi");
  if (existsSync(user)) return user;
  for (const dir of path.split(delimiter)) {
    if (dir && existsSync(join(dir, "pulumi"))) return join(dir, "pulumi");
  }
  return undefined;
}

/** The engine this CLI drives. */
export interface Engine {
  /** Absolute path of the `pulumi` executable. */
  command: string;
  /** Its version without the `v` (e.g. `3.259.0`), when known. */
  version: string | undefined;
}

/** The version scripts/engine.sh wrote next to an engine it installed (`.tools/pulumi/version`, `<user bin>/version`). */
function bundledVersion(file: string): string | undefined {
  try {
    const text = readFileSync(file, "utf8").trim();
    return /^v?3\.\d+\.\d+/.test(text) ? text.replace(/^v/, "") : undefined;
  } catch {
    return undefined;
  }
}

function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((done, fail) =>
    execFile(command, args, { env: env ?? process.env, maxBuffer: 1 << 20 }, (error, stdout) =>
      error ? fail(error) : done(stdout),
    ),
  );
}

/**
 * Finds the engine. The bundled one (scripts/engine.sh) is known without running it; a `pulumi` from
 * PATH is asked its version once, and the answer is kept in `cacheDir` (keyed by the executable's
 * path, size and modification time) so later runs do not ask again.
 */
export async function findPulumi(root: string, cacheDir?: string): Promise<Engine> {
  const pulumi = pulumiExecutable(root);
  const missing = (cause?: unknown) =>
    new EngineMissingError(
      `The Pulumi CLI was not found (looked in ${join(root, ".tools", "pulumi", "bin")}, ${userEngineBin()} and on PATH). ${engineAdvice(root)}`,
      { cause },
    );
  if (!pulumi) {
    const named = process.env[engineEnv];
    if (named) throw new EngineMissingError(`${engineEnv} names ${named}, which does not exist.`);
    throw missing();
  }
  const command = resolve(pulumi);
  const languageHost = "pulumi-language-nodejs";
  if (
    !existsSync(join(dirname(command), languageHost)) &&
    !(process.env.PATH ?? "").split(delimiter).some((dir) => dir && existsSync(join(dir, languageHost)))
  ) {
    throw new EngineMissingError(
      `${command} has no Node.js language host (${languageHost} is neither beside it nor on PATH). ${engineAdvice(root)}`,
    );
  }
  const versionFile =
    command === join(root, ".tools", "pulumi", "bin", "pulumi")
      ? join(root, ".tools", "pulumi", "version")
      : command === join(userEngineBin(), "pulumi")
        ? join(userEngineBin(), "version")
        : undefined;
  const known = versionFile && bundledVersion(versionFile);
  if (known) return { command, version: known };
  let key: string;
  try {
    const real = realpathSync(command);
    const info = statSync(real);
    key = `${real}|${info.size}|${Math.floor(info.mtimeMs)}`;
  } catch (error) {
    throw missing(error);
  }
  const cacheFile = cacheDir ? join(cacheDir, "pulumi-version.json") : undefined;
  if (cacheFile) {
    try {
      const cached = JSON.parse(readFileSync(cacheFile, "utf8")) as { key?: string; version?: string };
      if (cached.key === key && cached.version) return { command, version: cached.version };
    } catch {
      // No cache yet (or a torn one): ask the engine.
    }
  }
  let version: string;
  try {
    version = (await run(command, ["version"], { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" }))
      .trim()
      .replace(/^v/, "");
  } catch (error) {
    throw missing(error);
  }
  if (!/^3\.\d+\.\d+/.test(version)) {
    throw new EngineMissingError(
      `${command} is Pulumi ${version}; run402-pulumi needs Pulumi 3.x. ${engineAdvice(root)}`,
    );
  }
  if (cacheFile) writeAtomic(cacheFile, `${JSON.stringify({ key, version })}\n`);
  return { command, version };
}
