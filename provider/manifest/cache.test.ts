import {
  mkdirSync,
  mkdtempSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeEach, describe, expect, test } from "vitest";
import { clearManifestCache, MANIFEST_CACHE, resolveManifestFile } from "./cache.js";

const root = mkdtempSync(join(tmpdir(), "run402-manifest-cache-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let dir: string;
let n = 0;
const settings = { ...MANIFEST_CACHE };

beforeEach(() => {
  dir = join(root, String(n++));
  mkdirSync(join(dir, "site"), { recursive: true });
  writeFileSync(join(dir, "site", "index.html"), "<h1>one</h1>");
  writeFileSync(join(dir, "site", "style.css"), "h1 { color: red }");
  writeFileSync(
    join(dir, "app.json"),
    JSON.stringify({
      project: { name: "cached" },
      database: { migrations: [{ id: "001_a", sql: "create table a (id int);" }] },
      site: { dir: "site" },
    }),
  );
  clearManifestCache();
});
afterEach(() => Object.assign(MANIFEST_CACHE, settings));

const resolveIn = (path = join(dir, "app.json")) =>
  resolveManifestFile(path, { projectId: "prj_pending", file: "app.json" });
const sitePaths = async (path?: string) =>
  Object.fromEntries(
    Object.entries((await resolveIn(path)).resolved.spec.site?.replace ?? {}).map(([p, v]) => [
      p,
      (v as { sha256: string }).sha256,
    ]),
  );

/** Files written now are "racily clean" for `racyMs`: these tests take them as settled at once. */
async function settled(): Promise<void> {
  MANIFEST_CACHE.racyMs = 0;
  // A file written in this millisecond still counts as changed during the first resolution.
  await sleep(20);
}

/** Moves a file's mtime by `seconds` (its ctime becomes now). */
function touch(path: string, seconds: number): void {
  const { atime, mtime } = statSync(path);
  utimesSync(path, atime, new Date(mtime.getTime() + seconds * 1000));
}

describe("issue 25: a manifest file is resolved once while its files stay as they were", () => {
  test("behavior: checking the same unchanged manifest again reuses the resolution", async () => {
    await settled();
    const first = await resolveIn();
    expect(await resolveIn()).toBe(first);
    // Through a folder that holds the manifest, too.
    const viaDir = await resolveIn(dir);
    expect(await resolveIn(dir)).toBe(viaDir);
  });

  test("behavior: a site file's new content (another size) is seen", async () => {
    await settled();
    const before = await sitePaths();
    writeFileSync(join(dir, "site", "index.html"), "<h1>two, longer</h1>");
    const after = await sitePaths();
    expect(after["index.html"]).not.toBe(before["index.html"]);
    expect(after["style.css"]).toBe(before["style.css"]);
  });

  test("behavior: a site file's new content of the same size, with its mtime moved, is seen", async () => {
    await settled();
    const before = await sitePaths();
    writeFileSync(join(dir, "site", "index.html"), "<h1>two</h1>");
    touch(join(dir, "site", "index.html"), -60);
    expect((await sitePaths())["index.html"]).not.toBe(before["index.html"]);
  });

  test("behavior: the manifest's own new content of the same size is seen", async () => {
    await settled();
    const before = await resolveIn();
    const path = join(dir, "app.json");
    const text = JSON.stringify({
      project: { name: "cached" },
      database: { migrations: [{ id: "001_a", sql: "create table b (id int);" }] },
      site: { dir: "site" },
    });
    expect(text.length).toBe(statSync(path).size);
    writeFileSync(path, text);
    touch(path, 60);
    const after = await resolveIn();
    expect(after.resolved.digest).not.toBe(before.resolved.digest);
    expect(after.manifest.database?.migrations?.[0]?.sql).toBe("create table b (id int);");
  });

  test("behavior: a file added to or removed from the site folder is seen", async () => {
    await settled();
    expect(Object.keys(await sitePaths()).sort()).toEqual(["index.html", "style.css"]);
    writeFileSync(join(dir, "site", "new.txt"), "new");
    expect(Object.keys(await sitePaths()).sort()).toEqual(["index.html", "new.txt", "style.css"]);
    unlinkSync(join(dir, "site", "style.css"));
    expect(Object.keys(await sitePaths()).sort()).toEqual(["index.html", "new.txt"]);
  });

  test("behavior: a symlink pointed at another file is seen", async () => {
    writeFileSync(join(dir, "a.txt"), "aaa");
    writeFileSync(join(dir, "b.txt"), "bbb");
    symlinkSync(join(dir, "a.txt"), join(dir, "site", "link.txt"));
    await settled();
    const before = await sitePaths();
    unlinkSync(join(dir, "site", "link.txt"));
    symlinkSync(join(dir, "b.txt"), join(dir, "site", "link.txt"));
    // The folder's own stat would show the new link: keep it as it was, to see the link is checked.
    const site = statSync(join(dir, "site"));
    utimesSync(join(dir, "site"), site.atime, site.mtime);
    expect((await sitePaths())["link.txt"]).not.toBe(before["link.txt"]);
  });

  test("behavior: files changed within racyMs of a resolution are read again on the next check", async () => {
    // Timestamps are as fine as the kernel's tick: a same-size rewrite within it keeps size and
    // times, so only not keeping such a resolution sees it.
    const first = await resolveIn();
    const second = await resolveIn();
    expect(second).not.toBe(first);
    expect(second.resolved.digest).toBe(first.resolved.digest);
  });

  test("error: a manifest that fails is not kept: fixed, it resolves", async () => {
    await settled();
    writeFileSync(join(dir, "app.json"), "{ not json");
    await expect(resolveIn()).rejects.toThrow();
    writeFileSync(
      join(dir, "app.json"),
      JSON.stringify({ project: { name: "fixed" }, site: { dir: "site" } }),
    );
    expect((await resolveIn()).manifest.project).toEqual({ name: "fixed" });
  });
});
