/**
 * The bad-input corpus: manifests (and the files and folders around them) that must be refused with
 * exit 2, one JSON document, a pointer or the manifest's path, no stack trace, in bounded time and
 * memory, and without a single request to the API. Written here; every class of bad input a fuzzer
 * tries is covered (see README.md). Each case builds itself in a fresh folder.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";

/** The classes of bad input, as the README lists them. */
export type CaseClass =
  | "read"
  | "encoding"
  | "json"
  | "yaml"
  | "values"
  | "scale"
  | "paths"
  | "files"
  | "semantics"
  | "content";

/** What a refusal must say. */
export interface Expected {
  /** An error must carry this JSON pointer. */
  pointer?: string;
  /** No pointer: an error must name the manifest file (reading problems). */
  file?: true;
  /** The error code. @default "MANIFEST_INVALID" */
  code?: string;
  /** The message must match. */
  message?: RegExp;
  /** Exactly this many errors (each problem once per place). */
  count?: number;
}

export interface Case {
  name: string;
  class: CaseClass;
  /** Builds the case in `dir` (an empty folder of its own); returns the `--manifest` argument. */
  setup(dir: string): string | Promise<string>;
  expect: Expected;
}

/** A file tree: text or bytes per path; `{ link }` a symlink; `{ fifo }`, `{ socket }`, `{ sparse }` special files. */
type Tree = Record<
  string,
  string | Buffer | { link: string } | { fifo: true } | { socket: true } | { sparse: number } | { dir: true }
>;

const sockets: { close(): void }[] = [];

/** Closes the unix sockets the cases listen on. */
export function closeSockets(): void {
  for (const s of sockets.splice(0)) s.close();
}

async function build(dir: string, tree: Tree): Promise<void> {
  for (const [path, content] of Object.entries(tree)) {
    const at = join(dir, path);
    mkdirSync(dirname(at), { recursive: true });
    if (typeof content === "string" || Buffer.isBuffer(content)) writeFileSync(at, content);
    else if ("link" in content) symlinkSync(content.link, at);
    else if ("fifo" in content) execFileSync("mkfifo", [at]);
    else if ("dir" in content) mkdirSync(at, { recursive: true });
    else if ("sparse" in content) execFileSync("truncate", ["-s", String(content.sparse), at]);
    else {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(at, resolve));
      sockets.push(server);
    }
  }
}

/** A case whose manifest is `app.json` holding `manifest`, with `tree` beside it. */
function json(name: string, klass: CaseClass, manifest: unknown, expect: Expected, tree: Tree = {}): Case {
  return {
    name,
    class: klass,
    async setup(dir) {
      await build(dir, { ...tree, "app.json": JSON.stringify(manifest) });
      return join(dir, "app.json");
    },
    expect,
  };
}

/** A case whose manifest is the file `file` with exactly this text or these bytes. */
function raw(
  name: string,
  klass: CaseClass,
  file: string,
  content: string | Buffer,
  expect: Expected,
  tree: Tree = {},
): Case {
  return {
    name,
    class: klass,
    async setup(dir) {
      await build(dir, { ...tree, [file]: content });
      return join(dir, file);
    },
    expect,
  };
}

/** A case built from a tree; `manifest` is the `--manifest` argument relative to the folder. */
function tree(name: string, klass: CaseClass, files: Tree, manifest: string, expect: Expected): Case {
  return {
    name,
    class: klass,
    async setup(dir) {
      await build(dir, files);
      return join(dir, manifest);
    },
    expect,
  };
}

const site = { "site/index.html": "<h1>hi</h1>" };
const tier = "prototype";
const fn = (extra: Record<string, unknown>) => ({
  functions: { replace: { api: { source: "export default () => new Response('ok')", ...extra } } },
});
const cronFn = (cron: string) =>
  fn({ triggers: [{ id: "t", type: "schedule", cron, run: { event_type: "tick" } }] });
const staticRoute = (route: Record<string, unknown>) => ({
  site: { replace: { "a.html": "a" } },
  routes: { replace: [{ pattern: "/a", target: { type: "static", file: "a.html" }, ...route }] },
});
const fnRoute = (pattern: string, extra: Record<string, unknown> = {}) => ({
  ...fn({}),
  routes: { replace: [{ pattern, target: { type: "function", name: "api" }, ...extra }] },
});

const manyKeys = (n: number, prefix: string) => {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) out[`${prefix}${i}`] = i;
  return out;
};

export const cases: Case[] = [
  // ── read: the manifest itself is not a readable regular file ────────────────────────────────────
  tree("a directory where the manifest file should be", "read", { "app/app.json": { dir: true } }, "app", {
    file: true,
    code: "MANIFEST_UNREADABLE",
    message: /is a directory, not a regular file/,
  }),
  tree("the manifest is a FIFO (JSON)", "read", { "app.json": { fifo: true } }, "app.json", {
    file: true,
    code: "MANIFEST_UNREADABLE",
    message: /FIFO/,
  }),
  tree("the manifest is a FIFO (YAML)", "read", { "app.yaml": { fifo: true } }, "app.yaml", {
    file: true,
    code: "MANIFEST_UNREADABLE",
    message: /FIFO/,
  }),
  tree("a folder whose run402.json is a FIFO", "read", { "run402.json": { fifo: true } }, ".", {
    file: true,
    code: "MANIFEST_UNREADABLE",
    message: /FIFO/,
  }),
  tree("the manifest is a symlink to itself", "read", { "app.json": { link: "app.json" } }, "app.json", {
    file: true,
    code: "MANIFEST_UNREADABLE",
    message: /symlink loop/,
  }),
  tree(
    "the manifest is a symlink cycle of two",
    "read",
    { "app.json": { link: "b.json" }, "b.json": { link: "app.json" } },
    "app.json",
    {
      file: true,
      code: "MANIFEST_UNREADABLE",
      message: /symlink loop/,
    },
  ),
  tree(
    "the manifest is a character device (/dev/zero)",
    "read",
    { "app.json": { link: "/dev/zero" } },
    "app.json",
    {
      file: true,
      code: "MANIFEST_UNREADABLE",
      message: /character device/,
    },
  ),
  tree("the manifest is a unix socket", "read", { "app.json": { socket: true } }, "app.json", {
    file: true,
    code: "MANIFEST_UNREADABLE",
  }),
  tree(
    "the manifest is larger than 4 MiB (sparse)",
    "read",
    { "app.json": { sparse: 5 * 1024 * 1024 } },
    "app.json",
    {
      file: true,
      code: "MANIFEST_UNREADABLE",
      message: /more than the 4\.0 MiB/,
    },
  ),
  raw(
    "the manifest is 4 MiB and one byte of real JSON",
    "read",
    "app.json",
    `{"site":{"replace":{"a.html":"${"x".repeat(4 * 1024 * 1024)}"}}}`,
    {
      file: true,
      code: "MANIFEST_UNREADABLE",
    },
  ),
  tree("no manifest at the path", "read", {}, "missing.json", { file: true, code: "MANIFEST_NOT_FOUND" }),
  tree("a folder without a manifest", "read", { "readme.md": "hi" }, ".", {
    file: true,
    code: "MANIFEST_NOT_FOUND",
  }),
  raw("an unsupported extension", "read", "app.toml", 'tier = "prototype"', {
    pointer: "",
    message: /extension/,
  }),

  // ── encoding: strict UTF-8, Unicode text only ──────────────────────────────────────────────────────
  raw(
    "an invalid UTF-8 byte",
    "encoding",
    "app.json",
    Buffer.from([...Buffer.from('{"project":{"name":"'), 0xff, ...Buffer.from('"}}')]),
    {
      pointer: "",
      message: /Not UTF-8: the byte at offset 20/,
    },
  ),
  raw(
    "an overlong UTF-8 encoding of /",
    "encoding",
    "app.json",
    Buffer.from([...Buffer.from('{"site":{"dir":"'), 0xc0, 0xaf, ...Buffer.from('"}}')]),
    {
      pointer: "",
      message: /Not UTF-8/,
    },
  ),
  raw(
    "a surrogate encoded in UTF-8 (CESU)",
    "encoding",
    "app.json",
    Buffer.from([...Buffer.from('{"project":{"name":"'), 0xed, 0xa0, 0x80, ...Buffer.from('"}}')]),
    {
      pointer: "",
      message: /Not UTF-8/,
    },
  ),
  raw(
    "a UTF-8 sequence cut short at the end",
    "encoding",
    "app.yaml",
    Buffer.from([...Buffer.from("project:\n  name: a"), 0xe2, 0x82]),
    {
      pointer: "",
      message: /Not UTF-8/,
    },
  ),
  raw("Latin-1 text (YAML)", "encoding", "app.yaml", Buffer.from("project:\n  name: caf\xe9\n", "latin1"), {
    pointer: "",
    message: /Not UTF-8/,
  }),
  raw(
    "UTF-16 with a byte-order mark",
    "encoding",
    "app.json",
    Buffer.from(`\ufeff${JSON.stringify({ tier })}`, "utf16le"),
    {
      pointer: "",
      message: /Not UTF-8/,
    },
  ),
  raw("a lone high surrogate escape (JSON)", "encoding", "app.json", '{"project":{"name":"a\\ud800"}}', {
    pointer: "/project/name",
    message: /surrogate/,
  }),
  raw(
    "a lone low surrogate escape (JSON)",
    "encoding",
    "app.json",
    '{"site":{"replace":{"a\\udc00.html":"x"}}}',
    {
      pointer: "/site/replace",
      message: /surrogate/,
    },
  ),
  raw("a lone surrogate escape (YAML)", "encoding", "app.yaml", 'project:\n  name: "\\ud800"\n', {
    pointer: "/project/name",
    message: /lone surrogate/,
  }),
  raw(
    "a lone surrogate in a YAML key",
    "encoding",
    "app.yaml",
    'site:\n  replace:\n    "\\udfff.html": x\n',
    {
      pointer: "/site/replace/\udfff.html",
      message: /lone surrogate/,
    },
  ),

  // ── json: RFC 8259 and nothing more ─────────────────────────────────────────────────────────────────
  raw("an empty file", "json", "app.json", "", { pointer: "", message: /empty/ }),
  raw("whitespace only", "json", "app.json", " \n\t ", { pointer: "", message: /empty/ }),
  raw("a trailing comma", "json", "app.json", '{"tier":"prototype",}', {
    pointer: "",
    message: /line 1, column 21/,
  }),
  raw("a comment", "json", "app.json", '{\n  // the tier\n  "tier": "prototype"\n}', {
    pointer: "",
    message: /line 2, column 3/,
  }),
  raw("single quotes", "json", "app.json", "{'tier':'prototype'}", { pointer: "", message: /double quotes/ }),
  raw(
    "a NaN literal",
    "json",
    "app.json",
    '{"functions":{"replace":{"a":{"source":"x","config":{"timeout_seconds":NaN}}}}}',
    {
      pointer: "/functions/replace/a/config/timeout_seconds",
    },
  ),
  raw(
    "a number beyond a double",
    "json",
    "app.json",
    '{"functions":{"replace":{"a":{"source":"x","config":{"memory_mb":1e400}}}}}',
    {
      pointer: "/functions/replace/a/config/memory_mb",
      message: /too large/,
    },
  ),
  raw("a raw tab inside a string", "json", "app.json", '{"project":{"name":"a\tb"}}', {
    pointer: "/project/name",
    message: /U\+0009/,
  }),
  raw("text after the document", "json", "app.json", '{"tier":"prototype"} {"tier":"team"}', {
    pointer: "",
    message: /after the end/,
  }),
  raw("an unterminated string", "json", "app.json", '{"tier":"prototype', {
    pointer: "/tier",
    message: /Unterminated/,
  }),
  raw("a bad escape", "json", "app.json", '{"project":{"name":"\\x41"}}', {
    pointer: "/project/name",
    message: /Invalid escape/,
  }),
  raw("nesting 100,000 deep", "json", "app.json", `${"[".repeat(100_000)}${"]".repeat(100_000)}`, {
    message: /deeper than 64/,
  }),
  raw(
    "a duplicate top-level key",
    "json",
    "app.json",
    '{"tier":"prototype","site":{"dir":"a"},"tier":"team"}',
    {
      pointer: "/tier",
      message: /Duplicate key "tier" at line 1, column 40 \(first at line 1, column 2\)/,
      count: 1,
    },
  ),
  raw(
    "a duplicate site path",
    "json",
    "app.json",
    '{"site":{"replace":{"a.html":"1","b.html":"2","a.html":"3"}}}',
    {
      pointer: "/site/replace/a.html",
      message: /Duplicate key/,
    },
  ),
  raw(
    "two duplicate keys at two places",
    "json",
    "app.json",
    '{"project":{"name":"a","name":"b"},"site":{"replace":{"x.html":"1","x.html":"2"}}}',
    {
      count: 2,
    },
  ),
  raw(
    "a __proto__ key",
    "json",
    "app.json",
    '{"__proto__":{"tier":"team"},"site":{"replace":{"a.html":"a"}}}',
    {
      pointer: "/__proto__",
      message: /Unknown key/,
    },
  ),
  raw("a top-level list", "json", "app.json", '[{"tier":"prototype"}]', { pointer: "" }),

  // ── yaml: plain data only ───────────────────────────────────────────────────────────────────────────
  raw(
    "a !!js/function tag",
    "yaml",
    "app.yaml",
    'project:\n  name: !!js/function "function () { return 1 }"\n',
    {
      pointer: "/project/name",
      message: /YAML tag !!js\/function/,
    },
  ),
  raw("an !include tag", "yaml", "app.yaml", "site: !include site.yaml\n", {
    pointer: "/site",
    message: /YAML tag !include/,
  }),
  raw("a !!binary tag", "yaml", "app.yaml", "site:\n  replace:\n    a.bin: !!binary aGVsbG8=\n", {
    pointer: "/site/replace/a.bin",
    message: /!!binary/,
  }),
  raw("a !!set tag", "yaml", "app.yaml", "secrets:\n  require: !!set { A_KEY }\n", {
    pointer: "/secrets/require",
    message: /!!set/,
  }),
  raw(
    "a CloudFormation-style !Ref",
    "yaml",
    "app.yaml",
    "project:\n  adoptProjectId: !Ref ProjectId\n  name: x\n",
    {
      pointer: "/project/adoptProjectId",
      message: /!Ref/,
    },
  ),
  raw(
    "a tag on a key",
    "yaml",
    "app.yaml",
    "!!str tier: prototype\nsite:\n  replace:\n    ? !custom a.html\n    : x\n",
    {
      pointer: "/site/replace/a.html",
      message: /!custom/,
    },
  ),
  raw(
    "an alias bomb (billion laughs)",
    "yaml",
    "app.yaml",
    [
      "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
      ...Array.from({ length: 8 }, (_, i) => {
        const name = String.fromCharCode(98 + i);
        const prev = String.fromCharCode(97 + i);
        return `${name}: &${name} [${Array(9).fill(`*${prev}`).join(", ")}]`;
      }),
      "site: { replace: { a.html: x } }",
      "",
    ].join("\n"),
    { pointer: "", message: /alias/ },
  ),
  raw("an alias that contains itself", "yaml", "app.yaml", "site: &s\n  replace:\n    loop: *s\n", {
    pointer: "/site/replace/loop",
    message: /contains it/,
  }),
  raw("a duplicate key (YAML)", "yaml", "app.yaml", "tier: prototype\nsite:\n  dir: a\ntier: team\n", {
    pointer: "/tier",
    message: /Duplicate key at line 4/,
  }),
  raw(
    "a duplicate nested key (YAML)",
    "yaml",
    "app.yaml",
    "site:\n  replace:\n    a.html: one\n    a.html: two\n",
    {
      pointer: "/site/replace/a.html",
      message: /Duplicate key/,
    },
  ),
  raw("a number as a key", "yaml", "app.yaml", "site:\n  replace:\n    404: not found\n", {
    pointer: "/site/replace/404",
    message: /is a number, not a string/,
  }),
  raw("a boolean and a null key", "yaml", "app.yaml", "true: 1\n~: 2\n", { count: 2 }),
  raw("a list as a key", "yaml", "app.yaml", "? [a, b]\n: c\n", {
    pointer: "",
    message: /is a list; keys are strings/,
  }),
  raw("two documents", "yaml", "app.yaml", "tier: prototype\n---\ntier: team\n", {
    pointer: "",
    message: /multiple documents/,
  }),
  raw(
    "an infinite number",
    "yaml",
    "app.yaml",
    "functions:\n  replace:\n    a:\n      source: x\n      config: { timeout_seconds: .inf }\n",
    {
      pointer: "/functions/replace/a/config/timeout_seconds",
      message: /finite/,
    },
  ),
  raw(
    "not a number",
    "yaml",
    "app.yaml",
    "functions:\n  replace:\n    a:\n      source: x\n      config: { memory_mb: .nan }\n",
    {
      pointer: "/functions/replace/a/config/memory_mb",
      message: /finite/,
    },
  ),
  raw("nesting 100,000 deep (YAML)", "yaml", "app.yaml", `${"[".repeat(100_000)}${"]".repeat(100_000)}`, {
    pointer: "",
    message: /deeper/,
  }),
  raw(
    "nesting 50,000 deep (YAML; exhausts the YAML library)",
    "yaml",
    "app.yaml",
    `site: ${"[".repeat(50_000)}${"]".repeat(50_000)}\n`,
    { pointer: "", message: /line 1, column 71: lists and maps nested deeper than 64/ },
  ),
  raw("nesting 65 deep in flow style", "yaml", "app.yaml", `${"{a: ".repeat(65)}1${"}".repeat(65)}\n`, {
    pointer: "",
    message: /deeper than 64/,
  }),
  raw(
    "nesting 80 deep in block style",
    "yaml",
    "app.yaml",
    `${Array.from({ length: 80 }, (_, i) => `${"  ".repeat(i)}k${i}:`).join("\n")} 1\n`,
    {
      message: /deeper than 64/,
    },
  ),
  raw("a tab used for indentation", "yaml", "app.yaml", "site:\n\tdir: public\n", {
    pointer: "",
    message: /line 2/,
  }),
  raw("an unclosed flow map", "yaml", "app.yaml", "site: { dir: public\n", {
    pointer: "",
    message: /Not valid YAML/,
  }),

  // ── values: names, paths and ids hold no control characters; every problem once per place ─────────
  json(
    "a control character in the project name",
    "values",
    { project: { name: "shop\u0001" } },
    { pointer: "/project/name", message: /U\+0001/ },
  ),
  json(
    "a newline in a migration id",
    "values",
    { database: { migrations: [{ id: "001\ninit", sql: "select 1" }] } },
    {
      pointer: "/database/migrations/0/id",
      message: /U\+000A/,
    },
  ),
  json(
    "a NUL in a site path",
    "values",
    { site: { replace: { "a\u0000.html": "x" } } },
    { pointer: "/site/replace/a\u0000.html", message: /U\+0000/ },
  ),
  json(
    "DEL in a subdomain",
    "values",
    { subdomains: { set: ["shop\u007f"] } },
    { pointer: "/subdomains/set/0", message: /U\+007F/ },
  ),
  json("a C1 control (NEL) in a route pattern", "values", fnRoute("/api\u0085"), {
    pointer: "/routes/replace/0/pattern",
    message: /U\+0085/,
  }),
  json(
    "an escape character in a secret name",
    "values",
    { secrets: { require: ["KEY\u001b"] } },
    { pointer: "/secrets/require/0", message: /U\+001B/ },
  ),
  json(
    "a control character in site.dir",
    "values",
    { site: { dir: "pub\tlic" } },
    { pointer: "/site/dir", message: /U\+0009/ },
  ),
  json(
    "a NUL in sql_path",
    "values",
    { database: { migrations: [{ id: "1", sql_path: "db/a.sql\u0000.txt" }] } },
    {
      pointer: "/database/migrations/0/sql_path",
      message: /U\+0000/,
    },
  ),
  json(
    "a control character in a function name",
    "values",
    { functions: { replace: { "api\r": { source: "x" } } } },
    {
      pointer: "/functions/replace/api\r",
      message: /U\+000D/,
    },
  ),
  json(
    "a control character in an idempotency key",
    "values",
    { site: { replace: { "a.html": "a" } }, idempotency_key: "k\u0007" },
    {
      pointer: "/idempotency_key",
    },
  ),
  json("an unknown tier", "values", { tier: "gold" }, { pointer: "/tier", message: /prototype/ }),
  json(
    "Run402's app spec instead of a deploy manifest",
    "values",
    { spec_version: 1, app: { name: "x" }, release: {} },
    {
      pointer: "",
      message: /app spec/,
    },
  ),
  json(
    "one message at three pointers is three problems",
    "values",
    {
      functions: {
        replace: {
          a: { source: "x", confg: {} },
          b: { source: "x", confg: {} },
          c: { source: "x", confg: {} },
        },
      },
    },
    { pointer: "/functions/replace/c/confg", count: 3 },
  ),
  json(
    "the same unknown key in every migration",
    "values",
    { database: { migrations: [0, 1, 2, 3].map((i) => ({ id: `m${i}`, sql: "select 1", sqll: 1 })) } },
    {
      pointer: "/database/migrations/3/sqll",
      count: 4,
    },
  ),

  // ── scale: bounded time and memory, nothing dropped ──────────────────────────────────────────────────
  json(
    "100,000 unknown top-level keys",
    "scale",
    { ...manyKeys(100_000, "k"), site: { replace: { "a.html": "a" } } },
    {
      pointer: "/k99999",
      count: 100_000,
    },
  ),
  json(
    "20,000 unknown keys inside a function",
    "scale",
    { functions: { replace: { api: { source: "x", ...manyKeys(20_000, "opt") } } } },
    {
      pointer: "/functions/replace/api/opt19999",
      count: 20_000,
    },
  ),
  json(
    "10,000 site files with control characters in their paths",
    "scale",
    {
      site: {
        replace: Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`p${i}\u0001.html`, "x"])),
      },
    },
    {
      pointer: "/site/replace/p9999\u0001.html",
      count: 10_000,
    },
  ),

  // ── paths: relative, portable, inside the manifest's folder ─────────────────────────────────────────
  json(
    "site.dir absolute",
    "paths",
    { site: { dir: "/etc" } },
    { pointer: "/site/dir", message: /absolute path/ },
  ),
  json(
    "site.dir leaving with ..",
    "paths",
    { site: { dir: "../elsewhere" } },
    { pointer: "/site/dir", message: /leaves the manifest's folder/ },
  ),
  json(
    "site.dir a Windows drive path",
    "paths",
    { site: { dir: "C:\\Users\\me\\site" } },
    { pointer: "/site/dir", message: /absolute path/ },
  ),
  json(
    "site.dir a UNC path",
    "paths",
    { site: { dir: "\\\\server\\share\\site" } },
    { pointer: "/site/dir", message: /absolute path/ },
  ),
  json("site.dir with ~", "paths", { site: { dir: "~/site" } }, { pointer: "/site/dir", message: /"~"/ }),
  json(
    "a Windows separator in sql_path",
    "paths",
    { database: { migrations: [{ id: "1", sql_path: "db\\init.sql" }] } },
    {
      pointer: "/database/migrations/0/sql_path",
      message: /Windows separator/,
    },
  ),
  json(
    "sql_path absolute",
    "paths",
    { database: { migrations: [{ id: "1", sql_file: "/etc/passwd" }] } },
    {
      pointer: "/database/migrations/0/sql_file",
      message: /absolute/,
    },
  ),
  json(
    "a function source leaving the folder",
    "paths",
    { functions: { replace: { api: { source: { path: "fn/../../x.js" } } } } },
    {
      pointer: "/functions/replace/api/source/path",
      message: /leaves/,
    },
  ),
  json(
    "an asset source with ~",
    "paths",
    { assets: { put: [{ key: "a.png", source: { path: "~root/a.png" } }] } },
    {
      pointer: "/assets/put/0/source/path",
      message: /"~"/,
    },
  ),
  json(
    "a local-dir site outside the folder",
    "paths",
    { site: { replace: { __source: "local-dir", path: "/tmp" } } },
    {
      pointer: "/site/replace/path",
      message: /absolute/,
    },
  ),

  // ── files: what the paths name exists, is regular, stays inside, and is readable ───────────────────
  json(
    "a symlink in the site leaving the folder",
    "files",
    { site: { dir: "site" } },
    { pointer: "/site/dir", message: /resolves outside the manifest's folder \(to \/etc\)/ },
    {
      ...site,
      "site/etc": { link: "/etc" },
    },
  ),
  json(
    "site.dir itself a symlink to outside",
    "files",
    { site: { dir: "site" } },
    { pointer: "/site/dir", message: /resolves outside/ },
    { site: { link: "/usr/share" } },
  ),
  json(
    "a symlink loop in the site",
    "files",
    { site: { dir: "site" } },
    { pointer: "/site/dir", message: /symlink loop/ },
    { ...site, "site/loop": { link: "loop" } },
  ),
  json(
    "a symlink cycle back up the site",
    "files",
    { site: { dir: "site" } },
    { pointer: "/site/dir", message: /is a symlink loop/ },
    { ...site, "site/up": { link: ".." } },
  ),
  json(
    "a broken symlink in the site",
    "files",
    { site: { dir: "site" } },
    { pointer: "/site/dir", message: /broken symlink/ },
    { ...site, "site/gone.html": { link: "nowhere.html" } },
  ),
  json(
    "site.dir missing",
    "files",
    { site: { dir: "public" } },
    { pointer: "/site/dir", message: /does not exist/ },
  ),
  json(
    "site.dir a file",
    "files",
    { site: { dir: "public" } },
    { pointer: "/site/dir", message: /is a file, not a directory/ },
    { public: "x" },
  ),
  json(
    "site.dir an empty folder",
    "files",
    { site: { dir: "public" } },
    { pointer: "/site/dir", message: /contains no files/ },
    { public: { dir: true } },
  ),
  json(
    "site.dir holding only secrets and dot files",
    "files",
    { site: { dir: "public" } },
    {
      pointer: "/site/dir",
      message: /contains no files to upload \(left out: \.env, \.hidden, server\.pem\)/,
    },
    { "public/.env": "A=1", "public/.hidden": "h", "public/server.pem": "k" },
  ),
  json(
    "a FIFO in the site",
    "files",
    { site: { dir: "site" } },
    { pointer: "/site/dir", message: /"pipe" is a FIFO/ },
    { ...site, "site/pipe": { fifo: true } },
  ),
  json(
    "a unix socket in the site",
    "files",
    { site: { dir: "site" } },
    { pointer: "/site/dir", message: /"sock" is a socket/ },
    { ...site, "site/sock": { socket: true } },
  ),
  json(
    "a site file over 256 MiB (sparse)",
    "files",
    { site: { dir: "site" } },
    { pointer: "/site/dir", message: /"huge.bin" is 300 MiB, more than the 256 MiB/ },
    {
      ...site,
      "site/huge.bin": { sparse: 300 * 1024 * 1024 },
    },
  ),
  json(
    "sql_path missing",
    "files",
    { database: { migrations: [{ id: "1", sql_path: "db/init.sql" }] } },
    {
      pointer: "/database/migrations/0/sql_path",
      message: /does not exist/,
    },
  ),
  json(
    "sql_path a directory",
    "files",
    { database: { migrations: [{ id: "1", sql_path: "db" }] } },
    {
      pointer: "/database/migrations/0/sql_path",
      message: /is a directory, not a regular file/,
    },
    { "db/x.sql": "select 1" },
  ),
  json(
    "sql_path a FIFO",
    "files",
    { database: { migrations: [{ id: "1", sql_path: "init.sql" }] } },
    {
      pointer: "/database/migrations/0/sql_path",
      message: /FIFO/,
    },
    { "init.sql": { fifo: true } },
  ),
  json(
    "sql_path a symlink loop",
    "files",
    { database: { migrations: [{ id: "1", sql_path: "init.sql" }] } },
    {
      pointer: "/database/migrations/0/sql_path",
      message: /symlink loop/,
    },
    { "init.sql": { link: "init.sql" } },
  ),
  json(
    "sql_path a symlink leaving the folder",
    "files",
    { database: { migrations: [{ id: "1", sql_path: "init.sql" }] } },
    {
      pointer: "/database/migrations/0/sql_path",
      message: /resolves outside/,
    },
    { "init.sql": { link: "/etc/hostname" } },
  ),
  json(
    "a function source that is a FIFO",
    "files",
    { functions: { replace: { api: { source: { path: "api.js" } } } } },
    { pointer: "/functions/replace/api/source/path", message: /FIFO/ },
    { "api.js": { fifo: true } },
  ),
  json(
    "a function source linking to a device",
    "files",
    { functions: { replace: { api: { source: { path: "api.js" } } } } },
    {
      pointer: "/functions/replace/api/source/path",
      message: /resolves outside the manifest's folder \(to \/dev\/null\)/,
    },
    { "api.js": { link: "/dev/null" } },
  ),
  json(
    "a site.files source missing",
    "files",
    { site: { files: [{ path: "index.html", source: "dist/index.html" }] } },
    {
      pointer: "/site/files/0/source",
      message: /does not exist/,
    },
  ),
  json(
    "a local-dir site missing",
    "files",
    { site: { replace: { __source: "local-dir", path: "dist" } } },
    {
      pointer: "/site/replace/path",
      message: /does not exist/,
    },
  ),
  json(
    "a patch put local-dir that is a file",
    "files",
    { site: { patch: { put: { __source: "local-dir", path: "dist" } } } },
    {
      pointer: "/site/patch/put/path",
      message: /not a directory/,
    },
    { dist: "x" },
  ),

  // ── content: what is read is what Run402 would run ─────────────────────────────────────────────────
  json(
    "a checksum that does not match the SQL",
    "content",
    { database: { migrations: [{ id: "1", sql_path: "init.sql", checksum: "0".repeat(64) }] } },
    {
      pointer: "/database/migrations/0/checksum",
      message:
        /Does not match the SQL, whose sha256 is 354b7196c9ba5fb4b21cf615bb6ec4cd5c07503c34229feef033fc081a8c03f4/,
    },
    { "init.sql": "select 1;" },
  ),
  json(
    "a checksum that does not match inline SQL",
    "content",
    { database: { migrations: [{ id: "1", sql: "select 1;", checksum: "f".repeat(64) }] } },
    {
      pointer: "/database/migrations/0/checksum",
    },
  ),
  json(
    "invalid base64 in site.files",
    "content",
    { site: { files: [{ path: "a.bin", data: "not base64!", encoding: "base64" }] } },
    {
      pointer: "/site/files/0/data",
      message: /base64/,
    },
  ),
  json(
    "invalid base64 in a file map",
    "content",
    { site: { replace: { "a.bin": { data: "ab#c", encoding: "base64" } } } },
    {
      pointer: "/site/replace/a.bin/data",
      message: /base64/,
    },
  ),
  json(
    "non-UTF-8 SQL (Latin-1)",
    "content",
    { database: { migrations: [{ id: "1", sql_path: "init.sql" }] } },
    {
      pointer: "/database/migrations/0/sql_path",
      message: /not UTF-8/,
    },
    { "init.sql": Buffer.from("insert into t values ('caf\xe9');", "latin1") },
  ),
  json(
    "non-UTF-8 SQL through sql_file",
    "content",
    { database: { migrations: [{ name: "seed", sql_file: "seed.sql" }] } },
    {
      pointer: "/database/migrations/0/sql_file",
      message: /not UTF-8/,
    },
    { "seed.sql": Buffer.from([0x73, 0x65, 0x6c, 0xff, 0x3b]) },
  ),
  json(
    "a NUL byte in SQL from a file",
    "content",
    { database: { migrations: [{ id: "1", sql_path: "init.sql" }] } },
    {
      pointer: "/database/migrations/0/sql_path",
      message: /NUL/,
    },
    { "init.sql": Buffer.from("select 1;\u0000drop table t;") },
  ),
  json(
    "a NUL in inline SQL",
    "content",
    { database: { migrations: [{ id: "1", sql: "select 1;\u0000" }] } },
    {
      pointer: "/database/migrations/0/sql",
      message: /NUL/,
    },
  ),
  json(
    "a site path with a query string",
    "content",
    { site: { replace: { "a?b.html": "x" } } },
    { pointer: "/site/replace/a?b.html", message: /query strings/ },
  ),
  json(
    "a site path with a fragment",
    "content",
    { site: { files: [{ path: "a#b.html", data: "x" }] } },
    { pointer: "/site/files/0/path", message: /fragments/ },
  ),
  json(
    "a site path in Run402's internal namespace",
    "content",
    { site: { replace: { "_run402/x.html": "x" } } },
    {
      pointer: "/site/replace/_run402~1x.html",
      message: /internal Run402 namespace/,
    },
  ),
  json(
    "a site path with an encoded slash",
    "content",
    { site: { replace: { "a%2Fb.html": "x" } } },
    { pointer: "/site/replace/a%2Fb.html", message: /encoded slash/ },
  ),
  json(
    "a file in the site folder whose name has a query",
    "content",
    { site: { dir: "site" } },
    {
      pointer: "/site/dir",
      message: /"a\?b\.html" is refused by Run402/,
    },
    { ...site, "site/a?b.html": "x" },
  ),
  json(
    "include_dotfiles naming .env",
    "content",
    { site: { dir: "site", include_dotfiles: [".env"] } },
    {
      pointer: "/site/include_dotfiles/0",
      message: /never uploaded/,
    },
    site,
  ),
  json(
    "include_dotfiles naming a key inside .well-known",
    "content",
    { site: { dir: "site", include_dotfiles: [".well-known/id_rsa"] } },
    {
      pointer: "/site/include_dotfiles/0",
    },
    site,
  ),
  json(
    "include_dotfiles that is not a dot path",
    "content",
    { site: { dir: "site", include_dotfiles: ["public/"] } },
    {
      pointer: "/site/include_dotfiles/0",
    },
    site,
  ),

  // ── semantics: rules Run402 applies ────────────────────────────────────────────────────────────────
  json(
    "a blank migration id",
    "semantics",
    { database: { migrations: [{ id: "   ", sql: "select 1" }] } },
    { pointer: "/database/migrations/0/id", message: /blank/ },
  ),
  json(
    "an empty migration id",
    "semantics",
    { database: { migrations: [{ id: "", sql: "select 1" }] } },
    { pointer: "/database/migrations/0/id" },
  ),
  json(
    "a duplicate migration id",
    "semantics",
    {
      database: {
        migrations: [
          { id: "1", sql: "a" },
          { id: "1", sql: "b" },
        ],
      },
    },
    { pointer: "/database/migrations/1/id" },
  ),
  json(
    "project and project_id disagree",
    "semantics",
    { project: "prj_a", project_id: "prj_b", site: { replace: { "a.html": "a" } } },
    {
      pointer: "/project_id",
      message: /prj_b/,
    },
  ),
  json(
    "adoptProjectId and project_id disagree",
    "semantics",
    { project: { name: "x", adoptProjectId: "prj_a" }, project_id: "prj_b" },
    {
      pointer: "/project_id",
      message: /adoptProjectId/,
    },
  ),
  json("cron 61 * * * *", "semantics", cronFn("61 * * * *"), {
    pointer: "/functions/replace/api/triggers/0/cron",
    message: /minute: 61/,
  }),
  json("cron in English", "semantics", cronFn("every day at 3 am"), {
    pointer: "/functions/replace/api/triggers/0/cron",
    message: /not a valid cron/,
  }),
  json("cron with four fields", "semantics", cronFn("0 3 * *"), {
    pointer: "/functions/replace/api/triggers/0/cron",
    message: /4 fields/,
  }),
  json("cron with six fields (seconds)", "semantics", cronFn("0 0 3 * * *"), {
    pointer: "/functions/replace/api/triggers/0/cron",
    message: /6 fields/,
  }),
  json("cron with hour 24 (legacy schedule)", "semantics", fn({ schedule: "0 24 * * *" }), {
    pointer: "/functions/replace/api/schedule",
    message: /hour: 24/,
  }),
  json("cron with a reversed range", "semantics", cronFn("30-10 * * * *"), {
    pointer: "/functions/replace/api/triggers/0/cron",
  }),
  json(
    "cron every minute on prototype",
    "semantics",
    { tier, ...cronFn("* * * * *") },
    {
      pointer: "/functions/replace/api/triggers/0/cron",
      message: /every 1 minute; the prototype tier/,
    },
  ),
  json(
    "two scheduled functions on prototype",
    "semantics",
    {
      tier,
      functions: {
        replace: {
          a: { source: "x", schedule: "0 3 * * *" },
          b: {
            source: "x",
            triggers: [{ id: "t", type: "schedule", cron: "0 4 * * *", run: { event_type: "e" } }],
          },
        },
      },
    },
    { pointer: "/functions", message: /2 functions have schedules/ },
  ),
  json(
    "a secret named RUN402_SERVICE_KEY",
    "semantics",
    { secrets: { require: ["STRIPE_KEY", "RUN402_SERVICE_KEY"] } },
    {
      pointer: "/secrets/require/1",
      message: /set by Run402's function runtime/,
    },
  ),
  json(
    "a secret named RUN402_PROJECT_ID",
    "semantics",
    { secrets: { require: ["RUN402_PROJECT_ID"] } },
    { pointer: "/secrets/require/0" },
  ),
  json(
    "an empty site.replace",
    "semantics",
    { site: { replace: {} } },
    { pointer: "/site/replace", message: /Is empty/ },
  ),
  json(
    "an empty site.files",
    "semantics",
    { site: { files: [] } },
    { pointer: "/site/files", message: /Is empty/ },
  ),
  json(
    "a timeout above the prototype cap",
    "semantics",
    { tier: { name: "prototype" }, ...fn({ config: { timeout_seconds: 30 } }) },
    {
      pointer: "/functions/replace/api/config/timeout_seconds",
      message: /prototype tier's cap: 10 seconds/,
    },
  ),
  json(
    "memory above the hobby cap",
    "semantics",
    { tier: "hobby", ...fn({ config: { memoryMb: 512 } }) },
    {
      pointer: "/functions/replace/api/config/memoryMb",
      message: /hobby tier's cap: 256 MB/,
    },
  ),
  json("memory above every tier's cap", "semantics", fn({ config: { memory_mb: 1024 } }), {
    pointer: "/functions/replace/api/config/memory_mb",
    message: /every tier/,
  }),
  json("a static route with a wildcard", "semantics", staticRoute({ pattern: "/docs/*" }), {
    pointer: "/routes/replace/0",
  }),
  json("a static route answering POST", "semantics", staticRoute({ methods: ["POST"] }), {
    pointer: "/routes/replace/0",
  }),
  json(
    "a static route to a folder",
    "semantics",
    staticRoute({ target: { type: "static", file: "docs/" } }),
    { pointer: "/routes/replace/0/target/file" },
  ),
  json(
    "a static route with pricing",
    "semantics",
    staticRoute({ pricing: { mode: "always", amount_usd_micros: 1000, pay_to: "org_default_payout" } }),
    {
      pointer: "/routes/replace/0",
    },
  ),
  json("a wildcard in the middle of a route", "semantics", fnRoute("/a*b"), {
    pointer: "/routes/replace/0/pattern",
    message: /final \/\*/,
  }),
  json("a route of only /*", "semantics", fnRoute("/*"), {
    pointer: "/routes/replace/0/pattern",
    message: /path segment before/,
  }),
  json("a route with a query string", "semantics", fnRoute("/api?x=1"), {
    pointer: "/routes/replace/0/pattern",
    message: /query string/,
  }),
  json("a route with bad percent encoding", "semantics", fnRoute("/a%zz"), {
    pointer: "/routes/replace/0/pattern",
    message: /percent encoding/,
  }),
  json("a route pattern over 256 bytes", "semantics", fnRoute(`/${"a".repeat(300)}`), {
    pointer: "/routes/replace/0/pattern",
    message: /256-byte/,
  }),
  json(
    "the same route twice",
    "semantics",
    {
      ...fn({}),
      routes: {
        replace: [
          { pattern: "/api", methods: ["GET"], target: { type: "function", name: "api" } },
          { pattern: "/api", methods: ["GET", "POST"], target: { type: "function", name: "api" } },
        ],
      },
    },
    { pointer: "/routes/replace/1/methods", message: /duplicate route/ },
  ),
  json(
    "101 routes",
    "semantics",
    {
      ...fn({}),
      routes: {
        replace: Array.from({ length: 101 }, (_, i) => ({
          pattern: `/r${i}`,
          target: { type: "function", name: "api" },
        })),
      },
    },
    { pointer: "/routes", message: /100-entry limit/ },
  ),
];
