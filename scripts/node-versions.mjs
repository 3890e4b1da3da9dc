// Obtains the Node.js versions the package is tested on besides the machine's own: the LTS lines
// users run (22, the oldest @pulumi/pulumi 3.276 supports, and 24). Each comes from the npm package
// that carries the official build for this platform (node-<platform>-<arch>), installed with npm
// into .tools/node/<version>/, so it works wherever the npm registry (or npm's cache) does.
// Prints nothing when they are already there. test/package.e2e.test.ts runs under each.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The versions tested, exact (test/node-versions.ts reads this list). */
export const testedNodeVersions = ["22.23.3", "24.21.0"];

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The node executable of `version` under .tools/node. */
export function nodeBinary(version, base = root) {
  return join(
    base,
    ".tools",
    "node",
    version,
    "node_modules",
    `node-${process.platform}-${process.arch}`,
    "bin",
    "node",
  );
}

function install(version) {
  const binary = nodeBinary(version);
  if (existsSync(binary)) {
    const actual = execFileSync(binary, ["--version"], { encoding: "utf8" }).trim();
    if (actual === `v${version}`) return;
  }
  const dir = join(root, ".tools", "node", version);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), '{ "private": true }\n');
  const spec = `node-${process.platform}-${process.arch}@${version}`;
  const started = Date.now();
  execFileSync(
    "npm",
    ["install", "--no-save", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", spec],
    { cwd: dir, stdio: ["ignore", "inherit", "inherit"] },
  );
  if (!existsSync(binary)) throw new Error(`${spec} installed no ${binary}`);
  process.stderr.write(`node-versions: ${spec} in ${((Date.now() - started) / 1000).toFixed(0)}s\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const version of testedNodeVersions) install(version);
}
