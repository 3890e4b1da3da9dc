import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ManifestValidationError } from "../../schema/errors.js";
import { findManifest, loadManifest, ManifestNotFoundError } from "./load.js";
import { resolveManifest } from "./resolve.js";

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "run402-load-"));
  await writeFile(join(dir, "index.html"), "<h1>hi</h1>");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function failure(path: string): Promise<unknown> {
  return loadManifest(path).then(
    () => {
      throw new Error("expected loadManifest to fail");
    },
    (err: unknown) => err,
  );
}

const json = {
  tier: { name: "hobby", autoRenew: true },
  project: { name: "shop" },
  database: { migrations: [{ name: "init", sql: "create table t (id int);" }] },
  site: { files: [{ path: "index.html" }] },
  routes: null,
};

const yaml = `# the same stack as the JSON one
tier:
  name: hobby
  autoRenew: true
project:
  name: shop
database:
  migrations:
    - name: init
      sql: create table t (id int);
site:
  files:
    - path: index.html
routes: null
`;

describe("loadManifest", () => {
  test("default: JSON, with the file and its folder", async () => {
    const file = await write("app.json", JSON.stringify(json));
    expect(await loadManifest(file)).toEqual({ manifest: json, file, dir });
  });

  test("behavior: YAML (.yaml and .yml) loads and resolves to the same release as JSON", async () => {
    const fromJson = await loadManifest(await write("app.json", JSON.stringify(json)));
    for (const name of ["app.yaml", "app.yml"]) {
      const fromYaml = await loadManifest(await write(name, yaml));
      expect(fromYaml.manifest).toEqual(fromJson.manifest);
      const a = await resolveManifest({ manifest: fromJson.manifest, dir, projectId: "prj_1" });
      const b = await resolveManifest({ manifest: fromYaml.manifest, dir, projectId: "prj_1" });
      expect(b.digest).toBe(a.digest);
    }
  });

  test("error: YAML syntax errors carry line and column", async () => {
    const error = await failure(await write("bad.yaml", "project:\n  name: shop\ntier: hobby\ntier: team\n"));
    expect(error).toBeInstanceOf(ManifestValidationError);
    expect((error as ManifestValidationError).message.replaceAll(dir, "<dir>")).toMatchInlineSnapshot(`
      "<dir>/bad.yaml is not a valid manifest (1 problem).

      /tier: Duplicate key at line 4, column 1: YAML parsers disagree on which one wins. Keep one of them."
    `);
  });

  test("error: JSON syntax errors", async () => {
    const error = await failure(await write("bad.json", '{\n  "tier": "hobby",\n}'));
    expect(error).toBeInstanceOf(ManifestValidationError);
    expect((error as ManifestValidationError).message.replaceAll(dir, "<dir>")).toMatchInlineSnapshot(`
      "<dir>/bad.json is not a valid manifest (1 problem).

      (root): Not valid JSON at line 3, column 1: Expected a key in double quotes, found \`}\`."
    `);
  });

  test("error: schema problems name the file", async () => {
    const error = await failure(await write("typo.yaml", "tier: hobby\nsitee:\n  dir: public\n"));
    expect((error as ManifestValidationError).message.replaceAll(dir, "<dir>")).toMatchInlineSnapshot(`
      "<dir>/typo.yaml is not a valid manifest (1 problem).

      /sitee: Unknown key \`sitee\`. Did you mean \`site\`?"
    `);
  });

  test("error: missing file and unsupported extension", async () => {
    const missing = await failure(join(dir, "nope.json"));
    expect(missing).toBeInstanceOf(ManifestNotFoundError);
    expect((missing as ManifestNotFoundError).code).toBe("MANIFEST_NOT_FOUND");
    const toml = await failure(await write("app.toml", ""));
    expect((toml as ManifestValidationError).message.replaceAll(dir, "<dir>")).toMatchInlineSnapshot(`
      "<dir>/app.toml is not a valid manifest (1 problem).

      (root): Unsupported manifest extension ".toml". Use .json, .yaml or .yml."
    `);
  });
});

describe("findManifest", () => {
  async function folder(files: Record<string, string>): Promise<string> {
    const at = await mkdtemp(join(dir, "find-"));
    for (const [name, text] of Object.entries(files)) await writeFile(join(at, name), text);
    return at;
  }
  const site = JSON.stringify({ site: { replace: { "index.html": "hi" } } });

  test("default: Run402's names come first, as `run402 up` looks for them, then app.json and YAML", async () => {
    const all = await folder({
      "app.json": site,
      "run402.deploy.json": site,
      "app.yaml": "site: { dir: . }",
    });
    expect(await findManifest(all)).toBe(join(all, "run402.deploy.json"));
    expect((await loadManifest(all)).file).toBe(join(all, "run402.deploy.json"));
    const both = await folder({ "run402.json": site, "run402.deploy.json": site });
    expect(await findManifest(both)).toBe(join(both, "run402.json"));
    const yamlOnly = await folder({ "app.yml": "site: { replace: { index.html: hi } }" });
    expect((await loadManifest(yamlOnly)).manifest).toEqual({ site: { replace: { "index.html": "hi" } } });
  });

  test("error: an empty folder names what it looked for", async () => {
    const empty = await folder({});
    const err = await failure(empty);
    expect(err).toBeInstanceOf(ManifestNotFoundError);
    expect((err as ManifestNotFoundError).path).toBe(
      join(empty, "{run402.json,run402.deploy.json,app.json,app.yaml,app.yml}"),
    );
  });

  test("error: Run402's app spec (run402.json for `run402 up`) gets one issue that says what to do", async () => {
    const app = await folder({
      "run402.json": JSON.stringify({ spec_version: 1, app: { id: "todo" }, release: { site: {} } }),
    });
    const err = (await failure(app)) as ManifestValidationError;
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]?.pointer).toBe("");
    expect(err.issues[0]?.hint).toContain("Move the slices inside `release`");
  });
});
