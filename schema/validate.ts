import { createRequire } from "node:module";
import { join } from "node:path";
import { materializeRoutes, parseReleaseSpec, ReleaseCoreError, type RouteSpec } from "@run402/release";
import type { Ajv2020, ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import appSchemaJson from "./app.schema.json" with { type: "json" };
import type { AppManifest } from "./app.types.js";
import { type ManifestIssue, ManifestValidationError } from "./errors.js";
import { pointerSegment, sha256Hex, toReleaseSpec } from "./release.js";
import { semanticIssues, valueIssues } from "./semantics.js";

/** `$id` of schema/app.schema.json. */
export const APP_SCHEMA_ID = "https://pulumi-run402.dev/schemas/app.schema.json";
/** `$id` of Run402's ReleaseSpec v1 schema (shipped by @run402/release), which app.schema.json points into. */
export const RELEASE_SCHEMA_ID = "https://run402.com/schemas/release-spec.v1.schema.json";

/** Result of {@link validateManifest}: the typed manifest, or every issue found. */
export type ValidateManifestResult =
  | { ok: true; manifest: AppManifest }
  | { ok: false; issues: ManifestIssue[] };

type SchemaNode = Record<string, unknown>;

let cachedRelease: SchemaNode | undefined;
let cachedAjv: { ajv: Ajv2020; root: ValidateFunction; where: WeakMap<object, string> } | undefined;

/** The app.json JSON Schema (2020-12), parsed. */
export function appSchema(): SchemaNode {
  return appSchemaJson as SchemaNode;
}

/** Run402's ReleaseSpec v1 JSON Schema, as @run402/release ships it. */
export function releaseSchema(): SchemaNode {
  if (cachedRelease) return cachedRelease;
  // The package exports only its code, so its schemas/ folder is found the way Node finds the package and
  // the file loaded as a JSON module (by path: an absolute path is not subject to the package's exports).
  const require = createRequire(import.meta.url);
  const folders = require.resolve.paths("@run402/release") ?? [];
  for (const folder of folders) {
    try {
      cachedRelease = require(
        join(folder, "@run402/release/schemas/release-spec.v1.schema.json"),
      ) as SchemaNode;
      return cachedRelease;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw error;
    }
  }
  throw new Error(
    `@run402/release's release-spec.v1.schema.json was not found (looked in ${folders.join(", ")}).`,
  );
}

/** Records where every schema node lives (`<schema id>#<pointer>`), so a union's branches can be compiled alone. */
function index(where: WeakMap<object, string>, value: unknown, location: string): void {
  if (!value || typeof value !== "object") return;
  if (!where.has(value)) where.set(value, location);
  for (const [key, child] of Object.entries(value)) index(where, child, `${location}/${pointerSegment(key)}`);
}

/**
 * An ajv instance holding both schemas, with the options validation uses (`source`: keep the generated
 * code, for the build's precompiled validator, schema/precompile.ts).
 */
export function schemaAjv(options: { source?: boolean } = {}): Ajv2020 {
  // Loaded on first use: a manifest the precompiled validator accepts never needs ajv itself.
  const { Ajv2020: Ajv } = createRequire(import.meta.url)(
    "ajv/dist/2020.js",
  ) as typeof import("ajv/dist/2020.js");
  const ajv = new Ajv({
    allErrors: true,
    verbose: true,
    strict: true,
    strictRequired: false,
    strictTypes: false,
    allowUnionTypes: true,
    // Every provider, program and CLI process compiles this once; ajv's code optimizer roughly doubles that
    // time and buys nothing measurable for a manifest-sized document.
    code: { optimize: false, ...(options.source ? { source: true } : {}) },
  });
  // Annotation only: the human message used for pattern / anyOf / not failures of the node carrying it.
  ajv.addKeyword({ keyword: "x-message", schemaType: "string" });
  ajv.addSchema(releaseSchema());
  ajv.addSchema(appSchema());
  return ajv;
}

// Compiling takes a few hundred milliseconds and this module is never serialized by Pulumi, so a lazy
// module cache is fine here.
function compiled(): { ajv: Ajv2020; root: ValidateFunction; where: WeakMap<object, string> } {
  if (cachedAjv) return cachedAjv;
  const ajv = schemaAjv();
  const root = ajv.getSchema(APP_SCHEMA_ID);
  if (!root) throw new Error("app.schema.json did not compile.");
  const where = new WeakMap<object, string>();
  index(where, appSchema(), `${APP_SCHEMA_ID}#`);
  index(where, releaseSchema(), `${RELEASE_SCHEMA_ID}#`);
  cachedAjv = { ajv, root, where };
  return cachedAjv;
}

/** sha256 of both schemas as parsed: names the schemas a precompiled validator was generated from. */
export function schemaDigest(): string {
  return sha256Hex(JSON.stringify([appSchema(), releaseSchema()]));
}

let cachedPrecompiled: ((value: unknown) => boolean) | null | undefined;

/**
 * The validator `npm run build` generated from these same schemas and options (dist/schema/
 * app.validator.cjs, see schema/precompile.ts), when it was generated from the schemas in use now;
 * else null. Loading it takes a fraction of compiling them.
 */
function precompiled(): ((value: unknown) => boolean) | null {
  if (cachedPrecompiled !== undefined) return cachedPrecompiled;
  cachedPrecompiled = null;
  try {
    const generated = createRequire(import.meta.url)("./app.validator.cjs") as {
      schemaDigest?: unknown;
      validate?: unknown;
    };
    if (generated.schemaDigest === schemaDigest() && typeof generated.validate === "function")
      cachedPrecompiled = generated.validate as (value: unknown) => boolean;
  } catch (error) {
    // Sources run as such (tests, tsx): nothing was generated.
    if ((error as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw error;
  }
  return cachedPrecompiled;
}

/**
 * Checks a parsed app.json / app.yaml and reports every problem at once: first against the schema
 * (pointer-precise, with "did you mean" hints), then, when that passes, the ReleaseSpec it maps to is
 * parsed by `@run402/release` (Run402's own validator), whose verdict is final.
 * @example
 * import { validateManifest } from "pulumi-run402/schema";
 * const result = validateManifest(JSON.parse(text));
 * if (!result.ok) for (const issue of result.issues) console.error(issue.pointer, issue.message);
 */
export function validateManifest(value: unknown, options: { file?: string } = {}): ValidateManifestResult {
  void options.file; // Accepted for symmetry with assertManifest; issues carry pointers, not file names.
  const appSpec = appSpecIssue(value);
  if (appSpec) return { ok: false, issues: [appSpec] };
  // What no schema can say about the data itself: depth, cycles, Unicode, control characters in names,
  // numbers beyond a double. Too deep or circular data is not handed to the schema at all.
  const values = valueIssues(value);
  if (values.structural) return { ok: false, issues: values.issues };
  // What the precompiled validator accepts needs no compiled schema; anything it refuses is checked
  // again by the compiled one, whose errors carry the schema locations the explanations need.
  let schemaErrors: ErrorObject[] = [];
  if (precompiled()?.(value) !== true) {
    const { root } = compiled();
    if (!root(value)) schemaErrors = root.errors ?? [];
  }
  const issues = dedupe([...values.issues, ...explain(schemaErrors, ""), ...semanticIssues(value)]);
  if (issues.length === 0) issues.push(...releaseIssues(value as AppManifest));
  if (issues.length === 0) return { ok: true, manifest: value as AppManifest };
  return { ok: false, issues };
}

/**
 * Like {@link validateManifest}, but throws a `ManifestValidationError` (code `MANIFEST_INVALID`) listing every issue.
 * @example
 * import { assertManifest } from "pulumi-run402/schema";
 * const manifest = assertManifest(JSON.parse(text), { file: "app.json" });
 */
export function assertManifest(value: unknown, options: { file?: string } = {}): AppManifest {
  const result = validateManifest(value, options);
  if (!result.ok) throw new ManifestValidationError({ issues: result.issues, file: options.file });
  return result.manifest;
}

/** Run402's other manifest, the `run402 up` app spec (`spec_version`, `app`, `release`, …), is not a deploy manifest. */
function appSpecIssue(value: unknown): ManifestIssue | undefined {
  const obj = record(value);
  if (!obj || !("spec_version" in obj || ("app" in obj && "release" in obj))) return undefined;
  return {
    pointer: "",
    message:
      "This is Run402's app spec (run402.json for `run402 up`: spec_version, app, release, …); pulumi-run402 reads Run402's deploy manifest.",
    hint: "Move the slices inside `release` (site, functions, database, …) to the top level, drop `spec_version`, `app`, `build`, `resources` and `lifecycle`, and keep `project` as a project id or `{ name }`.",
  };
}

// ── Run402's verdict ────────────────────────────────────────────────────────────────────────────────

/** Stand-in bytes for files on disk: validation reads nothing, so each path hashes to its own name. */
const PLACEHOLDER = {
  file: (path: string) => new Uint8Array(Buffer.from(`placeholder:${path}`)),
  dir: (path: string) => new Map([["index.html", new Uint8Array(Buffer.from(`placeholder:${path}`))]]),
};

function releaseIssues(manifest: AppManifest): ManifestIssue[] {
  const mapped = toReleaseSpec(manifest, {
    projectId: "prj_validate",
    source: PLACEHOLDER,
    placeholders: true,
    contentType: () => "application/octet-stream",
  });
  if (mapped.issues.length > 0) return mapped.issues;
  try {
    const spec = parseReleaseSpec(mapped.spec);
    // Run402 canonicalizes the route table when it materializes a release (pattern bytes, percent
    // encoding, final wildcards, duplicates after normalization, 100 entries): no base release is
    // needed for that, so it is checked here and not only at preview.
    if (spec.routes) materializeRoutes(spec.routes.replace as RouteSpec[]);
    return [];
  } catch (error) {
    if (!(error instanceof ReleaseCoreError)) throw error;
    return [releaseIssue(error, manifest)];
  }
}

/**
 * Turns a `@run402/release` error into an issue. Its `resource` names the ReleaseSpec field
 * (`functions.replace.api.triggers[0].cron`, `database.migrations.001_init.checksum`, `i18n.defaultLocale`);
 * the pointer walks the manifest with it, preferring the spelling the manifest used.
 */
export function releaseIssue(error: ReleaseCoreError, manifest: AppManifest): ManifestIssue {
  return {
    pointer: resourcePointer(error.resource, manifest),
    message: `${error.message.replace(/\.$/, "")}.`,
    hint: "Run402's release validator (@run402/release) refuses this.",
  };
}

const SNAKE: Record<string, string> = {
  defaultLocale: "default_locale",
  unknownLocalePolicy: "unknown_locale_policy",
  requireAuth: "require_auth",
  requireRole: "require_role",
  idColumn: "id_column",
  roleColumn: "role_column",
  timeoutSeconds: "timeout_seconds",
  memoryMb: "memory_mb",
};

function resourcePointer(resource: string, manifest: AppManifest): string {
  const parts = resource
    .replace(/\[(\d+)\]/g, ".$1")
    .split(".")
    .filter((p) => p !== "" && p !== "release");
  let node: unknown = manifest;
  let pointer = "";
  for (let i = 0; i < parts.length; i++) {
    let key = parts[i] as string;
    const obj = record(node);
    if (Array.isArray(node)) {
      const list = node as unknown[];
      // Migrations are named by id in Run402's resources; find the entry (or the name it compiles from).
      const byId = /^\d+$/.test(key)
        ? Number(key)
        : list.findIndex((m) => {
            const r = record(m);
            return r?.["id"] === key || (typeof r?.["name"] === "string" && key.startsWith(`${r["name"]}_`));
          });
      if (byId < 0 || byId >= list.length) break;
      pointer += `/${byId}`;
      node = list[byId];
      continue;
    }
    if (!obj) break;
    if (!(key in obj)) {
      const snake = SNAKE[key];
      if (snake && snake in obj) key = snake;
      else if (i === parts.length - 1) {
        // A missing field: point where it belongs, as "missing required key" issues do.
        if (snake && Object.keys(obj).some((k) => k.includes("_"))) key = snake;
        pointer += `/${pointerSegment(key)}`;
        break;
      } else {
        // Site paths and public paths contain dots: join the rest while it names an existing key.
        let joined = key;
        let j = i;
        while (!(joined in obj) && j + 1 < parts.length) joined += `.${parts[++j]}`;
        if (!(joined in obj)) break;
        key = joined;
        i = j;
      }
    }
    pointer += `/${pointerSegment(key)}`;
    node = obj[key];
  }
  return pointer;
}

// ── turning ajv errors into issues ──────────────────────────────────────────────────────────────────

const UNION_KEYWORDS = new Set(["anyOf", "oneOf"]);

/** Keys Run402's docs warn about, by the key that replaces them: [replacement, hint]. */
const KNOWN_MISTAKES: Record<string, [string, string]> = {
  subdomain: ["subdomains", 'Use `subdomains: { "set": [name] }`.'],
  default: ["default_locale", "Use `default_locale`."],
  locale: ["locales", "Use `locales` (a list)."],
  status: ["expect", "Use `expect: { status }` (or `expected_status`)."],
  function: ["name", 'Use `{ "type": "function", "name": … }`.'],
  static: ["file", 'Use `{ "type": "static", "file": … }`.'],
};

/** Our wording for Run402's schema nodes, which carry no `x-message` of their own. */
const RELEASE_MESSAGES: Record<string, string> = {
  "/$defs/secret_key":
    "Secret names are UPPER_SNAKE_CASE: A-Z, 0-9 and `_`, not starting with a digit, at most 128 characters.",
  "/$defs/function_name": "Function names use letters, digits, `_` and `-` (1 to 64 characters).",
  "/$defs/subdomain_name":
    "Subdomains are lowercase letters, digits and `-` (at most 63, not starting or ending with `-`).",
  "/$defs/route_spec/properties/pattern": 'A route pattern is a path starting with `/`, e.g. "/api/*".',
  "/$defs/sha256_hex": "A sha256 is 64 lowercase hex digits.",
  "/$defs/content_type": 'A content type is a MIME type such as "text/html; charset=utf-8".',
  "/$defs/i18n/properties/defaultLocale":
    'A locale tag is letters, digits, `.`, `_` and `-`, e.g. "en" or "pt-BR".',
  "/$defs/i18n/properties/locales/items":
    'A locale tag is letters, digits, `.`, `_` and `-`, e.g. "en" or "pt-BR".',
  "/$defs/i18n/properties/detect/items": 'A detect source is "accept-language" or "cookie:<name>".',
};

function xMessage(node: unknown): string | undefined {
  if (node && typeof node === "object" && "x-message" in node) {
    const message = (node as SchemaNode)["x-message"];
    return typeof message === "string" ? message : undefined;
  }
  const location = node && typeof node === "object" ? compiled().where.get(node) : undefined;
  if (location?.startsWith(`${RELEASE_SCHEMA_ID}#`))
    return RELEASE_MESSAGES[location.slice(RELEASE_SCHEMA_ID.length + 1)];
  return undefined;
}

function isUnder(path: string, parent: string): boolean {
  return path === parent || path.startsWith(`${parent}/`);
}

/**
 * Two kinds of unions appear in the schema. Constraint unions (`anyOf` of `required`, `not`) carry an
 * `x-message` and their branch errors are noise. Type unions (`anyOf` of `$ref`s, alone at their node)
 * are explained by re-validating the value against each branch and keeping the branch that fits best,
 * so `"tier": "hobbby"` says "must be one of …" instead of "must match a schema in anyOf".
 */
function explain(errors: ErrorObject[], prefix: string): ManifestIssue[] {
  const dropped = new Set<ErrorObject>();
  for (const e of errors) {
    if ((UNION_KEYWORDS.has(e.keyword) || e.keyword === "not") && xMessage(e.parentSchema)) {
      for (const sub of errors)
        if (
          sub !== e &&
          sub.instancePath === e.instancePath &&
          sub.schemaPath.startsWith(`${e.schemaPath}/`)
        ) {
          dropped.add(sub);
        }
    }
    // A conditional rule (`if`/`then`) with an x-message says it once, for whatever `then` found.
    if (e.keyword === "if" && xMessage(e.parentSchema)) {
      const then = `${e.schemaPath.replace(/\/if$/, "")}/then`;
      for (const sub of errors)
        if (sub !== e && isUnder(sub.instancePath, e.instancePath) && sub.schemaPath.startsWith(then)) {
          dropped.add(sub);
        }
    }
  }
  const unions = errors
    .filter((e) => UNION_KEYWORDS.has(e.keyword) && !dropped.has(e) && !xMessage(e.parentSchema))
    .sort((a, b) => a.instancePath.length - b.instancePath.length);
  const outer = new Set<ErrorObject>();
  for (const u of unions) {
    if (dropped.has(u)) continue;
    outer.add(u);
    for (const sub of errors) if (sub !== u && isUnder(sub.instancePath, u.instancePath)) dropped.add(sub);
  }
  const issues: ManifestIssue[] = [];
  for (const e of errors) {
    if (outer.has(e)) issues.push(...explainUnion(e, prefix));
    else if (!dropped.has(e)) {
      const issue = toIssue(e, prefix);
      if (issue) issues.push(issue);
    }
  }
  return issues;
}

/** The schema node a `$ref` names (within app.schema.json or the release schema). */
function resolveRef(ref: string, base: string): SchemaNode | undefined {
  const [doc, pointer = ""] = (ref.startsWith("#") ? `${base}${ref}` : ref).split("#");
  let current: unknown =
    doc === RELEASE_SCHEMA_ID ? releaseSchema() : doc === APP_SCHEMA_ID ? appSchema() : undefined;
  for (const raw of pointer.split("/").slice(1)) {
    current = record(current)?.[raw.replaceAll("~1", "/").replaceAll("~0", "~")];
  }
  return record(current);
}

/** The JSON types a branch admits, following `$ref`s. */
function branchTypes(branch: unknown, base: string): string[] {
  let node = record(branch);
  for (let hops = 0; node && typeof node["$ref"] === "string" && hops < 5; hops++) {
    node = resolveRef(node["$ref"], base);
  }
  const type = node?.["type"];
  if (typeof type === "string") return [type];
  if (Array.isArray(type)) return type as string[];
  return node && ("properties" in node || "additionalProperties" in node) ? ["object"] : [];
}

function explainUnion(u: ErrorObject, prefix: string): ManifestIssue[] {
  const pointer = prefix + u.instancePath;
  const { ajv, where } = compiled();
  const branches = Array.isArray(u.schema) ? (u.schema as unknown[]) : [];
  const location = u.parentSchema ? where.get(u.parentSchema) : undefined;
  const tried: { errors: ErrorObject[]; types: string[] }[] = [];
  if (location) {
    const base = location.slice(0, location.indexOf("#"));
    for (const [i, branch] of branches.entries()) {
      const validate = ajv.getSchema(`${location}/${u.keyword}/${i}`);
      if (!validate) continue;
      validate(u.data);
      tried.push({ errors: [...(validate.errors ?? [])], types: branchTypes(branch, base) });
    }
  }
  const fitting = tried.filter((t) => !t.errors.some((e) => e.instancePath === "" && e.keyword === "type"));
  if (fitting.length === 0) {
    const types = [...new Set(tried.flatMap((t) => t.types))];
    return [{ pointer, message: `Must be ${describeTypes(types)} (got ${describeValue(u.data)}).` }];
  }
  const best = fitting.reduce((a, b) => (b.errors.length < a.errors.length ? b : a));
  return explain(best.errors, pointer);
}

function code(key: string): string {
  return `\`${key}\``;
}

const allowedCache = new WeakMap<object, { allowed: string[]; hint: string }>();

/** The keys a schema node allows, and the hint that lists them (one per node: 100k unknown keys share it). */
function allowedKeys(schema: unknown): { allowed: string[]; hint: string } {
  const node = schema && typeof schema === "object" ? (schema as SchemaNode) : undefined;
  const cached = node && allowedCache.get(node);
  if (cached) return cached;
  const properties = node?.["properties"];
  const allowed = properties && typeof properties === "object" ? Object.keys(properties) : [];
  const result = {
    allowed,
    hint: allowed.length ? `Allowed keys here: ${allowed.map(code).join(", ")}.` : "Remove it.",
  };
  if (node) allowedCache.set(node, result);
  return result;
}

function toIssue(e: ErrorObject, prefix: string): ManifestIssue | undefined {
  const at = prefix + e.instancePath;
  const params = e.params as Record<string, unknown>;
  const custom = xMessage(e.parentSchema);
  switch (e.keyword) {
    case "additionalProperties": {
      const key = String(params["additionalProperty"]);
      const { allowed, hint } = allowedKeys(e.parentSchema);
      const guess = didYouMean(key, allowed);
      const known = KNOWN_MISTAKES[key];
      return {
        pointer: `${at}/${pointerSegment(key)}`,
        message: `Unknown key ${code(key)}.`,
        hint: known && allowed.includes(known[0]) ? known[1] : guess ? `Did you mean ${code(guess)}?` : hint,
      };
    }
    case "required": {
      const key = String(params["missingProperty"]);
      return { pointer: `${at}/${pointerSegment(key)}`, message: `Missing required key ${code(key)}.` };
    }
    case "dependentRequired": {
      const key = String(params["property"]);
      const missing = String(params["missingProperty"]);
      return {
        pointer: `${at}/${pointerSegment(key)}`,
        message: `${code(key)} only makes sense together with ${code(missing)}.`,
        hint: `Add ${code(missing)} or remove ${code(key)}.`,
      };
    }
    case "type": {
      const types = String(params["type"]).split(",");
      return { pointer: at, message: `Must be ${describeTypes(types)} (got ${describeValue(e.data)}).` };
    }
    case "enum": {
      const allowed = (params["allowedValues"] as unknown[]) ?? [];
      const guess =
        typeof e.data === "string"
          ? didYouMean(
              e.data,
              allowed.filter((v): v is string => typeof v === "string"),
            )
          : undefined;
      const issue: ManifestIssue = {
        pointer: at,
        message: `Must be one of ${allowed.map((v) => JSON.stringify(v)).join(", ")} (got ${JSON.stringify(e.data)}).`,
      };
      if (guess) issue.hint = `Did you mean ${JSON.stringify(guess)}?`;
      return issue;
    }
    case "const":
      return {
        pointer: at,
        message: `Must be ${JSON.stringify(params["allowedValue"])} (got ${JSON.stringify(e.data)}).`,
      };
    case "propertyNames":
      // Its sub-errors (carrying `propertyName`) say which key and why.
      return undefined;
    case "pattern":
    case "minLength":
    case "maxLength":
      if (e.propertyName !== undefined) {
        return {
          pointer: `${at}/${pointerSegment(e.propertyName)}`,
          message: `Invalid key ${code(e.propertyName)}. ${custom ?? lengthOrPattern(e)}`,
        };
      }
      return {
        pointer: at,
        message: e.keyword === "pattern" ? (custom ?? lengthOrPattern(e)) : lengthOrPattern(e),
      };
    case "minimum":
    case "maximum":
    case "exclusiveMinimum":
    case "exclusiveMaximum": {
      const word = e.keyword.endsWith("inimum") ? "at least" : "at most";
      const strict = e.keyword.startsWith("exclusive") ? "more than" : word;
      return {
        pointer: at,
        message: `Must be ${strict} ${String(params["limit"])} (got ${JSON.stringify(e.data)}).`,
      };
    }
    case "minItems":
    case "maxItems": {
      const limit = Number(params["limit"]);
      const word = e.keyword === "minItems" ? "at least" : "at most";
      return { pointer: at, message: `Must have ${word} ${limit} item${limit === 1 ? "" : "s"}.` };
    }
    case "uniqueItems":
      return {
        pointer: `${at}/${String(params["i"])}`,
        message: `Duplicate of item ${String(params["j"])}; each item must be unique.`,
      };
    case "anyOf":
    case "oneOf":
    case "not":
    case "if":
      return { pointer: at, message: custom ?? capitalize(e.message ?? "is invalid") };
    default:
      return { pointer: at, message: `${capitalize(e.message ?? "is invalid")}.` };
  }
}

function lengthOrPattern(e: ErrorObject): string {
  const limit = Number((e.params as Record<string, unknown>)["limit"]);
  if (e.keyword === "minLength")
    return limit === 1 ? "Must not be empty." : `Must be at least ${limit} characters.`;
  if (e.keyword === "maxLength") return `Must be at most ${limit} characters.`;
  return `Must match the pattern ${String((e.params as Record<string, unknown>)["pattern"])}.`;
}

const TYPE_WORDS: Record<string, string> = {
  string: "a string",
  number: "a number",
  integer: "an integer",
  boolean: "true or false",
  object: "an object",
  array: "a list",
  null: "null",
};

function describeTypes(types: string[]): string {
  const words = types.map((t) => TYPE_WORDS[t] ?? t);
  if (words.length <= 1) return words[0] ?? "something else";
  return `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  if (typeof value === "string")
    return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === "number") return `the number ${value}`;
  return String(value);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ── did you mean ─────────────────────────────────────────────────────────────────────────────────────

/** Closest candidate within an edit distance of about a third of the word, or undefined. */
const lowered = new WeakMap<readonly string[], string[]>();

export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const limit = Math.max(1, Math.floor(Math.max(word.length, 3) / 3));
  let others = lowered.get(candidates);
  if (!others) {
    others = candidates.map((c) => c.toLowerCase());
    lowered.set(candidates, others);
  }
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const [index, candidate] of candidates.entries()) {
    const other = others[index] as string;
    const d = other === lower ? 0 : levenshtein(lower, other, bestDistance - 1);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Edit distance of `a` and `b`, or `max + 1` as soon as it is known to exceed `max`. */
function levenshtein(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let previous = new Int32Array(b.length + 1).map((_, j) => j);
  let current = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      const value = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
      current[j] = value;
      if (value < rowMin) rowMin = value;
    }
    if (rowMin > max) return max + 1;
    [previous, current] = [current, previous];
  }
  return previous[b.length] as number;
}

// ── checks JSON Schema cannot express ───────────────────────────────────────────────────────────────

function record(value: unknown): Record<string, unknown> | undefined {
  return value && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function dedupe(issues: ManifestIssue[]): ManifestIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => {
    const key = `${issue.pointer}\u0000${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
