/**
 * What the package ships is what its README and `--help` point to: every path the user-facing part of
 * README.md names (everything before "Working on this repository", which is about the git repository)
 * and every path `run402-pulumi --help` names is in `npm pack`'s file list. The README's shipped part
 * must not send a user to docs/, examples/ or test/ files that only the repository holds.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, test } from "vitest";
import { repoRoot } from "~test/engine.js";
import { usage } from "../cli/args.js";

const run = promisify(execFile);

/** The files `npm pack` would put in the tarball of the root package or a workspace. */
async function packed(workspace?: string): Promise<Set<string>> {
  const args = ["pack", "--dry-run", "--json", "--ignore-scripts"];
  if (workspace) args.push("--workspace", workspace);
  const { stdout } = await run("npm", args, { cwd: repoRoot, maxBuffer: 64 * 1024 * 1024 });
  const [result] = JSON.parse(stdout) as { files: { path: string }[] }[];
  return new Set((result?.files ?? []).map((f) => f.path));
}

const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
const marker = "\n## Working on this repository\n";
const shipped = readme.slice(0, readme.indexOf(marker));

/** The repository's top-level folders: a path starting with one of them names a file of the repository. */
const roots =
  "docs|schema|scripts|bin|dist|examples|test|packages|sdk|provider|cli|core|bench|sdkgen|program";

/**
 * Paths a text names: markdown link targets that are not URLs, and words starting with one of the
 * repository's folders (or `node_modules/pulumi-run402/`, `node_modules/@pulumi-run402/sandbox/`).
 */
function namedPaths(text: string): string[] {
  const paths = new Set<string>();
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = (m[1] as string).split("#")[0] as string;
    if (target && !/^[a-z]+:/.test(target)) paths.add(target);
  }
  const word = new RegExp(
    `(?:^|[\\s\`(])((?:node_modules/(?:pulumi-run402|@pulumi-run402/sandbox)/)?(?:${roots})/[\\w./-]*[\\w/])`,
    "gm",
  );
  for (const m of text.matchAll(word)) paths.add(m[1] as string);
  return [...paths];
}

let main: Set<string>;
let sandbox: Set<string>;

beforeAll(async () => {
  [main, sandbox] = await Promise.all([packed(), packed("@pulumi-run402/sandbox")]);
}, 120_000);

/** The paths of `names` that the packages do not hold (a folder: no file under it). */
function missing(names: string[]): string[] {
  return names.filter((name) => {
    const [files, path] = name.startsWith("node_modules/@pulumi-run402/sandbox/")
      ? [sandbox, name.slice("node_modules/@pulumi-run402/sandbox/".length)]
      : [main, name.replace(/^node_modules\/pulumi-run402\//, "")];
    const bare = path.replace(/\/$/, "");
    return !files.has(bare) && ![...files].some((f) => f.startsWith(`${bare}/`));
  });
}

describe("the package's README and --help", () => {
  test("behavior: the README the package ships is the user's, with contributor set-up kept after it", () => {
    expect(main.has("README.md")).toBe(true);
    expect(readme.indexOf(marker)).toBeGreaterThan(0);
    // The user's part opens with what to install, not the repository's set-up.
    expect(shipped.indexOf("\n## Install\n")).toBeGreaterThan(0);
    expect(shipped).not.toContain("npm test");
    expect(shipped).toContain("\n## Try it on the sandbox\n");
  });

  test("behavior: every path the README's user part names is in the package", () => {
    const names = namedPaths(shipped);
    expect(names).toContain("docs/cli.md");
    expect(names).toContain("node_modules/pulumi-run402/scripts/engine.sh");
    expect(missing(names)).toEqual([]);
  });

  test("behavior: every path `run402-pulumi --help` names is in the package", () => {
    const names = namedPaths(usage);
    expect(names.length).toBeGreaterThan(0);
    expect(missing(names)).toEqual([]);
  });
});
