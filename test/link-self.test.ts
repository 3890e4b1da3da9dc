/**
 * scripts/link-self.mjs, which `npm install` runs after the build (`prepare`): on a fresh clone the
 * bins were missing, because npm links a workspace's bins before `prepare` has built them and never
 * links the root package's own. A repository of the same shape, in a temp folder.
 */
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { repoRoot } from "~test/engine.js";
// @ts-expect-error: a plain .mjs script without declarations.
import { linkSelf } from "../scripts/link-self.mjs";

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "run402-link-"));
  const write = (path: string, text: string) => {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), text);
  };
  // The real package.json files, so a bin added or moved there is covered.
  write("package.json", readFileSync(join(repoRoot, "package.json"), "utf8"));
  write(
    "packages/sandbox/package.json",
    readFileSync(join(repoRoot, "packages/sandbox/package.json"), "utf8"),
  );
  // What npm leaves after installing the workspace: its link, no bin (its target was not built yet).
  mkdirSync(join(root, "node_modules", "@pulumi-run402"), { recursive: true });
  symlinkSync("../../packages/sandbox", join(root, "node_modules", "@pulumi-run402", "sandbox"));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Every bin the real package.json files name, as `npm run build` (or the repository) leaves it. */
function build(): void {
  const bins = (dir: string) =>
    Object.values(
      (
        JSON.parse(readFileSync(join(repoRoot, dir, "package.json"), "utf8")) as {
          bin?: Record<string, string>;
        }
      ).bin ?? {},
    ).map((path) => join(dir, path));
  for (const path of [...bins("."), ...bins("packages/sandbox")]) {
    mkdirSync(join(root, path, ".."), { recursive: true });
    writeFileSync(join(root, path), "#!/usr/bin/env node\n");
  }
}

describe("scripts/link-self.mjs", () => {
  test("behavior: after the build, node_modules/.bin holds run402-pulumi and run402-sandbox, executable, and the package resolves by name", () => {
    build();
    linkSelf(root);
    const bin = join(root, "node_modules", ".bin");
    expect(realpathSync(join(bin, "run402-pulumi"))).toBe(realpathSync(join(root, "dist", "cli", "main.js")));
    expect(realpathSync(join(bin, "run402-sandbox"))).toBe(
      realpathSync(join(root, "packages", "sandbox", "dist", "main.js")),
    );
    for (const name of ["run402-pulumi", "run402-sandbox"])
      expect(statSync(join(bin, name)).mode & 0o111).toBe(0o111);
    expect(realpathSync(join(root, "node_modules", "pulumi-run402"))).toBe(realpathSync(root));
    // Run again (a second install): the same links.
    linkSelf(root);
    expect(realpathSync(join(bin, "run402-pulumi"))).toBe(realpathSync(join(root, "dist", "cli", "main.js")));
  });

  test("error: before the build it says what to run instead of linking nothing", () => {
    expect(() => linkSelf(root)).toThrow(
      /bin run402-pulumi \(dist\/cli\/main\.js\) is not built: run `npm run build`/,
    );
  });

  test("behavior: installed in someone else's node_modules it does nothing", () => {
    const nested = join(root, "node_modules", "pulumi-run402-copy");
    mkdirSync(nested, { recursive: true });
    expect(() => linkSelf(nested)).not.toThrow();
  });

  test("behavior: npm install runs it after the build", () => {
    const scripts = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")).scripts as Record<
      string,
      string
    >;
    expect(scripts.prepare).toMatch(/^npm run build && node scripts\/link-self\.mjs$/);
  });
});
