// Makes this repository resolve and run as it does in a user's project, once `dist/` is built
// (`npm install` runs it through `prepare`, after the build):
// - `require("pulumi-run402/...")`: the serialized dynamic provider is a stub that loads its
//   implementation by package name from the Pulumi project's folder (see docs/ARCHITECTURE.md), and
//   the stacks in this repository (Pulumi.yaml at the root, examples/, tests) run from here, where
//   the package is not installed under node_modules. A relative symlink node_modules/pulumi-run402
//   -> .. fixes that.
// - The bins (`run402-pulumi`, and each workspace's, `run402-sandbox`) in node_modules/.bin: npm never
//   links the root package's own bins, and links a workspace's before `prepare` has built its target,
//   when there is nothing to link yet. Linked here, after the build, each executable.
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  unlinkSync,
} from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** Points `link` at `target` (relative), replacing whatever link or file was there. */
function symlink(target, link) {
  try {
    const st = lstatSync(link);
    if (st.isSymbolicLink() && readlinkSync(link) === target) return;
    unlinkSync(link);
  } catch (error) {
    if (error.code !== "ENOENT") throw error;
  }
  symlinkSync(target, link);
}

/** The package's bins, `{ name: path from its folder }`. */
function bins(pkg) {
  if (typeof pkg.bin === "string") return { [pkg.name.split("/").pop()]: pkg.bin };
  return pkg.bin ?? {};
}

/** Links the package at `root` to itself and its bins and its workspaces' bins into node_modules/.bin. */
export function linkSelf(root) {
  // Installed as a dependency of someone else's project: nothing to do.
  if (root.split(/[\\/]/).includes("node_modules")) return;
  const modules = join(root, "node_modules");
  mkdirSync(join(modules, ".bin"), { recursive: true });
  symlink("..", join(modules, "pulumi-run402"));
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const packages = [{ dir: join(modules, "pulumi-run402"), pkg }];
  for (const pattern of pkg.workspaces ?? []) {
    // The workspaces this repository has are `packages/*`: each is linked by npm under its name.
    if (!pattern.endsWith("/*")) continue;
    const parent = join(root, pattern.slice(0, -2));
    if (!existsSync(parent)) continue;
    for (const name of readdirNames(parent)) {
      const file = join(parent, name, "package.json");
      if (!existsSync(file)) continue;
      const workspace = JSON.parse(readFileSync(file, "utf8"));
      packages.push({ dir: join(modules, ...workspace.name.split("/")), pkg: workspace });
    }
  }
  for (const { dir, pkg: p } of packages) {
    for (const [name, path] of Object.entries(bins(p))) {
      const target = join(dir, path);
      if (!existsSync(target))
        throw new Error(`${p.name}'s bin ${name} (${path}) is not built: run \`npm run build\`.`);
      chmodSync(target, 0o755);
      symlink(relative(join(modules, ".bin"), target), join(modules, ".bin", name));
    }
  }
}

function readdirNames(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);
}

if (process.argv[1] === fileURLToPath(import.meta.url))
  linkSelf(join(dirname(fileURLToPath(import.meta.url)), ".."));
