// Generates schema/app.types.ts from schema/app.schema.json: `npx tsx scripts/gen-schema-types.ts`.
// Covers the subset of JSON Schema the manifest uses: $ref to $defs, $ref into Run402's ReleaseSpec v1
// schema (rendered inline), type (single or list), const, enum, properties/required/additionalProperties,
// items, allOf/anyOf/oneOf of typed branches. Pure constraints (anyOf of `required`, not,
// dependentRequired, patterns, bounds) do not change the TypeScript shape.
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

type Node = { [key: string]: unknown };

/** The ReleaseSpec v1 schema shipped by @run402/release; app.schema.json points into it. */
const RELEASE_SCHEMA_ID = "https://run402.com/schemas/release-spec.v1.schema.json";
const releaseSchema = JSON.parse(
  readFileSync(
    new URL("../node_modules/@run402/release/schemas/release-spec.v1.schema.json", import.meta.url),
    "utf8",
  ),
) as Node;

/** The node a JSON pointer names in a document. */
function at(doc: Node, pointer: string): Node {
  let current: unknown = doc;
  for (const raw of pointer.split("/").slice(1)) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    current = (current as Record<string, unknown>)[key];
    if (current === undefined) throw new Error(`Unresolvable pointer ${pointer}`);
  }
  return node(current);
}

const HEADER = [
  "// Generated from schema/app.schema.json by scripts/gen-schema-types.ts. DO NOT MODIFY BY HAND.",
  "// Edit the schema, then run `npx tsx scripts/gen-schema-types.ts`.",
];

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function node(value: unknown): Node {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Node) : {};
}

function isTyped(n: Node): boolean {
  return ["$ref", "type", "const", "enum", "properties", "anyOf", "oneOf", "allOf"].some((k) => k in n);
}

function typesOf(n: Node): string[] {
  if (typeof n["type"] === "string") return [n["type"]];
  if (Array.isArray(n["type"])) return n["type"] as string[];
  return "properties" in n || "additionalProperties" in n ? ["object"] : [];
}

function jsdoc(n: Node, indent: string): string[] {
  const description = n["description"];
  return typeof description === "string" ? [`${indent}/** ${description.replaceAll("*/", "*\\/")} */`] : [];
}

/** The document a node belongs to: app.schema.json (named types) or the release schema (inlined). */
type Doc = "app" | "release";

function renderRef(ref: string, indent: string, doc: Doc): string {
  if (ref.startsWith(`${RELEASE_SCHEMA_ID}#`)) {
    return render(at(releaseSchema, ref.slice(RELEASE_SCHEMA_ID.length + 1)), indent, "release");
  }
  if (!ref.startsWith("#/")) throw new Error(`Unsupported $ref ${ref}`);
  if (doc === "release") return render(at(releaseSchema, ref.slice(1)), indent, "release");
  if (!ref.startsWith("#/$defs/")) throw new Error(`Unsupported $ref ${ref}`);
  return ref.slice("#/$defs/".length);
}

function render(n: Node, indent: string, doc: Doc = "app"): string {
  if (typeof n["$ref"] === "string") return renderRef(n["$ref"], indent, doc);
  const union = (n["anyOf"] ?? n["oneOf"]) as unknown[] | undefined;
  if (Array.isArray(union) && union.map(node).some(isTyped)) {
    return union.map((b) => render(node(b), indent, doc)).join(" | ");
  }
  // allOf of one typed branch plus constraints: the typed branch is the shape.
  const all = n["allOf"] as unknown[] | undefined;
  if (Array.isArray(all) && !("type" in n) && !("properties" in n)) {
    const typed = all.map(node).filter((b) => "$ref" in b || "type" in b);
    if (typed.length === 1) return render(typed[0] as Node, indent, doc);
  }
  if ("const" in n) return JSON.stringify(n["const"]);
  if (Array.isArray(n["enum"])) return n["enum"].map((v) => JSON.stringify(v)).join(" | ");
  const types = typesOf(n);
  if (types.length === 0) return "unknown";
  return types.map((t) => renderType(n, t, indent, doc)).join(" | ");
}

function renderType(n: Node, type: string, indent: string, doc: Doc = "app"): string {
  switch (type) {
    case "string":
      return "string";
    case "number":
    case "integer":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array": {
      const item = render(node(n["items"]), indent, doc);
      return item.includes(" ") ? `(${item})[]` : `${item}[]`;
    }
    case "object":
      return renderObject(n, indent, doc);
    default:
      throw new Error(`Unsupported type ${type}`);
  }
}

function renderObject(n: Node, indent: string, doc: Doc = "app"): string {
  const properties = node(n["properties"]);
  const required = new Set(Array.isArray(n["required"]) ? (n["required"] as string[]) : []);
  const extra = n["additionalProperties"];
  const inner = `${indent}  `;
  const lines: string[] = [];
  for (const [key, value] of Object.entries(properties)) {
    const name = IDENTIFIER.test(key) ? key : JSON.stringify(key);
    lines.push(...jsdoc(node(value), inner));
    if (value === false) continue;
    lines.push(`${inner}${name}${required.has(key) ? "" : "?"}: ${render(node(value), inner, doc)};`);
  }
  if (extra !== false && (lines.length === 0 || (extra && typeof extra === "object"))) {
    const value = extra && typeof extra === "object" ? render(node(extra), inner, doc) : "unknown";
    lines.push(`${inner}[key: string]: ${value};`);
  }
  if (lines.length === 0) return "Record<string, never>";
  return `{\n${lines.join("\n")}\n${indent}}`;
}

// A named type whose body is a union with an object literal in it is split in two (`X = string | XObject`),
// which keeps the output in the one layout the formatter leaves alone.
function emitNamed(name: string, n: Node, out: string[]): void {
  const types = typesOf(n);
  const needsSplit = !("$ref" in n) && types.length > 1 && types.includes("object");
  if (needsSplit) {
    const objectName = `${name}Object`;
    const members = types.map((t) => (t === "object" ? objectName : renderType(n, t, "")));
    out.push(...jsdoc(n, ""), `export type ${name} = ${members.join(" | ")};`, "");
    out.push(
      `/** The object form of {@link ${name}}. */`,
      `export type ${objectName} = ${renderObject(n, "")};`,
      "",
    );
    return;
  }
  out.push(...jsdoc(n, ""), `export type ${name} = ${render(n, "")};`, "");
}

/** Renders the TypeScript module for a schema (the root becomes its `title`, each `$defs` entry a type). */
export function generateTypes(schema: Node): string {
  const out: string[] = [...HEADER, ""];
  const title = typeof schema["title"] === "string" ? schema["title"] : "Root";
  emitNamed(title, schema, out);
  for (const [name, def] of Object.entries(node(schema["$defs"]))) emitNamed(name, node(def), out);
  return `${out.join("\n").trimEnd()}\n`;
}

const schemaUrl = new URL("../schema/app.schema.json", import.meta.url);
const typesUrl = new URL("../schema/app.types.ts", import.meta.url);

/** Reads schema/app.schema.json and returns what schema/app.types.ts should contain. */
export function generateAppTypes(): string {
  return generateTypes(JSON.parse(readFileSync(schemaUrl, "utf8")) as Node);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(typesUrl, generateAppTypes());
  console.log(`wrote ${fileURLToPath(typesUrl)}`);
}
