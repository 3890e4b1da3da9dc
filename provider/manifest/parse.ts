/**
 * Manifest text → a JSON value, strictly. JSON: RFC 8259 and nothing more (no duplicate keys, no lone
 * surrogates, no numbers beyond a double, nesting bounded). YAML 1.2 (core schema): the JSON subset
 * of YAML's meanings only: no tags (`!!js/function`, `!include`, `!!binary` …), string keys, no
 * duplicate keys, no recursive aliases, a bounded number of alias expansions. Every refusal is an
 * issue with a JSON pointer (where one exists) and the line and column.
 */
import {
  CST,
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  Lexer,
  type Node,
  parseDocument,
} from "yaml";
import type { ManifestIssue } from "../../schema/errors.js";
import { pointerSegment } from "../../schema/release.js";
import { READ_LIMITS } from "./read.js";

/** A parse: the value, or the issues that prevent one. */
export type ParseResult = { ok: true; value: unknown } | { ok: false; issues: ManifestIssue[] };

/** `line L, column C` (1-based) of a UTF-16 offset in `text`. */
export function lineColumn(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) {
    line += 1;
    start = i + 1;
  }
  return `line ${line}, column ${offset - start + 1}`;
}

function pointerOf(path: readonly string[]): string {
  return path.map((s) => `/${pointerSegment(s)}`).join("");
}

class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
    readonly pointer: string,
  ) {
    super(message);
  }
}

const MAX_DEPTH = READ_LIMITS.depth;

/** JSON's one-character escapes. */
const ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** A strict RFC 8259 parser that knows where it is (pointer and offset) and refuses duplicate keys. */
class JsonParser {
  private i = 0;
  private readonly path: string[] = [];
  readonly issues: ManifestIssue[] = [];
  constructor(private readonly text: string) {}

  parse(): unknown {
    this.ws();
    if (this.i >= this.text.length) throw this.error("The file is empty; a manifest is a JSON object");
    const value = this.value(0);
    this.ws();
    if (this.i < this.text.length) throw this.error("Unexpected text after the end of the document");
    return value;
  }

  private error(message: string, at = this.i): JsonSyntaxError {
    return new JsonSyntaxError(message, at, pointerOf(this.path));
  }

  private ws(): void {
    const t = this.text;
    while (this.i < t.length) {
      const c = t.charCodeAt(this.i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i += 1;
      else break;
    }
  }

  private describe(at: number): string {
    if (at >= this.text.length) return "the end of the file";
    const c = this.text.codePointAt(at) as number;
    return c < 0x20 || c === 0x7f
      ? `the control character U+${c.toString(16).toUpperCase().padStart(4, "0")}`
      : `\`${String.fromCodePoint(c)}\``;
  }

  private value(depth: number): unknown {
    const t = this.text;
    const c = t[this.i];
    if (c === "{" || c === "[") {
      if (depth >= MAX_DEPTH)
        throw this.error(`Nested deeper than ${MAX_DEPTH} levels; a manifest is never that deep`);
      return c === "{" ? this.object(depth + 1) : this.array(depth + 1);
    }
    if (c === '"') return this.string();
    if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
    for (const [word, result] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ] as const) {
      if (t.startsWith(word, this.i)) {
        this.i += word.length;
        return result;
      }
    }
    throw this.error(`Expected a value, found ${this.describe(this.i)}`);
  }

  private object(depth: number): Record<string, unknown> {
    this.i += 1;
    const out: Record<string, unknown> = {};
    const seen = new Map<string, number>();
    this.ws();
    if (this.text[this.i] === "}") {
      this.i += 1;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.text[this.i] !== '"')
        throw this.error(`Expected a key in double quotes, found ${this.describe(this.i)}`);
      const keyAt = this.i;
      const key = this.string();
      this.ws();
      if (this.text[this.i] !== ":")
        throw this.error(`Expected \`:\` after the key, found ${this.describe(this.i)}`);
      this.i += 1;
      this.ws();
      this.path.push(key);
      const first = seen.get(key);
      if (first !== undefined) {
        this.issues.push({
          pointer: pointerOf(this.path),
          message: `Duplicate key ${JSON.stringify(key)} at ${lineColumn(this.text, keyAt)} (first at ${lineColumn(this.text, first)}); JSON parsers disagree on which one wins.`,
          hint: "Keep one of them.",
        });
      } else seen.set(key, keyAt);
      const value = this.value(depth);
      this.path.pop();
      // `__proto__` is an ordinary key in JSON: define it, never set the prototype.
      if (key === "__proto__")
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else if (first === undefined) out[key] = value;
      this.ws();
      const next = this.text[this.i];
      if (next === ",") {
        this.i += 1;
        continue;
      }
      if (next === "}") {
        this.i += 1;
        return out;
      }
      throw this.error(`Expected \`,\` or \`}\`, found ${this.describe(this.i)}`);
    }
  }

  private array(depth: number): unknown[] {
    this.i += 1;
    const out: unknown[] = [];
    this.ws();
    if (this.text[this.i] === "]") {
      this.i += 1;
      return out;
    }
    for (;;) {
      this.ws();
      this.path.push(String(out.length));
      out.push(this.value(depth));
      this.path.pop();
      this.ws();
      const next = this.text[this.i];
      if (next === ",") {
        this.i += 1;
        continue;
      }
      if (next === "]") {
        this.i += 1;
        return out;
      }
      throw this.error(`Expected \`,\` or \`]\`, found ${this.describe(this.i)}`);
    }
  }

  private string(): string {
    const t = this.text;
    const start = this.i;
    this.i += 1;
    let out = "";
    let run = this.i;
    for (;;) {
      if (this.i >= t.length) throw this.error("Unterminated string", start);
      const c = t.charCodeAt(this.i);
      if (c === 0x22) {
        out += t.slice(run, this.i);
        this.i += 1;
        return out;
      }
      if (c < 0x20) throw this.error(`Raw ${this.describe(this.i)} inside a string; escape it`);
      if (c !== 0x5c) {
        this.i += 1;
        continue;
      }
      out += t.slice(run, this.i);
      const escaped = t[this.i + 1];
      if (escaped !== undefined && Object.hasOwn(ESCAPES, escaped)) {
        out += ESCAPES[escaped];
        this.i += 2;
      } else if (escaped === "u") {
        const unit = this.hex4(this.i + 2);
        this.i += 6;
        if (unit >= 0xd800 && unit <= 0xdbff) {
          const low = t[this.i] === "\\" && t[this.i + 1] === "u" ? this.hex4(this.i + 2) : -1;
          if (low < 0xdc00 || low > 0xdfff)
            throw this.error(
              `\\u${unit.toString(16)} is half of a surrogate pair without its other half; a manifest is Unicode text`,
              this.i - 6,
            );
          out += String.fromCharCode(unit, low);
          this.i += 6;
        } else if (unit >= 0xdc00 && unit <= 0xdfff) {
          throw this.error(
            `\\u${unit.toString(16)} is half of a surrogate pair without its other half; a manifest is Unicode text`,
            this.i - 6,
          );
        } else out += String.fromCharCode(unit);
      } else throw this.error(`Invalid escape \`\\${escaped ?? ""}\``);
      run = this.i;
    }
  }

  private hex4(at: number): number {
    const hex = this.text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(hex))
      throw this.error("Invalid \\u escape: four hex digits expected", at - 2);
    return Number.parseInt(hex, 16);
  }

  private number(): number {
    const match = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    match.lastIndex = this.i;
    const m = match.exec(this.text);
    if (!m) throw this.error(`Invalid number at ${this.describe(this.i)}`);
    const value = Number(m[0]);
    if (!Number.isFinite(value)) throw this.error(`The number ${m[0]} is too large`);
    this.i += m[0].length;
    return value;
  }
}

/** Parses JSON text strictly; issues carry the pointer and line and column. */
export function parseJson(text: string): ParseResult {
  const parser = new JsonParser(text);
  try {
    const value = parser.parse();
    return parser.issues.length > 0 ? { ok: false, issues: parser.issues } : { ok: true, value };
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    return {
      ok: false,
      issues: [
        ...parser.issues,
        {
          pointer: error.pointer,
          message: `Not valid JSON at ${lineColumn(text, error.offset)}: ${error.message}.`,
        },
      ],
    };
  }
}

/** The tags whose meaning is plain JSON (YAML 1.2 core schema); any other tag is refused. */
const PLAIN_TAGS = new Set(
  ["str", "int", "float", "bool", "null", "map", "seq"].map((t) => `tag:yaml.org,2002:${t}`),
);

/** Where a YAML node lives, and checks no JSON Schema can express on the parsed value. */
function checkYamlNodes(doc: Document, text: string): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  const at = (node: { range?: readonly number[] | null } | null | undefined) =>
    node?.range ? ` (${lineColumn(text, node.range[0] as number)})` : "";
  const visit = (node: unknown, path: string[], ancestors: Node[]): void => {
    if (!node || typeof node !== "object") return;
    const n = node as Node;
    if (path.length > MAX_DEPTH) {
      issues.push({
        pointer: pointerOf(path),
        message: `Nested deeper than ${MAX_DEPTH} levels${at(n)}; a manifest is never that deep.`,
      });
      return;
    }
    if (isAlias(n)) {
      const target = n.resolve(doc);
      if (target && ancestors.includes(target as Node))
        issues.push({
          pointer: pointerOf(path),
          message: `The alias *${n.source} refers to a node that contains it${at(n)}: the value would be infinite.`,
        });
      return;
    }
    const tag = (n as { tag?: string }).tag;
    if (tag !== undefined && !PLAIN_TAGS.has(tag)) {
      issues.push({
        pointer: pointerOf(path),
        message: `YAML tag ${tag.replace(/^tag:yaml\.org,2002:/, "!!")}${at(n)} is not allowed: a manifest is plain data (strings, numbers, booleans, null, maps, lists).`,
        hint: 'Remove the tag; include files with `sql_path`, `source`, `dir` or `{ "path": … }` instead.',
      });
    }
    const inside = [...ancestors, n];
    if (isMap(n)) {
      for (const pair of n.items) {
        if (!isPair(pair)) continue;
        const key = pair.key;
        let name: string;
        if (isScalar(key) && typeof key.value === "string") name = key.value;
        else if (
          isScalar(key) &&
          (key.value === null || ["number", "boolean", "bigint"].includes(typeof key.value))
        ) {
          name = String(key.value ?? "");
          issues.push({
            pointer: pointerOf([...path, name]),
            message: `The key ${JSON.stringify(key.source ?? name)}${at(key)} is a ${key.value === null ? "null" : typeof key.value}, not a string.`,
            hint: `Quote it: "${key.source ?? name}".`,
          });
        } else {
          issues.push({
            pointer: pointerOf(path),
            message: `A key${at(key as Node)} is a ${isMap(key) ? "map" : isSeq(key) ? "list" : "non-string value"}; keys are strings.`,
          });
          continue;
        }
        if (isScalar(key) && key.tag !== undefined && !PLAIN_TAGS.has(key.tag))
          visit(key, [...path, name], inside);
        visit(pair.value, [...path, name], inside);
      }
    } else if (isSeq(n)) {
      n.items.forEach((item, index) => {
        visit(item, [...path, String(index)], inside);
      });
    }
  };
  visit(doc.contents, [], []);
  return issues;
}

/** The JSON pointer of the node at a source offset (for parser errors such as duplicate keys). */
function pointerAtOffset(doc: Document, offset: number): string {
  const path: string[] = [];
  let node: unknown = doc.contents;
  for (let depth = 0; depth <= MAX_DEPTH && node; depth++) {
    if (isMap(node)) {
      const pair = node.items.find((p) => {
        const key = p.key as Node | null;
        const value = p.value as Node | null;
        const start = key?.range?.[0] ?? value?.range?.[0];
        const end = value?.range?.[2] ?? key?.range?.[2];
        return start !== undefined && end !== undefined && offset >= start && offset < end;
      });
      if (!pair) break;
      path.push(isScalar(pair.key) ? String(pair.key.value) : "");
      const key = pair.key as Node | null;
      if (key?.range && offset < (key.range[2] as number)) break;
      node = pair.value;
    } else if (isSeq(node)) {
      const index = node.items.findIndex((item) => {
        const range = (item as Node | null)?.range;
        return range !== undefined && range !== null && offset >= range[0] && offset < range[2];
      });
      if (index < 0) break;
      path.push(String(index));
      node = node.items[index];
    } else break;
  }
  return pointerOf(path);
}

/**
 * The offset where flow collections (`[ ]`, `{ }`) nest deeper than {@link MAX_DEPTH}, or -1. The
 * YAML composer recurses per level and, tens of thousands of levels deep, exhausts the process (a
 * fatal out-of-memory, not an exception): the lexer, which is linear, finds such text first.
 */
function flowTooDeep(text: string): number {
  let depth = 0;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type === "flow-seq-start" || type === "flow-map-start") {
      depth += 1;
      if (depth > MAX_DEPTH) return offset;
    } else if (type === "flow-seq-end" || type === "flow-map-end") depth = Math.max(0, depth - 1);
    // Mode markers are one control character the source does not hold.
    if (
      !(
        token.length === 1 &&
        token.charCodeAt(0) < 0x20 &&
        token !== "\n" &&
        token !== "\t" &&
        token !== "\r"
      )
    )
      offset += token.length;
  }
  return -1;
}

/** Parses YAML 1.2 text into plain JSON data; issues carry the pointer and line and column. */
export function parseYaml(text: string): ParseResult {
  const deep = flowTooDeep(text);
  if (deep >= 0)
    return {
      ok: false,
      issues: [
        {
          pointer: "",
          message: `Not valid YAML at ${lineColumn(text, deep)}: lists and maps nested deeper than ${MAX_DEPTH} levels; a manifest is never that deep.`,
        },
      ],
    };
  let doc: Document;
  try {
    doc = parseDocument(text, {
      prettyErrors: true,
      uniqueKeys: true,
      version: "1.2",
      schema: "core",
      merge: false,
      strict: true,
    });
  } catch (error) {
    // The parser reports depth exhaustion as errors, but never let one of its throws become a raw error.
    return {
      ok: false,
      issues: [
        {
          pointer: "",
          message: `Not valid YAML: ${error instanceof Error ? error.message : String(error)}.`,
        },
      ],
    };
  }
  if (doc.errors.length > 0) {
    if (doc.errors.some((e) => e.code === "RESOURCE_EXHAUSTION")) {
      return {
        ok: false,
        issues: [
          {
            pointer: "",
            message: `Not valid YAML: nested deeper than the parser can follow; a manifest is never deeper than ${MAX_DEPTH} levels.`,
          },
        ],
      };
    }
    const seen = new Set<string>();
    const issues: ManifestIssue[] = [];
    for (const e of doc.errors) {
      const where = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "";
      const first = (e.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
      const issue: ManifestIssue =
        e.code === "DUPLICATE_KEY"
          ? {
              pointer: pointerAtOffset(doc, e.pos[0]),
              message: `Duplicate key${where}: YAML parsers disagree on which one wins.`,
              hint: "Keep one of them.",
            }
          : { pointer: "", message: `Not valid YAML${where}: ${first}.` };
      const key = `${issue.pointer}\u0000${issue.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        issues.push(issue);
      }
    }
    return { ok: false, issues };
  }
  const issues = checkYamlNodes(doc, text);
  if (issues.length > 0) return { ok: false, issues };
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (error) {
    if (error instanceof ReferenceError && /alias/i.test(error.message)) {
      return {
        ok: false,
        issues: [
          {
            pointer: "",
            message:
              "The YAML aliases expand to too much data (more than 100 alias expansions): an alias bomb, or a manifest that should not use aliases this way.",
            hint: "Write the repeated parts out, or use fewer aliases.",
          },
        ],
      };
    }
    return {
      ok: false,
      issues: [
        {
          pointer: "",
          message: `Not valid YAML: ${error instanceof Error ? error.message : String(error)}.`,
        },
      ],
    };
  }
}
