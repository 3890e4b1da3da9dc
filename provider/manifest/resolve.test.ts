import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalizeJson, digestPortableManifest, parseReleaseSpec } from "@run402/release";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { AppManifest } from "../../schema/app.types.js";
import { ManifestValidationError } from "../../schema/errors.js";
import { sha256Hex } from "../../schema/release.js";
import { validateManifest } from "../../schema/validate.js";
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
    const site = release.spec.site?.replace ?? {};
    expect(Object.entries(site).map(([path, ref]) => [path, ref.contentType])).toEqual([
      ["index.html", "text/html"],
      ["style.css", "text/css"],
    ]);
    expect(release.spec.database?.migrations?.map((m) => m.id)).toEqual(["001_notes"]);
    // Two site files and the migration's SQL, which travels as content.
    expect(release.content.size).toBe(3);
    expect(release.spec.project).toBe("prj_quickstart");
    expect(release.digest).toBe(digestPortableManifest(release.spec));
  });

  test("behavior: Run402's ReleaseSpec and the content for every slice", async () => {
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
      subdomains: { set: ["myapp"] },
      routes: {
        replace: [{ pattern: "/api/*", methods: ["GET"], target: { type: "function", name: "api" } }],
      },
    };
    const release = await resolveManifest({ manifest, dir: app, projectId: "prj_1" });
    const seed = "insert into t values (1);";
    const seedSum = sha256Hex(seed);
    // Migrations travel as content (`sql_ref`), as @run402/sdk sends them; the checksum is the SQL's sha256.
    expect(release.spec.database?.migrations?.[1]).toEqual({
      id: `seed_${seedSum.slice(0, 16)}`,
      checksum: seedSum,
      sql_ref: { sha256: seedSum, size: seed.length, contentType: "application/sql" },
      transaction: "none",
    });
    expect(release.content.get(seedSum)).toMatchObject({ contentType: "application/sql" });
    expect(release.spec.database?.migrations?.[0]?.transaction).toBeUndefined();
    // .git and node_modules are never uploaded; other dot entries only when listed in include_dotfiles.
    expect(Object.keys(release.spec.site?.replace ?? {})).toEqual(["assets/app.css", "index.html"]);
    expect(release.skipped).toEqual([
      { path: ".git", why: "never" },
      { path: ".well-known", why: "dotfile" },
      { path: "node_modules", why: "never" },
    ]);
    expect(release.spec.site?.replace?.["index.html"]).toEqual({
      sha256: sha256Hex("<h1>hi</h1>"),
      size: 11,
      contentType: "text/html",
    });
    const apiSha = sha256Hex("export default () => new Response('ok');");
    expect(release.spec.functions?.replace?.["api"]).toEqual({
      runtime: "node22",
      source: { sha256: apiSha, size: 40, contentType: "text/javascript" },
      config: { timeoutSeconds: 10, memoryMb: 128 },
      deps: ["zod@4"],
    });
    expect(release.spec.subdomains).toEqual({ set: ["myapp"] });
    expect(release.spec.base).toBeUndefined();
    expect(release.content.get(apiSha)).toMatchObject({ contentType: "text/javascript", path: "api.js" });
    expect(release.content.size).toBe(5);
    // What @run402/release accepts, and what it would materialize, is exactly this spec.
    expect(parseReleaseSpec(release.spec)).toBe(release.spec);
  });

  test("behavior: folders upload no secrets, tool state or unlisted dot entries, in every form that names a folder", async () => {
    const site = join(root, "dotfiles");
    const files: Record<string, string> = {
      "index.html": "<h1>hi</h1>",
      "sub/page.html": "page",
      "sub/.hidden": "h",
      ".well-known/security.txt": "Contact: mailto:a@b.c",
      ".well-known/.env": "NESTED=1",
      ".htaccess": "deny",
      ".env": "SECRET=1",
      ".env.local": "SECRET=2",
      ".envrc": "export X=1",
      ".npmrc": "//registry/:_authToken=x",
      ".netrc": "machine x password y",
      id_rsa: "KEY",
      "id_rsa.pub": "PUB",
      "server.key": "KEY",
      "cert.PEM": "PEM",
      "a.p12": "P12",
      "b.pfx": "PFX",
      ".DS_Store": "ds",
      ".run402/passphrase": "pass",
      ".pulumi/stacks/dev.json": "{}",
      "Pulumi.yaml": "name: x",
      "Pulumi.dev.yaml": "config: {}",
      ".git/HEAD": "ref",
      "node_modules/x/index.js": "1",
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(join(site, path, ".."), { recursive: true });
      await writeFile(join(site, path), text);
    }
    const forms: AppManifest["site"][] = [
      { dir: ".", include_dotfiles: [".well-known/", ".htaccess"] },
      { replace: { __source: "local-dir", path: "." }, include_dotfiles: [".well-known/", ".htaccess"] },
      {
        patch: { put: { __source: "local-dir", path: "." } },
        include_dotfiles: [".well-known/", ".htaccess"],
      },
    ];
    for (const form of forms) {
      const manifest: AppManifest = { site: form };
      const release = await resolveManifest({ manifest, dir: site, projectId: "prj_1" });
      const uploaded = release.spec.site?.replace ?? release.spec.site?.patch?.put ?? {};
      expect(Object.keys(uploaded)).toEqual([
        ".htaccess",
        ".well-known/security.txt",
        "index.html",
        "sub/page.html",
      ]);
      expect(release.skipped.filter((s) => s.why === "dotfile").map((s) => s.path)).toEqual(["sub/.hidden"]);
      expect(release.skipped.filter((s) => s.why === "never").map((s) => s.path)).toEqual([
        ".DS_Store",
        ".env",
        ".env.local",
        ".envrc",
        ".git",
        ".netrc",
        ".npmrc",
        ".pulumi",
        ".run402",
        ".well-known/.env",
        "Pulumi.dev.yaml",
        "Pulumi.yaml",
        "a.p12",
        "b.pfx",
        "cert.PEM",
        "id_rsa",
        "id_rsa.pub",
        "node_modules",
        "server.key",
      ]);
      // Nothing a skipped file holds is among the content to upload.
      const bytes = await Promise.all(
        [...release.content.values()].map(async (c) =>
          Buffer.from("bytes" in c ? c.bytes : await c.read()).toString(),
        ),
      );
      for (const secret of [
        "SECRET=1",
        "SECRET=2",
        "NESTED=1",
        "pass",
        "KEY",
        "PEM",
        "//registry/:_authToken=x",
      ])
        expect(bytes).not.toContain(secret);
    }
    // Without the list, no dot entry is uploaded; a listed secret is refused, not uploaded.
    const plain = await resolveManifest({ manifest: { site: { dir: "." } }, dir: site, projectId: "prj_1" });
    expect(Object.keys(plain.spec.site?.replace ?? {})).toEqual(["index.html", "sub/page.html"]);
    const listed = validateManifest({
      site: { dir: ".", include_dotfiles: [".env", ".well-known/", "a/.npmrc"] },
    });
    expect(listed.ok ? [] : listed.issues.map((i) => i.pointer)).toEqual([
      "/site/include_dotfiles/0",
      "/site/include_dotfiles/2",
    ]);
  });

  test("behavior: Run402's spellings map to its ReleaseSpec; authoring-only fields are dropped", async () => {
    const release = await resolveManifest({
      manifest: {
        $schema: "https://run402.com/schemas/release-spec.v1.json",
        "x-run402-omitted_features": ["mailboxes"],
        project_id: "prj_other",
        idempotency_key: "deploy-7",
        verify: { http: [{ id: "home", path: "/", expected_status: 200 }] },
        i18n: { default_locale: "en", locales: ["en", "fr"], unknown_locale_policy: "pass-through" },
        functions: {
          replace: {
            admin: {
              source: "export default () => new Response('admin');",
              require_auth: true,
              require_role: {
                table: "members",
                id_column: "user_id",
                role_column: "role",
                allowed: ["admin"],
                cache_ttl: 30,
              },
              class: "standard",
              capabilities: ["email.send"],
              triggers: [
                { id: "nightly", type: "schedule", cron: "0 3 * * *", run: { event_type: "sweep" } },
              ],
            },
          },
        },
        routes: {
          replace: [
            {
              pattern: "/admin/*",
              methods: ["GET"],
              target: { type: "function", name: "admin" },
              acknowledge_readonly: true,
            },
          ],
        },
        assets: { put: [{ key: "logo.txt", source: "logo", visibility: "private" }] },
      },
      dir: app,
      projectId: "prj_1",
    });
    expect(release.idempotencyKey).toBe("deploy-7");
    expect(release.spec).toMatchObject({
      project: "prj_1",
      i18n: { defaultLocale: "en", locales: ["en", "fr"], unknownLocalePolicy: "pass-through" },
      functions: {
        replace: {
          admin: {
            requireAuth: true,
            requireRole: {
              table: "members",
              idColumn: "user_id",
              roleColumn: "role",
              allowed: ["admin"],
              cacheTtl: 30,
            },
            class: "standard",
            capabilities: ["email.send"],
            triggers: [{ id: "nightly", type: "schedule", cron: "0 3 * * *", run: { event_type: "sweep" } }],
          },
        },
      },
      routes: {
        replace: [{ pattern: "/admin/*", methods: ["GET"], target: { type: "function", name: "admin" } }],
      },
      assets: { put: [{ key: "logo.txt", sha256: sha256Hex("logo"), size_bytes: 4, visibility: "private" }] },
    });
    expect(Object.keys(release.spec).sort()).toEqual(["assets", "functions", "i18n", "project", "routes"]);
    expect(release.content.has(sha256Hex("logo"))).toBe(true);
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
    expect(Object.entries(list.spec.site?.replace ?? {}).map(([p, r]) => [p, r.size, r.contentType])).toEqual(
      [
        ["dot.png", 8, "image/x-test"],
        ["hello.txt", 5, "text/plain"],
        ["index.html", 11, "text/html"],
      ],
    );
  });

  test("behavior: the digest is @run402/release's, stable, and leaves the project out", async () => {
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
    const c = await resolveManifest({
      manifest: { site: { dir: "public" }, secrets: { require: ["A"] } },
      dir: app,
      projectId: "prj_2",
    });
    expect(c.digest).toBe(a.digest);
    // Pinned: a change here changes every deployed release's digest.
    const pinned = await resolveManifest({
      manifest: {
        database: { migrations: [{ id: "001", sql: "select 1" }] },
        site: { files: { "index.html": "hi" } },
      },
      dir: app,
      projectId: "prj_1",
    });
    expect(canonicalizeJson(pinned.spec)).toMatchInlineSnapshot(
      `"{"database":{"migrations":[{"checksum":"822ae07d4783158bc1912bb623e5107cc9002d519e1143a9c200ed6ee18b6d0f","id":"001","sql_ref":{"contentType":"application/sql","sha256":"822ae07d4783158bc1912bb623e5107cc9002d519e1143a9c200ed6ee18b6d0f","size":8}}]},"project":"prj_1","site":{"replace":{"index.html":{"contentType":"text/html","sha256":"8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4","size":2}}}}"`,
    );
    expect(pinned.digest).toMatchInlineSnapshot(
      `"run402-portable-manifest-v1:97901354db6c8ae86bce5bf4daa703d6424574604a4ab601f44a38612e5458d9"`,
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
      /functions/replace/api/source/path: "functions/../../outside.txt" leaves the manifest's folder; ".." segments are not allowed. Move the file under the manifest's folder.
      /site/files/0/source: "link-out.txt" resolves outside the manifest's folder (to <tmp>/outside.txt); symlinks must stay inside it.
      /site/files/1/source: "missing.txt" does not exist (looked for <tmp>/app/missing.txt)."
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
        "/site/dir: "up" is a symlink that resolves outside the manifest's folder (to <tmp>).",
        "/database/migrations/0/checksum: Does not match the SQL, whose sha256 is 822ae07d4783158bc1912bb623e5107cc9002d519e1143a9c200ed6ee18b6d0f. Remove it or fix it.",
        "/site/files/ok.html/path: "nope.html" does not exist (looked for <tmp>/leaky/nope.html).",
        "/site/files/~1abs.html: Site path "/abs.html" is not a clean relative path. Use forward slashes, no leading "/", and no empty, "." or ".." segments (e.g. "assets/app.css").",
        "/site/files/a~1..~1b.html: Site path "a/../b.html" is not a clean relative path. Use forward slashes, no leading "/", and no empty, "." or ".." segments (e.g. "assets/app.css").",
      ]
    `);
  });
});
