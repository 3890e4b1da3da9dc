/**
 * Project keys are bound to the API origin that issued them: recorded in the Project's outputs (and
 * in those of the Secret and Deployment that carry them) and in a local binding file beside the
 * run402 key store, and sent to no other origin. A run whose `run402:apiBase` names another origin
 * is refused before any request, with how to move a stack deliberately.
 */
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { BaseError } from "../../core/errors.js";
import { configDir } from "../../sdk/wallet.js";

/** The origin (scheme, host, port) of an API base. */
export function originOf(apiBase: string): string {
  return new URL(apiBase).origin;
}

/** Project keys would go to another origin than the one that issued them. */
export class ApiOriginChangedError extends BaseError {
  override name = "ApiOriginChangedError";
  constructor(options: { what: string; issued: string; current: string }) {
    super(
      `${options.what}'s keys were issued by ${options.issued}, but this run's run402:apiBase is ${options.current}; keys are sent only to the origin that issued them, so nothing was sent.`,
      {
        code: "CONFIG_API_ORIGIN_CHANGED",
        metaMessages: [
          `To keep using the stack, set run402:apiBase back to ${options.issued}.`,
          `To move it to ${options.current} deliberately: destroy it against ${options.issued} (or remove its resources from the state with \`pulumi state delete\`), then create it anew against ${options.current}.`,
        ],
      },
    );
  }
}

/** Throws when keys recorded as issued by `issued` would go to `apiBase`'s origin. */
export function assertOrigin(what: string, issued: string | null | undefined, apiBase: string): void {
  const current = originOf(apiBase);
  if (issued != null && issued !== current) throw new ApiOriginChangedError({ what, issued, current });
}

/** The local binding file: project id → the origin that issued its keys. */
function bindingFile(): string {
  return join(configDir(), "credentials", "pulumi-run402-origins.v1.json");
}

async function readBindings(): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(bindingFile(), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as { projects?: Record<string, string> };
    return parsed.projects && typeof parsed.projects === "object" ? parsed.projects : {};
  } catch {
    throw new Error(`The origin binding file ${bindingFile()} is not valid JSON; fix or remove it.`);
  }
}

/** The origin recorded locally as having issued `projectId`'s keys, if any. */
export async function boundOrigin(projectId: string): Promise<string | undefined> {
  return (await readBindings())[projectId];
}

/** The binding writes of this process, one after another (the engine creates projects in parallel). */
let writing: Promise<void> = Promise.resolve();

/** Records that `origin` issued `projectId`'s keys (first record wins: a binding is never moved). */
export function bindOrigin(projectId: string, origin: string): Promise<void> {
  const write = writing.then(async () => {
    const bindings = await readBindings();
    if (bindings[projectId] !== undefined) return;
    bindings[projectId] = origin;
    const file = bindingFile();
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ version: 1, projects: bindings }, null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, file);
  });
  writing = write.catch(() => {});
  return write;
}

/**
 * The origin the run402 CLI's key store belongs to: the API base its config folder targets
 * (`target.json`'s `api_base`, as kychee-com/run402 core/src/config.ts reads it at
 * 2d17de43d5981d65c30a10defe9c84596bfa1724), else Run402's default.
 */
export async function keyStoreOrigin(): Promise<string> {
  try {
    const target = JSON.parse(await readFile(join(configDir(), "target.json"), "utf8")) as {
      api_base?: unknown;
    };
    if (typeof target.api_base === "string" && /^https?:\/\//.test(target.api_base))
      return originOf(target.api_base);
  } catch {
    // No target (or an unreadable one): the run402 CLI then talks to its default API.
  }
  return "https://api.run402.com";
}

/**
 * The origin `projectId`'s keys belong to (`recorded` in the resource's outputs, else the local
 * binding), checked against this run's API: throws {@link ApiOriginChangedError} when they differ.
 * Returns the origin to record (this run's when nothing was recorded: a state from an older version).
 */
export async function keysOrigin(
  what: string,
  projectId: string,
  recorded: string | null | undefined,
  apiBase: string,
): Promise<string> {
  // null or absent: a state written before the origin was recorded.
  const issued = recorded ?? (await boundOrigin(projectId));
  assertOrigin(what, issued, apiBase);
  return issued ?? originOf(apiBase);
}
