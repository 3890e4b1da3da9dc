/**
 * Checks JSON Schema cannot express. {@link valueIssues}: the data itself (depth, cycles, well-formed
 * Unicode, control characters in names, finite numbers). {@link semanticIssues}: rules across fields
 * that Run402 applies (duplicate ids, cron schedules, the tier's function caps, secret names its
 * runtime sets itself, an empty site) — each one a rule Run402's code or docs state, and said so in
 * the message.
 */
import { Cron } from "croner";
import type { TierName } from "./app.types.js";
import type { ManifestIssue } from "./errors.js";
import { pointerSegment } from "./release.js";

/** Nesting of objects and lists a manifest may have (a real one has fewer than 12). */
export const MAX_DEPTH = 64;

function record(value: unknown): Record<string, unknown> | undefined {
  return value && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function pointerOf(path: readonly string[]): string {
  return path.map((s) => `/${pointerSegment(s)}`).join("");
}

// ── the data itself ─────────────────────────────────────────────────────────────────────────────────

/** A UTF-16 surrogate without its other half. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The first C0 or C1 control character or DEL (never part of a name, a path or an id), or -1. */
function controlAt(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return i;
  }
  return -1;
}

function describeControl(text: string): string {
  const code = text.charCodeAt(controlAt(text));
  return `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Subtrees of free-form JSON (Run402 passes them through): any key and any text is fine there. */
function isFreeForm(path: readonly string[]): boolean {
  if (path[0] === "x-run402-omitted_features") return true;
  if (path[0] === "database" && path[1] === "expose") return true;
  if (path[0] === "functions") {
    for (let i = 3; i < path.length; i++)
      if (path[i] === "payload" && path[i - 1] === "run" && path[i - 3] === "triggers") return true;
  }
  return false;
}

/** Where a string is content (SQL, a file's text), not a name: line breaks and tabs belong there. */
function isContent(path: readonly string[]): boolean {
  const last = path.at(-1);
  if (path[0] === "database") return last === "sql";
  if (path[0] !== "site" && path[0] !== "functions" && path[0] !== "assets") return false;
  if (last === "data") return true;
  // File entries given as text: site file maps, a function's source and files, an asset's source.
  if (path[0] === "site") {
    if (path[1] === "replace" || path[1] === "files") return path.length === 3;
    return path[1] === "patch" && path[2] === "put" && path.length === 4;
  }
  if (path[0] === "functions") {
    const rest = path[1] === "patch" ? path.slice(3) : path.slice(2);
    return (rest.length === 2 && rest[1] === "source") || (rest.length === 3 && rest[1] === "files");
  }
  return path[1] === "put" && path.length === 4 && last === "source";
}

/**
 * Problems of the data itself, before any schema: nesting beyond {@link MAX_DEPTH} and cycles
 * (`structural`: the schema is not run on such data), lone surrogates anywhere (they cannot be
 * encoded as UTF-8, so they would be uploaded mangled), control characters in keys and in every
 * string that is a name, path or id, and numbers that are not finite.
 */
export function valueIssues(value: unknown): { issues: ManifestIssue[]; structural: boolean } {
  const issues: ManifestIssue[] = [];
  let structural = false;
  const ancestors = new Set<object>();
  const visit = (node: unknown, path: string[], free: boolean): void => {
    if (typeof node === "string") {
      if (LONE_SURROGATE.test(node))
        issues.push({
          pointer: pointerOf(path),
          message:
            "Contains a lone surrogate (half of a UTF-16 pair): it is not Unicode text and cannot be encoded as UTF-8.",
        });
      else if (!free && !isContent(path) && controlAt(node) >= 0)
        issues.push({
          pointer: pointerOf(path),
          message: `Contains the control character ${describeControl(node)}; names, paths and ids cannot.`,
        });
      return;
    }
    if (typeof node === "number") {
      if (!Number.isFinite(node))
        issues.push({ pointer: pointerOf(path), message: `Must be a finite number (got ${String(node)}).` });
      return;
    }
    if (!node || typeof node !== "object") return;
    if (ancestors.has(node)) {
      structural = true;
      issues.push({
        pointer: pointerOf(path),
        message: "Refers to an object that contains it: the value is circular.",
      });
      return;
    }
    if (path.length >= MAX_DEPTH) {
      structural = true;
      issues.push({
        pointer: pointerOf(path),
        message: `Nested deeper than ${MAX_DEPTH} levels; a manifest is never that deep.`,
      });
      return;
    }
    ancestors.add(node);
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        path.push(String(i));
        visit(node[i], path, free || isFreeForm(path));
        path.pop();
      }
    } else {
      for (const key of Object.keys(node)) {
        path.push(key);
        const inside = free || isFreeForm(path);
        if (LONE_SURROGATE.test(key))
          issues.push({
            pointer: pointerOf(path),
            message: "This key contains a lone surrogate: it is not Unicode text.",
          });
        else if (!inside && controlAt(key) >= 0)
          issues.push({
            pointer: pointerOf(path),
            message: `This key contains the control character ${describeControl(key)}; names and paths cannot.`,
          });
        visit((node as Record<string, unknown>)[key], path, inside);
        path.pop();
      }
    }
    ancestors.delete(node);
  };
  visit(value, [], false);
  return { issues, structural };
}

// ── what a folder never uploads ──────────────────────────────────────────────────────────────────────

/**
 * Folder entries never uploaded, whatever `site.include_dotfiles` says: version control, package
 * caches, the CLI's and Pulumi's own folders and stack files (a passphrase, encrypted secrets), and
 * what Run402's own folder walker leaves out (dotenv files, package-manager and netrc credentials,
 * private keys, `.DS_Store`). Matched by name at every depth, case-insensitively; `*` is any text.
 */
export const NEVER_UPLOADED: readonly string[] = [
  ".git",
  "node_modules",
  ".run402",
  ".pulumi",
  "Pulumi.yaml",
  "Pulumi.yml",
  "Pulumi.*.yaml",
  "Pulumi.*.yml",
  ".env*",
  ".envrc",
  ".npmrc",
  ".pnpmrc",
  ".yarnrc",
  ".netrc",
  ".pypirc",
  "id_rsa*",
  "id_dsa*",
  "id_ecdsa*",
  "id_ed25519*",
  "*.key",
  "*.pem",
  "*.p12",
  "*.pfx",
  ".DS_Store",
];

const neverPatterns = NEVER_UPLOADED.map(
  (glob) =>
    new RegExp(
      `^${glob
        .split("*")
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
        .join(".*")}$`,
      "i",
    ),
);

/** True for a file or folder name that is never uploaded from a folder (see {@link NEVER_UPLOADED}). */
export function isNeverUploaded(name: string): boolean {
  return neverPatterns.some((pattern) => pattern.test(name));
}

// ── rules across fields ─────────────────────────────────────────────────────────────────────────────

/**
 * Function caps per tier, as Run402 documents them (SKILL.md "Resource limits", and the SDK's tier
 * preflight): timeout, memory, scheduled functions and the shortest schedule interval.
 */
export const TIER_FUNCTION_CAPS = {
  prototype: { timeoutSeconds: 10, memoryMb: 128, scheduledFunctions: 1, minIntervalMinutes: 15 },
  hobby: { timeoutSeconds: 30, memoryMb: 256, scheduledFunctions: 3, minIntervalMinutes: 5 },
  team: { timeoutSeconds: 60, memoryMb: 512, scheduledFunctions: 10, minIntervalMinutes: 1 },
} as const satisfies Record<TierName, unknown>;

/**
 * Environment variables Run402's function runtime sets itself, after the project's secrets (so they
 * win): a secret with one of these names never reaches a function. Taken from run402-core's function
 * executor (`RUN402_PROJECT_ID`, …); Run402 documents `RUN402_SERVICE_KEY` and `RUN402_PROJECT_ID` as
 * what functions read.
 */
export const RUNTIME_ENV_NAMES: readonly string[] = [
  "RUN402_PROJECT_ID",
  "RUN402_RELEASE_ID",
  "RUN402_FUNCTION_NAME",
  "RUN402_REQUEST_ID",
  "RUN402_API_BASE",
  "RUN402_ANON_KEY",
  "RUN402_SERVICE_KEY",
  "RUN402_JWT_SECRET",
];

/**
 * Whether a cron expression is one Run402 accepts: exactly five fields (as `@run402/release` checks)
 * that the cron library Run402's runtime schedules with (croner) parses. Returns the reason if not.
 */
export function cronProblem(expression: string): string | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 5 || expression.trim() === "")
    return `has ${expression.trim() === "" ? 0 : fields.length} field${fields.length === 1 ? "" : "s"}; a schedule is a 5-field cron expression (minute hour day-of-month month day-of-week), e.g. "0 3 * * *"`;
  try {
    new Cron(expression, { paused: true }, () => {}).stop();
    return undefined;
  } catch (error) {
    const why = (error instanceof Error ? error.message : String(error)).replace(/^CronPattern:\s*/, "");
    return `is not a valid cron expression: ${why.replace(/\.$/, "")}`;
  }
}

/** The values a cron minute or hour field names (`*`, `n`, `a-b`, steps, lists); undefined if it is another form. */
function expandField(field: string, min: number, max: number): number[] | undefined {
  const values = new Set<number>();
  for (const part of field.split(",")) {
    const match = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part);
    if (!match) return undefined;
    const from = match[1] === "*" ? min : Number(match[1]);
    const to =
      match[1] === "*"
        ? max
        : match[2] !== undefined
          ? Number(match[2])
          : match[3] !== undefined
            ? max
            : from;
    const step = match[3] !== undefined ? Number(match[3]) : 1;
    if (step < 1 || from < min || to > max || from > to) return undefined;
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return [...values].sort((a, b) => a - b);
}

/**
 * The shortest gap, in minutes, between two runs of a (valid) cron expression within a day, from its
 * minute and hour fields (what a tier's minimum interval is about); undefined when the fields use a
 * form this does not expand. A run once a day counts as 1440.
 */
export function cronIntervalMinutes(expression: string): number | undefined {
  const [minute = "", hour = ""] = expression.trim().split(/\s+/);
  const minutes = expandField(minute, 0, 59);
  const hours = expandField(hour, 0, 23);
  if (!minutes || !hours || minutes.length === 0 || hours.length === 0) return undefined;
  const times = hours.flatMap((h) => minutes.map((m) => h * 60 + m));
  if (times.length === 1) return 1440;
  let gap = 1440 - (times.at(-1) as number) + (times[0] as number);
  for (let i = 1; i < times.length; i++) gap = Math.min(gap, (times[i] as number) - (times[i - 1] as number));
  return gap;
}

function tierOf(manifest: Record<string, unknown>): TierName | undefined {
  const tier = manifest["tier"];
  const name = typeof tier === "string" ? tier : record(tier)?.["name"];
  return typeof name === "string" && name in TIER_FUNCTION_CAPS ? (name as TierName) : undefined;
}

function duplicates(issues: ManifestIssue[], list: unknown, at: string, key: string, what: string): void {
  if (!Array.isArray(list)) return;
  const seen = new Map<string, number>();
  list.forEach((item, index) => {
    const id = record(item)?.[key];
    if (typeof id !== "string") return;
    const first = seen.get(id);
    if (first === undefined) seen.set(id, index);
    else
      issues.push({
        pointer: `${at}/${index}/${key}`,
        message: `Duplicate ${what} ${JSON.stringify(id)} (also at ${at}/${first}).`,
      });
  });
}

function functionIssues(issues: ManifestIssue[], manifest: Record<string, unknown>): void {
  const functions = record(manifest["functions"]);
  if (!functions) return;
  const tier = tierOf(manifest);
  const caps = TIER_FUNCTION_CAPS[tier ?? "team"];
  const capOf = tier ? `the ${tier} tier's cap` : "the cap of every tier (team, the largest)";
  const maps: [string, unknown][] = [
    ["/functions/replace", functions["replace"]],
    ["/functions/patch/set", record(functions["patch"])?.["set"]],
  ];
  const scheduled = new Set<string>();
  for (const [at, map] of maps) {
    const fns = record(map);
    if (!fns) continue;
    for (const [name, raw] of Object.entries(fns)) {
      const fn = record(raw);
      if (!fn) continue;
      const base = `${at}/${pointerSegment(name)}`;
      const config = record(fn["config"]);
      for (const [keys, cap, unit] of [
        [["timeout_seconds", "timeoutSeconds"], caps.timeoutSeconds, "seconds"],
        [["memory_mb", "memoryMb"], caps.memoryMb, "MB"],
      ] as const) {
        for (const key of keys) {
          const value = config?.[key];
          if (typeof value === "number" && value > cap)
            issues.push({
              pointer: `${base}/config/${key}`,
              message: `${value} ${unit} is above ${capOf}: ${cap} ${unit}. Run402 refuses it (tier limits: prototype 10 s / 128 MB, hobby 30 s / 256 MB, team 60 s / 512 MB).`,
              hint: tier ? "Lower it, or choose a larger tier." : "Lower it.",
            });
        }
      }
      const crons: [string, string][] = [];
      if (typeof fn["schedule"] === "string") crons.push([`${base}/schedule`, fn["schedule"]]);
      if (Array.isArray(fn["triggers"]))
        fn["triggers"].forEach((t, i) => {
          const trigger = record(t);
          if (trigger?.["type"] === "schedule" && typeof trigger["cron"] === "string")
            crons.push([`${base}/triggers/${i}/cron`, trigger["cron"]]);
        });
      for (const [pointer, cron] of crons) {
        scheduled.add(name);
        const problem = cronProblem(cron);
        if (problem) {
          issues.push({ pointer, message: `The schedule ${JSON.stringify(cron)} ${problem}.` });
          continue;
        }
        const gap = tier ? cronIntervalMinutes(cron) : undefined;
        if (tier && gap !== undefined && gap < caps.minIntervalMinutes)
          issues.push({
            pointer,
            message: `The schedule ${JSON.stringify(cron)} runs every ${gap} minute${gap === 1 ? "" : "s"}; the ${tier} tier runs schedules at most every ${caps.minIntervalMinutes} minutes (Run402's tier limits: prototype 15, hobby 5, team 1).`,
            hint: "Run it less often, or choose a larger tier.",
          });
      }
    }
  }
  if (tier && scheduled.size > caps.scheduledFunctions)
    issues.push({
      pointer: "/functions",
      message: `${scheduled.size} functions have schedules (${[...scheduled].join(", ")}); the ${tier} tier allows ${caps.scheduledFunctions} (Run402's tier limits: prototype 1, hobby 3, team 10, for the whole organization).`,
      hint: "Schedule fewer functions, or choose a larger tier.",
    });
}

/** Rules across fields that Run402 applies and a JSON Schema cannot express. Runs on any value. */
export function semanticIssues(value: unknown): ManifestIssue[] {
  const issues: ManifestIssue[] = [];
  const manifest = record(value);
  if (!manifest) return issues;
  const migrations = record(manifest["database"])?.["migrations"];
  duplicates(issues, migrations, "/database/migrations", "id", "migration id");
  duplicates(issues, migrations, "/database/migrations", "name", "migration name");
  if (Array.isArray(migrations))
    migrations.forEach((m, index) => {
      const id = record(m)?.["id"];
      if (typeof id === "string" && id !== "" && id.trim() === "")
        issues.push({
          pointer: `/database/migrations/${index}/id`,
          message: "Is blank; Run402 needs a non-empty migration id.",
          hint: 'Name the migration, e.g. "001_init".',
        });
    });
  duplicates(issues, record(manifest["verify"])?.["http"], "/verify/http", "id", "check id");
  duplicates(issues, record(manifest["site"])?.["files"], "/site/files", "path", "site path");

  const project = manifest["project"];
  const projectId = manifest["project_id"];
  const named = typeof project === "string" ? project : record(project)?.["adoptProjectId"];
  if (typeof named === "string" && typeof projectId === "string" && named !== projectId) {
    issues.push({
      pointer: "/project_id",
      message: `Names project ${JSON.stringify(projectId)} but ${typeof project === "string" ? "`project`" : "`project.adoptProjectId`"} names ${JSON.stringify(named)}.`,
      hint: "Keep one of them.",
    });
  }

  const site = record(manifest["site"]);
  const replace = record(site?.["replace"]);
  if (replace && replace["__source"] === undefined && Object.keys(replace).length === 0)
    issues.push({
      pointer: "/site/replace",
      message:
        "Is empty: it would replace the whole site with nothing. Run402's client refuses such a deploy (MANIFEST_EMPTY).",
      hint: 'List the files, name a folder with `dir` or `{ "__source": "local-dir", "path": … }`, or remove paths with `patch.delete`.',
    });
  const dotfiles = site?.["include_dotfiles"];
  if (Array.isArray(dotfiles))
    dotfiles.forEach((entry, index) => {
      if (typeof entry !== "string") return;
      const never = entry.split("/").find((segment) => segment !== "" && isNeverUploaded(segment));
      if (never)
        issues.push({
          pointer: `/site/include_dotfiles/${index}`,
          message: `${JSON.stringify(never)} is never uploaded from a folder: it holds secrets or tool state (${NEVER_UPLOADED.join(", ")}).`,
          hint: "Remove it from the list; a file that must be served can be named explicitly in `site.files`.",
        });
    });
  const files = site?.["files"];
  if (
    (Array.isArray(files) && files.length === 0) ||
    (record(files) && Object.keys(files as object).length === 0)
  )
    issues.push({
      pointer: "/site/files",
      message: "Is empty: it would replace the whole site with nothing.",
      hint: "List the files, or remove paths with `patch.delete`.",
    });

  const required = record(manifest["secrets"])?.["require"];
  if (Array.isArray(required))
    required.forEach((name, index) => {
      if (typeof name === "string" && RUNTIME_ENV_NAMES.includes(name))
        issues.push({
          pointer: `/secrets/require/${index}`,
          message: `${name} is set by Run402's function runtime itself, over any secret of that name: a function never sees this secret.`,
          hint: "Choose another name (names starting with RUN402_ are Run402's).",
        });
    });

  functionIssues(issues, manifest);
  return issues;
}
