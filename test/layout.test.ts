/**
 * The repository root holds what README.md's "Layout" names and nothing else that git would keep:
 * two measurement outputs (e10k.txt, o10k.json, a hand-run `/usr/bin/time … > o10k.json 2> e10k.txt`)
 * were once committed there with the change they were measured for.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, test } from "vitest";
import { repoRoot } from "~test/engine.js";

const readme = readFileSync(join(repoRoot, "README.md"), "utf8");
const layout = readme.slice(readme.indexOf("\n## Layout\n"), readme.indexOf("More: docs/ARCHITECTURE.md."));

/** A name pattern (`tsconfig*.json`, `dist/`) as a regular expression over one root entry's name. */
const pattern = (glob: string) =>
  new RegExp(
    `^${glob
      .replace(/\/$/, "")
      .replace(/[.+?^${}()|[\]\\]/g, "\\$&")
      .replaceAll("*", "[^/]*")}$`,
  );

test("behavior: the root holds only what README.md's Layout names (or git ignores)", () => {
  const named = [...layout.matchAll(/`([^`\s]+)`/g)]
    .map((m) => m[1] as string)
    .filter((name) => !name.includes("/") || /^[^/]+\/$/.test(name) || name === "packages/sandbox/")
    .map((name) => name.split("/")[0] as string);
  const ignored = readFileSync(join(repoRoot, ".gitignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  const allowed = [...named, ...ignored, ".git"].map(pattern);
  const strays = readdirSync(repoRoot).filter((entry) => !allowed.some((re) => re.test(entry)));
  expect(strays).toEqual([]);
});
