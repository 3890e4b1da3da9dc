import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { AppManifest } from "../../schema/app.types.js";
import { ManifestValidationError } from "../../schema/errors.js";
import { diffResolved } from "./diff.js";
import { canonicalJson, sha256Hex } from "./hash.js";
import { loadManifest } from "./load.js";
import { resolveManifest } from "./resolve.js";

let root: string;
let app: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "run402-manifest-"));
  app = join(root, "app");
  await mkdir(join(app, "public/assets"), { recursive: true });
  await mkdir(join(app, "public/.git"), { recursive: true });
  await mkdir(join(app, "public/node_modules/x"), { recursive: true });
  await mkdir(join(app, "db"));
  await mkdir(join(app, "functions"));
  await writeFile(join(app, "public/index.html"), "<h1>hi</h1>");
  await writeFile(join(app, "public/assets/app.css"), "body{}");
  await writeFile(join(app, "public/.well-known"), "x");
  await writeFile(join(app, "public/.git/HEAD"), "ref");
  await writeFile(join(app, "public/node_modules/x/index.js"), "1");
  await writeFile(join(app, "db/seed.sql"), "insert into t values (1);");
  await writeFile(join(app, "functions/api.js"), "export default () => new Response('ok');");
  await writeFile(join(root, "outside.txt"), "secret");
  await symlink(join(root, "outside.txt"), join(app, "link-out.txt"));
  await symlink(join(app, "public/index.html"), join(app, "link-in.html"));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function errorOf(promise: Promise<unknown>): Promise<ManifestValidationError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ManifestValidationError) return err;
    throw err;
  }
  throw new Error("expected a ManifestValidationError");
}

describe("resolveManifest", () => {
  test("default: the quickstart example", async () => {
    const { manifest, dir } = await loadManifest(
      new URL("../../examples/quickstart/app.json", import.meta.url).pathname,
    );
    const release = await resolveManifest({ manifest, dir, projectId: "prj_quickstart" });
    expect(release.summary.files.map((f) => [f.path, f.contentType])).toEqual([
      ["index.html", "text/html"],
      ["style.css", "text/css"],
    ]);
    expect(release.summary.migrations.map((m) => m.id)).toEqual(["001_notes"]);
    expect(release.content.size).toBe(2);
    expect(release.spec.project_id).toBe("prj_quickstart");
    expect(release.digest).toBe(sha256Hex(canonicalJson(release.spec)));
  });

  test("behavior: wire spec, content and summary for every slice", async () => {
    const manifest: AppManifest = {
      database: {
        migrations: [
          { id: "001_init", sql: "create table t (id int);" },
          { name: "seed", sql_path: "db/seed.sql", transaction: "none" },
        ],
      },
      site: { dir: "public" },
      functions: {
        replace: {
          api: {
            source: { path: "functions/api.js" },
            config: { timeoutSeconds: 10, memory_mb: 128 },
            deps: ["zod@4"],
          },
        },
      },
      secrets: { require: ["STRIPE_KEY"] },
      subdomain: "myapp",
      routes: {
        replace: [{ pattern: "/api/*", methods: ["GET"], target: { type: "function", name: "api" } }],
      },
    };
    const release = await resolveManifest({ manifest, dir: app, projectId: "prj_1" });
    const seedSum = sha256Hex("insert into t values (1);");
    expect(release.spec.database?.migrations?.[1]).toEqual({
      id: `seed_${seedSum.slice(0, 16)}`,
      checksum: seedSum,
      sql: "insert into t values (1);",
      transaction: "none",
    });
    expect(release.spec.database?.migrations?.[0]?.transaction).toBe("required");
    // .git and node_modules are skipped; other dot files are kept.
    expect(Object.keys(release.spec.site?.replace ?? {})).toEqual([
      ".well-known",
      "assets/app.css",
      "index.html",
    ]);
    expect(release.spec.site?.replace?.["index.html"]).toEqual({
      sha256: sha256Hex("<h1>hi</h1>"),
      size: 11,
      content_type: "text/html",
    });
    expect(release.spec.functions?.replace?.["api"]).toEqual({
      runtime: "node22",
      source: {
        sha256: sha256Hex("export default () => new Response('ok');"),
        size: 40,
        content_type: "text/javascript",
      },
      config: { timeout_seconds: 10, memory_mb: 128 },
      schedule: null,
      deps: ["zod@4"],
    });
    expect(release.spec.subdomains).toEqual({ set: ["myapp"] });
    expect(release.spec.base).toEqual({ release: "current" });
    const apiSha = sha256Hex("export default () => new Response('ok');");
    expect(release.content.get(apiSha)).toMatchObject({ contentType: "text/javascript", path: "api.js" });
    expect(release.summary.functions).toEqual([{ name: "api", sha256: apiSha }]);
    expect(release.content.size).toBe(4);
  });

  test("behavior: list and map site forms, inline and base64 data, symlinks inside the folder", async () => {
    const list = await resolveManifest({
      manifest: {
        site: {
          files: [
            { path: "index.html", source: "link-in.html" },
            { path: "hello.txt", data: "hello" },
            { path: "dot.png", data: "iVBORw0KGgo=", encoding: "base64", contentType: "image/x-test" },
          ],
        },
      },
      dir: app,
      projectId: "prj_1",
    });
    const map = await resolveManifest({
      manifest: {
        site: {
          replace: {
            "index.html": { path: "public/index.html" },
            "hello.txt": "hello",
            "dot.png": { data: "iVBORw0KGgo=", encoding: "base64", content_type: "image/x-test" },
          },
        },
      },
      dir: app,
      projectId: "prj_1",
    });
    expect(list.spec).toEqual(map.spec);
    expect(list.digest).toBe(map.digest);
    expect(list.summary.files.map((f) => [f.path, f.size, f.contentType])).toEqual([
      ["dot.png", 8, "image/x-test"],
      ["hello.txt", 5, "text/plain"],
      ["index.html", 11, "text/html"],
    ]);
  });

  test("behavior: the digest is stable and independent of key order", async () => {
    const a = await resolveManifest({
      manifest: { site: { dir: "public" }, secrets: { require: ["A"] } },
      dir: app,
      projectId: "prj_1",
    });
    const b = await resolveManifest({
      manifest: { secrets: { require: ["A"] }, site: { dir: "public" } },
      dir: app,
      projectId: "prj_1",
    });
    expect(b.digest).toBe(a.digest);
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[2,{"y":2,"z":1}]},"b":1}',
    );
    const c = await resolveManifest({ manifest: { site: { dir: "public" } }, dir: app, projectId: "prj_2" });
    expect(c.digest).not.toBe(a.digest);
    // Pinned: a change here changes every deployed release's digest.
    const pinned = await resolveManifest({
      manifest: {
        database: { migrations: [{ id: "001", sql: "select 1" }] },
        site: { files: { "index.html": "hi" } },
      },
      dir: app,
      projectId: "prj_1",
    });
    expect(canonicalJson(pinned.spec)).toMatchInlineSnapshot(
      `"{"base":{"release":"current"},"database":{"migrations":[{"checksum":"822ae07d4783158bc1912bb623e5107cc9002d519e1143a9c200ed6ee18b6d0f","id":"001","sql":"select 1","transaction":"required"}]},"project_id":"prj_1","site":{"replace":{"index.html":{"content_type":"text/html","sha256":"8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4","size":2}}}}"`,
    );
    expect(pinned.digest).toMatchInlineSnapshot(
      `"e464a3dc3df71df81864bc0b99767916327c26e8938927f31959783b70d1bd77"`,
    );
  });

  test("error: paths cannot leave the manifest's folder, all reported at once", async () => {
    const error = await errorOf(
      resolveManifest({
        manifest: {
          database: {
            migrations: [
              { id: "1", sql_path: "../outside.txt" },
              { id: "2", sql_file: "/etc/passwd" },
            ],
          },
          site: {
            files: [
              { path: "a.txt", source: "link-out.txt" },
              { path: "b.txt", source: "missing.txt" },
            ],
          },
          functions: { replace: { api: { source: { path: "functions/../../outside.txt" } } } },
        },
        dir: app,
        projectId: "prj_1",
        file: "app.json",
      }),
    );
    expect(error.code).toBe("MANIFEST_INVALID");
    expect(error.message.replaceAll(root, "<tmp>")).toMatchInlineSnapshot(`
      "app.json is not a valid manifest (5 problems).

      /database/migrations/0/sql_path: "../outside.txt" leaves the manifest's folder; ".." segments are not allowed. Move the file under the manifest's folder.
      /database/migrations/1/sql_file: "/etc/passwd" is an absolute path; paths in a manifest are relative to the manifest's folder. Write it relative to <tmp>/app.
      /site/files/0/source: "link-out.txt" resolves outside the manifest's folder (to <tmp>/outside.txt); symlinks must stay inside it.
      /site/files/1/source: "missing.txt" does not exist (looked for <tmp>/app/missing.txt).
      /functions/replace/api/source/path: "functions/../../outside.txt" leaves the manifest's folder; ".." segments are not allowed. Move the file under the manifest's folder."
    `);
  });

  test("error: a symlink out of a site directory, bad site paths, wrong checksum", async () => {
    const leaky = join(root, "leaky");
    await mkdir(join(leaky, "site"), { recursive: true });
    await writeFile(join(leaky, "site/index.html"), "x");
    await symlink(root, join(leaky, "site/up"));
    const error = await errorOf(
      resolveManifest({
        manifest: {
          site: { dir: "site" },
          database: { migrations: [{ id: "1", sql: "select 1", checksum: "0".repeat(64) }] },
        },
        dir: leaky,
        projectId: "prj_1",
      }),
    );
    const bad = await errorOf(
      resolveManifest({
        manifest: {
          site: { files: { "/abs.html": "x", "a/../b.html": "y", "ok.html": { path: "nope.html" } } },
        },
        dir: leaky,
        projectId: "prj_1",
      }),
    );
    expect(
      [...error.metaMessages!, ...bad.metaMessages!].map((m) => m.replaceAll(root, "<tmp>")),
    ).toMatchInlineSnapshot(`
        [
          "/database/migrations/0/checksum: Does not match the SQL, whose sha256 is 822ae07d4783158bc1912bb623e5107cc9002d519e1143a9c200ed6ee18b6d0f. Remove it or fix it.",
          "/site/dir: "up" is a symlink that resolves outside the manifest's folder (to <tmp>).",
          "/site/files/~1abs.html: Site path "/abs.html" is not a clean relative path. Use forward slashes, no leading "/", and no empty, "." or ".." segments (e.g. "assets/app.css").",
          "/site/files/a~1..~1b.html: Site path "a/../b.html" is not a clean relative path. Use forward slashes, no leading "/", and no empty, "." or ".." segments (e.g. "assets/app.css").",
          "/site/files/ok.html/path: "nope.html" does not exist (looked for <tmp>/leaky/nope.html).",
        ]
      `);
  });
});

describe("diffResolved", () => {
  const file = (path: string, sha256: string) => ({ path, sha256, size: 1, contentType: "text/html" });
  test("default: everything is added on the first deploy", () => {
    expect(
      diffResolved(undefined, {
        files: [file("a.html", "1")],
        migrations: [{ id: "001", checksum: "c" }],
        functions: [{ name: "api", sha256: "f" }],
      }),
    ).toEqual({
      files: { added: ["a.html"], removed: [], changed: [] },
      migrations: { added: ["001"], removed: [], changed: [] },
      functions: { added: ["api"], removed: [], changed: [] },
      hasChanges: true,
    });
  });

  test("behavior: added, removed and changed by name", () => {
    const before = {
      files: [file("a.html", "1"), file("b.html", "2"), file("c.html", "3")],
      migrations: [
        { id: "001", checksum: "c1" },
        { id: "002", checksum: "c2" },
      ],
      functions: [
        { name: "api", sha256: "f1" },
        { name: "old", sha256: "f2" },
      ],
    };
    const after = {
      files: [file("a.html", "1"), file("b.html", "9"), file("d.html", "4")],
      migrations: [
        { id: "001", checksum: "c1" },
        { id: "002", checksum: "cX" },
        { id: "003", checksum: "c3" },
      ],
      functions: [
        { name: "api", sha256: "f9" },
        { name: "new", sha256: "f3" },
      ],
    };
    expect(diffResolved(before, after)).toEqual({
      files: { added: ["d.html"], removed: ["c.html"], changed: ["b.html"] },
      migrations: { added: ["003"], removed: [], changed: ["002"] },
      functions: { added: ["new"], removed: ["old"], changed: ["api"] },
      hasChanges: true,
    });
    expect(diffResolved(after, after).hasChanges).toBe(false);
  });
});
