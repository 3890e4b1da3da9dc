import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";
import { ManifestValidationError } from "./errors.js";
import { assertManifest, didYouMean, validateManifest } from "./validate.js";

const quickstart = JSON.parse(
  readFileSync(new URL("../examples/quickstart/app.json", import.meta.url), "utf8"),
) as unknown;

/** Everything a `run402 deploy apply --manifest` file may hold that we support, plus tier and project. */
const complete = {
  $schema: "https://pulumi-run402.dev/schemas/app.schema.json",
  project_id: "prj_123",
  idempotency_key: "deploy-42",
  tier: { name: "hobby", renewBeforeDays: 3, autoRenew: true },
  base: { release: "current" },
  database: {
    migrations: [
      { id: "001_init", sql: "create table t (id int);", transaction: "required" },
      { name: "seed", sql_path: "db/seed.sql" },
      { id: "003_more", sql_file: "db/more.sql", transaction: "none" },
    ],
    zero_downtime: false,
  },
  secrets: { require: ["STRIPE_KEY", "_X1"], delete: ["OLD_KEY"] },
  functions: {
    replace: {
      api: {
        runtime: "node22",
        source: { path: "functions/api.js" },
        config: { timeout_seconds: 10, memory_mb: 128 },
        schedule: null,
        deps: ["zod@4"],
      },
      cron: { source: "export default () => new Response('ok');", schedule: "*/15 * * * *" },
    },
  },
  site: { replace: { __source: "local-dir", path: "public" }, public_paths: { mode: "implicit" } },
  subdomains: { set: ["myapp"] },
  routes: {
    replace: [
      {
        pattern: "/api/*",
        methods: ["GET", "POST"],
        target: { type: "function", name: "api" },
        pricing: {
          mode: "always",
          amount_usd_micros: 1000,
          pay_to: "org_default_payout",
          networks: ["testnet"],
        },
      },
      { pattern: "/about", methods: ["GET"], target: { type: "static", file: "about.html" } },
    ],
  },
};

describe("validateManifest", () => {
  test("default: the quickstart example is valid", () => {
    expect(validateManifest(quickstart)).toEqual({ ok: true, manifest: quickstart });
  });

  test("behavior: a complete run402 deploy manifest is valid", () => {
    expect(validateManifest(complete).ok).toBe(true);
  });

  test("behavior: the other site and project forms are valid", () => {
    const forms = [
      {
        project: "prj_1",
        tier: "team",
        site: { files: [{ path: "index.html" }, { path: "a.txt", data: "hi" }] },
      },
      {
        project: { name: "x", adoptProjectId: "prj_2" },
        site: {
          files: { "index.html": "<h1>hi</h1>", "logo.png": { data: "iVBORw0KGgo=", encoding: "base64" } },
        },
      },
      {
        site: {
          patch: { put: { "a.html": { path: "a.html", content_type: "text/html" } }, delete: ["b.html"] },
        },
      },
      { subdomains: { set: ["myapp"] }, routes: null, base: { release_id: "rel_1" } },
      { site: { public_paths: { mode: "explicit", replace: { "/": { asset: "index.html" } } } }, i18n: null },
      {
        database: { migrations: [{ id: "001", sql_ref: { sha256: "a".repeat(64), size: 10 } }] },
        checks: null,
      },
      { functions: { patch: { set: { api: { source: { data: "x" } } }, delete: ["old"] } } },
      {},
    ];
    for (const form of forms) expect(validateManifest(form)).toMatchObject({ ok: true });
  });

  test("error: unknown keys get a did-you-mean hint at every level", () => {
    const result = validateManifest({
      sitee: { dir: "public" },
      database: { migration: [] },
      tier: { name: "team", autoRenw: true },
    });
    expect(result).toMatchInlineSnapshot(`
      {
        "issues": [
          {
            "hint": "Did you mean \`site\`?",
            "message": "Unknown key \`sitee\`.",
            "pointer": "/sitee",
          },
          {
            "hint": "Did you mean \`autoRenew\`?",
            "message": "Unknown key \`autoRenw\`.",
            "pointer": "/tier/autoRenw",
          },
          {
            "hint": "Did you mean \`migrations\`?",
            "message": "Unknown key \`migration\`.",
            "pointer": "/database/migration",
          },
        ],
        "ok": false,
      }
    `);
  });

  test("error: an unknown key with no close match lists the allowed keys", () => {
    expect(validateManifest({ secrets: { wanted: [] } })).toMatchInlineSnapshot(`
      {
        "issues": [
          {
            "hint": "Allowed keys here: \`require\`, \`delete\`.",
            "message": "Unknown key \`wanted\`.",
            "pointer": "/secrets/wanted",
          },
        ],
        "ok": false,
      }
    `);
  });

  test("error: enums list the allowed values, unions pick the branch that fits", () => {
    expect(
      validateManifest({ tier: "hobbby", project: 5, base: { release: "latest" } }),
    ).toMatchInlineSnapshot(`
      {
        "issues": [
          {
            "hint": "Did you mean "hobby"?",
            "message": "Must be one of "prototype", "hobby", "team" (got "hobbby").",
            "pointer": "/tier",
          },
          {
            "message": "Must be a string or an object (got the number 5).",
            "pointer": "/project",
          },
          {
            "message": "Must be one of "current", "empty" (got "latest").",
            "pointer": "/base/release",
          },
        ],
        "ok": false,
      }
    `);
  });

  test("error: every problem is reported at once, each with a pointer", () => {
    const result = validateManifest({
      database: {
        migrations: [{ id: "a", name: "b" }, { sql: "x" }, { name: "bad name!", sql: "x", sql_path: "y" }],
      },
      site: { files: [{ pth: "x" }, { path: 1 }] },
      secrets: { require: ["lower", "OK", "OK"] },
      functions: {
        replace: { "bad name": { source: 1 }, api: { source: { path: "a.js", data: "x" }, schedule: "* *" } },
      },
      routes: { replace: [{ pattern: "api", methods: [], target: { type: "functon", name: "api" } }] },
      subdomain: "My_App",
      subdomains: { set: ["a", "b"] },
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(
      result.issues.map((i) => `${i.pointer} ${i.message}${i.hint ? ` ${i.hint}` : ""}`),
    ).toMatchInlineSnapshot(`
      [
        "/subdomain Unknown key \`subdomain\`. Use \`subdomains: { "set": [name] }\`.",
        "/database/migrations/0 A migration has either an \`id\` or a \`name\`, not both.",
        "/database/migrations/0 A migration needs its SQL: \`sql\` (inline), \`sql_path\` (a file) or \`sql_ref\` (uploaded content).",
        "/database/migrations/1 A migration needs an \`id\` or a \`name\`.",
        "/database/migrations/2 Give the SQL once: one of \`sql\`, \`sql_path\`, \`sql_file\` or \`sql_ref\`.",
        "/database/migrations/2/name Use letters, digits, \`_\` and \`-\` (at most 64, starting with a letter or digit).",
        "/secrets/require/0 Secret names are UPPER_SNAKE_CASE: A-Z, 0-9 and \`_\`, not starting with a digit, at most 128 characters.",
        "/functions/replace/bad name Invalid key \`bad name\`. Function names use letters, digits, \`_\` and \`-\` (1 to 64 characters).",
        "/functions/replace/bad name/source Must be a string or an object (got the number 1).",
        "/functions/replace/api/source A file entry has one of \`path\`, \`data\` or \`sha256\`.",
        "/site/files/0/path Missing required key \`path\`.",
        "/site/files/0/pth Unknown key \`pth\`. Did you mean \`path\`?",
        "/site/files/1/path Must be a string (got the number 1).",
        "/subdomains/set Must have at most 1 item.",
        "/routes/replace/0/pattern A route pattern is a path starting with \`/\`, e.g. "/api/*".",
        "/routes/replace/0/methods Must have at least 1 item.",
        "/routes/replace/0/target/type Must be "function" (got "functon").",
        "/functions/replace/api/schedule The schedule "* *" has 2 fields; a schedule is a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. "0 3 * * *".",
      ]
    `);
  });

  test("error: the remaining kinds of problems", () => {
    const result = validateManifest({
      site: {
        files: [{ path: "", encoding: "base64" }],
        public_paths: { mode: "explicit", replace: { "/": {} } },
      },
      functions: {
        replace: { api: { source: { data: "x" }, config: { timeout_seconds: 1.5, memory_mb: 99999 } } },
        patch: {},
      },
      routes: {
        replace: [{ pattern: "/x", target: { type: "static", file: "x.html" }, acknowledge_readonly: false }],
      },
      project: { name: "x", adoptProjectId: "" },
    });
    const other = validateManifest({ site: {} });
    const dir = validateManifest({ site: { replace: { __sourc: "local-dir", path: "public" } } });
    const issues = [result, other, dir].flatMap((r) => (r.ok ? [] : r.issues));
    expect(
      issues.map((i) => `${i.pointer} ${i.message}${i.hint ? ` ${i.hint}` : ""}`),
    ).toMatchInlineSnapshot(`
      [
        "/project/adoptProjectId Must not be empty.",
        "/functions Use either \`functions.replace\` or \`functions.patch\`, not both.",
        "/functions/replace/api/config/timeout_seconds Must be an integer (got the number 1.5).",
        "/functions/replace/api/config/memory_mb Must be at most 10240 (got 99999).",
        "/site/files/0/path Must not be empty.",
        "/site/files/0/encoding \`encoding\` only makes sense together with \`data\`. Add \`data\` or remove \`encoding\`.",
        "/site/public_paths/replace/~1/asset Missing required key \`asset\`.",
        "/routes/replace/0 \`acknowledge_readonly\` applies only to GET/HEAD function routes whose pattern ends in \`/*\`.",
        "/routes/replace/0/acknowledge_readonly Must be true (got false).",
        "/functions/replace/api/config/memory_mb 99999 MB is above the cap of every tier (team, the largest): 512 MB. Run402 refuses it (tier limits: prototype 10 s / 128 MB, hobby 30 s / 256 MB, team 60 s / 512 MB). Lower it.",
        "/site A site needs its files (\`replace\`, \`patch\`, \`dir\` or \`files\`) or \`public_paths\`.",
        "/site/replace/__source Missing required key \`__source\`.",
        "/site/replace/__sourc Unknown key \`__sourc\`. Did you mean \`__source\`?",
      ]
    `);
  });

  test("error: checks beyond the schema (duplicates)", () => {
    const result = validateManifest({
      database: {
        migrations: [
          { id: "a", sql: "x" },
          { id: "a", sql: "y" },
        ],
      },
      site: { files: [{ path: "a.html" }, { path: "a.html", data: "" }] },
    });
    expect(result).toMatchObject({
      ok: false,
      issues: [
        {
          pointer: "/database/migrations/1/id",
          message: 'Duplicate migration id "a" (also at /database/migrations/0).',
        },
        { pointer: "/site/files/1/path", message: 'Duplicate site path "a.html" (also at /site/files/0).' },
      ],
    });
  });

  test("error: a manifest must be an object", () => {
    expect(validateManifest([])).toMatchInlineSnapshot(`
      {
        "issues": [
          {
            "message": "Must be an object (got a list).",
            "pointer": "",
          },
        ],
        "ok": false,
      }
    `);
  });
});

describe("assertManifest", () => {
  test("default: returns the manifest", () => {
    expect(assertManifest(quickstart)).toBe(quickstart);
  });

  test("error: throws ManifestValidationError with every pointer in metaMessages", () => {
    let error: unknown;
    try {
      assertManifest({ sitee: {}, tier: "gold" }, { file: "app.json" });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ManifestValidationError);
    const e = error as ManifestValidationError;
    expect(e.code).toBe("MANIFEST_INVALID");
    expect(e.issues).toHaveLength(2);
    expect(e.metaMessages).toEqual([
      "/sitee: Unknown key `sitee`. Did you mean `site`?",
      expect.stringMatching(/^\/tier: /),
    ]);
    expect(e.message).toMatchInlineSnapshot(`
      "app.json is not a valid manifest (2 problems).

      /sitee: Unknown key \`sitee\`. Did you mean \`site\`?
      /tier: Must be one of "prototype", "hobby", "team" (got "gold")."
    `);
  });
});

describe("didYouMean", () => {
  test("default", () => {
    expect(didYouMean("mgirations", ["migrations", "zero_downtime"])).toBe("migrations");
    expect(didYouMean("SITE", ["site"])).toBe("site");
    expect(didYouMean("xyz", ["site", "tier"])).toBeUndefined();
  });
});
