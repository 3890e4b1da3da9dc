/**
 * The apply wire → Run402's ReleaseSpec. Clients send the snake_case wire `@run402/sdk` sends
 * (`project_id`, `content_type`, `timeout_seconds`, `require_role.id_column`, `default_locale`); Run402
 * Core also takes the SDK-native camelCase form. Both map to the one ReleaseSpec `@run402/release`
 * validates; anything else passes through untouched so that its validator names it.
 */
import { badRequest } from "./errors.js";

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Renames `snake` to `camel` in `obj` (either spelling accepted, not both with different values). */
function rename(obj: Obj, snake: string, camel: string, where: string): Obj {
  if (!(snake in obj)) return obj;
  const { [snake]: value, ...rest } = obj;
  if (camel in rest && JSON.stringify(rest[camel]) !== JSON.stringify(value)) {
    throw badRequest("INVALID_SPEC", `${where} sets both ${snake} and ${camel}.`, {
      resource: `${where}.${snake}`,
    });
  }
  return { ...rest, [camel]: value };
}

function contentRef(v: unknown, where: string): unknown {
  return isObj(v) ? rename(v, "content_type", "contentType", where) : v;
}

function fileSet(v: unknown, where: string): unknown {
  if (!isObj(v)) return v;
  return Object.fromEntries(
    Object.entries(v).map(([path, ref]) => [path, contentRef(ref, `${where}.${path}`)]),
  );
}

function roleGate(v: unknown, where: string): unknown {
  if (!isObj(v)) return v;
  let out = v;
  for (const [snake, camel] of [
    ["id_column", "idColumn"],
    ["role_column", "roleColumn"],
    ["cache_ttl", "cacheTtl"],
    ["on_deny", "onDeny"],
    ["sign_in_path", "signInPath"],
  ] as const) {
    out = rename(out, snake, camel, where);
  }
  return out;
}

function fn(v: unknown, where: string): unknown {
  if (!isObj(v)) return v;
  let out = rename(rename(v, "require_auth", "requireAuth", where), "require_role", "requireRole", where);
  if ("source" in out) out = { ...out, source: contentRef(out["source"], `${where}.source`) };
  if ("files" in out) out = { ...out, files: fileSet(out["files"], `${where}.files`) };
  if ("requireRole" in out)
    out = { ...out, requireRole: roleGate(out["requireRole"], `${where}.requireRole`) };
  if (isObj(out["config"])) {
    const config = rename(
      rename(out["config"], "timeout_seconds", "timeoutSeconds", `${where}.config`),
      "memory_mb",
      "memoryMb",
      `${where}.config`,
    );
    out = { ...out, config };
  }
  return out;
}

function fnMap(v: unknown, where: string): unknown {
  if (!isObj(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([name, f]) => [name, fn(f, `${where}.${name}`)]));
}

/** Maps a wire spec (either spelling) to the ReleaseSpec shape; validation is `@run402/release`'s job. */
export function specFromWire(wire: Obj): Obj {
  let spec = rename(wire, "project_id", "project", "spec");
  const { database, functions, site, i18n } = spec;
  if (isObj(database) && Array.isArray(database["migrations"])) {
    spec = {
      ...spec,
      database: {
        ...database,
        migrations: database["migrations"].map((m: unknown, i) =>
          isObj(m) && "sql_ref" in m
            ? { ...m, sql_ref: contentRef(m["sql_ref"], `database.migrations[${i}].sql_ref`) }
            : m,
        ),
      },
    };
  }
  if (isObj(functions)) {
    const out: Obj = { ...functions };
    if ("replace" in functions) out["replace"] = fnMap(functions["replace"], "functions.replace");
    if (isObj(functions["patch"]) && "set" in functions["patch"]) {
      out["patch"] = { ...functions["patch"], set: fnMap(functions["patch"]["set"], "functions.patch.set") };
    }
    spec = { ...spec, functions: out };
  }
  if (isObj(site)) {
    const out: Obj = { ...site };
    if ("replace" in site) out["replace"] = fileSet(site["replace"], "site.replace");
    if (isObj(site["patch"]) && "put" in site["patch"]) {
      out["patch"] = { ...site["patch"], put: fileSet(site["patch"]["put"], "site.patch.put") };
    }
    spec = { ...spec, site: out };
  }
  if (isObj(i18n)) {
    spec = {
      ...spec,
      i18n: rename(
        rename(i18n, "default_locale", "defaultLocale", "i18n"),
        "unknown_locale_policy",
        "unknownLocalePolicy",
        "i18n",
      ),
    };
  }
  return spec;
}
