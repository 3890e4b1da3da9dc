// Makes `require("pulumi-run402/...")` resolve inside this repository exactly as it does in a
// user's project. The serialized dynamic provider is a stub that loads its implementation by
// package name from the Pulumi project's folder (see docs/ARCHITECTURE.md), and the stacks in this
// repository (Pulumi.yaml at the root, examples/, tests) run from here, where the package is not
// installed under node_modules. A relative symlink node_modules/pulumi-run402 -> .. fixes that.
import { lstatSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const link = join(root, "node_modules", "pulumi-run402");
// Installed as a dependency of someone else's project: nothing to do.
if (root.split(/[\\/]/).includes("node_modules")) process.exit(0);
mkdirSync(join(root, "node_modules"), { recursive: true });
try {
  const st = lstatSync(link);
  if (st.isSymbolicLink() && readlinkSync(link) === "..") process.exit(0);
  unlinkSync(link);
} catch (error) {
  if (error.code !== "ENOENT") throw error;
}
symlinkSync("..", link, "dir");
