import { readFileSync } from "node:fs";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import type { AppManifest } from "./app.types.js";
import { type ManifestIssue, ManifestValidationError } from "./errors.js";

/** `$id` of schema/app.schema.json. */
export const APP_SCHEMA_ID = "https://pulumi-run402.dev/schemas/app.schema.json";

/** Result of {@link validateManifest}: the typed manifest, or every issue found. */
export type ValidateManifestResult =
  | { ok: true; manifest: AppManifest }
  | { ok: false; issues: ManifestIssue[] };

type SchemaNode = Record<string, unknown>;

let cachedSchema: SchemaNode | undefined;
let cachedAjv: { ajv: Ajv2020; root: ValidateFunction } | undefined;

/** The app.json JSON Schema (2020-12), parsed. */
export function appSchema(): SchemaNode {
  if (cachedSchema) return cachedSchema;
  // The JSON sits next to this file in the sources (vitest, tsx) and two levels up from dist/schema/ once
  // compiled; package.json ships it as schema/app.schema.json, so try both.
  const candidates = [
    new URL("./app.schema.json", import.meta.url),
    new URL("../../schema/app.schema.json", import.meta.url),
  ];
  for (const url of candidates) {
    let text: string;
    try {
      text = readFileSync(url, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    cachedSchema = JSON.parse(text) as SchemaNode;
    return cachedSchema;
  }
  throw new Error(`app.schema.json was not found (looked at ${candidates.map(String).join(", ")}).`);
}

// Compiling takes a few milliseconds and this module is never serialized by Pulumi, so a lazy module
// cache is fine here.
function compiled(): { ajv: Ajv2020; root: ValidateFunction } {
  if (cachedAjv) return cachedAjv;
  const ajv = new Ajv2020({
    allErrors: true,
    verbose: true,
    strict: true,
    strictRequired: false,
    allowUnionTypes: true,
  });
  // Annotation only: the human message used for pattern / anyOf / not failures of the node carrying it.
  ajv.addKeyword({ keyword: "x-message", schemaType: "string" });
  ajv.addSchema(appSchema());
  const root = ajv.getSchema(APP_SCHEMA_ID);
  if (!root) throw new Error("app.schema.json did not compile.");
  cachedAjv = { ajv, root };
  return cachedAjv;
}

/**
 * Checks a parsed app.json / app.yaml against the schema and reports every problem at once.
 * @example
 * import { validateManifest } from "pulumi-run402/schema";
 * const result = validateManifest(JSON.parse(text));
 * if (!result.ok) for (const issue of result.issues) console.error(issue.pointer, issue.message);
 */
export function validateManifest(value: unknown, options: { file?: string } = {}): ValidateManifestResult {
  void options.file; // Accepted for symmetry with assertManifest; issues carry pointers, not file names.
  const { root } = compiled();
  const schemaOk = root(value);
  const issues = dedupe([...(schemaOk ? [] : explain(root.errors ?? [], "")), ...semanticIssues(value)]);
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

// ── turning ajv errors into issues ──────────────────────────────────────────────────────────────────

const UNION_KEYWORDS = new Set(["anyOf", "oneOf"]);

function xMessage(node: unknown): string | undefined {
  if (node && typeof node === "object" && "x-message" in node) {
    const message = (node as SchemaNode)["x-message"];
    return typeof message === "string" ? message : undefined;
  }
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

function refName(branch: unknown): string | undefined {
  const ref = branch && typeof branch === "object" ? (branch as SchemaNode)["$ref"] : undefined;
  return typeof ref === "string" && ref.startsWith("#/$defs/") ? ref.slice("#/$defs/".length) : undefined;
}

function explainUnion(u: ErrorObject, prefix: string): ManifestIssue[] {
  const pointer = prefix + u.instancePath;
  const { ajv } = compiled();
  const branches = Array.isArray(u.schema) ? (u.schema as unknown[]) : [];
  const tried: { errors: ErrorObject[]; types: string[] }[] = [];
  for (const branch of branches) {
    const name = refName(branch);
    const validate = name ? ajv.getSchema(`${APP_SCHEMA_ID}#/$defs/${name}`) : undefined;
    if (!name || !validate) continue;
    const def = (appSchema()["$defs"] as Record<string, SchemaNode>)[name] ?? {};
    const types =
      typeof def["type"] === "string" ? [def["type"]] : Array.isArray(def["type"]) ? def["type"] : [];
    validate(u.data);
    tried.push({ errors: [...(validate.errors ?? [])], types: types as string[] });
  }
  const fitting = tried.filter((t) => !t.errors.some((e) => e.instancePath === "" && e.keyword === "type"));
  if (fitting.length === 0) {
    const types = [...new Set(tried.flatMap((t) => t.types))];
    return [{ pointer, message: `Must be ${describeTypes(types)} (got ${describeValue(u.data)}).` }];
  }
  const best = fitting.reduce((a, b) => (b.errors.length < a.errors.length ? b : a));
  return explain(best.errors, pointer);
}

function escapePointer(key: string): string {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

function code(key: string): string {
  return `\`${key}\``;
}

function toIssue(e: ErrorObject, prefix: string): ManifestIssue | undefined {
  const at = prefix + e.instancePath;
  const params = e.params as Record<string, unknown>;
  const custom = xMessage(e.parentSchema);
  switch (e.keyword) {
    case "additionalProperties": {
      const key = String(params["additionalProperty"]);
      const properties = (e.parentSchema as SchemaNode | undefined)?.["properties"];
      const allowed = properties && typeof properties === "object" ? Object.keys(properties) : [];
      const guess = didYouMean(key, allowed);
      return {
        pointer: `${at}/${escapePointer(key)}`,
        message: `Unknown key ${code(key)}.`,
        hint: guess
          ? `Did you mean ${code(guess)}?`
          : allowed.length
            ? `Allowed keys here: ${allowed.map(code).join(", ")}.`
            : "Remove it.",
      };
    }
    case "required": {
      const key = String(params["missingProperty"]);
      return { pointer: `${at}/${escapePointer(key)}`, message: `Missing required key ${code(key)}.` };
    }
    case "dependentRequired": {
      const key = String(params["property"]);
      const missing = String(params["missingProperty"]);
      return {
        pointer: `${at}/${escapePointer(key)}`,
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
          pointer: `${at}/${escapePointer(e.propertyName)}`,
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
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = candidate.toLowerCase() === lower ? 0 : levenshtein(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(Math.max(word.length, 3) / 3));
  return best !== undefined && bestDistance <= limit ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

// ── checks JSON Schema cannot express ───────────────────────────────────────────────────────────────

function record(value: unknown): Record<string, unknown> | undefined {
  return value && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function semanticIssues(value: unknown): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  const migrations = record(record(value)?.["database"])?.["migrations"];
  if (Array.isArray(migrations)) {
    const seen = new Map<string, number>();
    migrations.forEach((m, index) => {
      for (const key of ["id", "name"] as const) {
        const id = record(m)?.[key];
        if (typeof id !== "string") continue;
        const first = seen.get(`${key}:${id}`);
        if (first === undefined) seen.set(`${key}:${id}`, index);
        else
          issues.push({
            pointer: `/database/migrations/${index}/${key}`,
            message: `Duplicate migration ${key} ${JSON.stringify(id)} (also at /database/migrations/${first}).`,
          });
      }
    });
  }
  const files = record(record(value)?.["site"])?.["files"];
  if (Array.isArray(files)) {
    const seen = new Map<string, number>();
    files.forEach((f, index) => {
      const path = record(f)?.["path"];
      if (typeof path !== "string") return;
      const first = seen.get(path);
      if (first === undefined) seen.set(path, index);
      else
        issues.push({
          pointer: `/site/files/${index}/path`,
          message: `Duplicate site path ${JSON.stringify(path)} (also at /site/files/${first}).`,
        });
    });
  }
  return issues;
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
