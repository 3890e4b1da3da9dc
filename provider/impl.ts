/**
 * The provider implementation that the serialized stubs (resources/stub.ts) load by package name
 * in the Pulumi provider process. Nothing here is ever serialized into state.
 */
import { BaseError } from "../core/errors.js";
import { configure as configureContext } from "./impl/context.js";
import { deployment } from "./impl/deployment.js";
import { withUrn } from "./impl/progress.js";
import { project } from "./impl/project.js";
import { secret } from "./impl/secret.js";
import { tier } from "./impl/tier.js";

/**
 * The stable code an error is reported under. Only text crosses the engine to the user (and to
 * the run402-pulumi CLI, which maps these prefixes to exit codes), so every error leaves the
 * provider as `[CODE] message`: POLICY_* (spend policy), CONFIG_* and MANIFEST_* (bad input),
 * CONFLICT_* (changed since the plan), JOURNAL_* (the local payment journal), RUN402_* (the API or
 * payment), none for a bug in this provider.
 */
export function errorCode(error: unknown): string | undefined {
  if (!(error instanceof BaseError)) {
    const code = (error as { code?: unknown } | null)?.code;
    return typeof code === "string" && /^MANIFEST_[A-Z_]+$/.test(code) ? code : undefined;
  }
  if (/^(POLICY|MANIFEST|CONFIG|CONFLICT|JOURNAL)_/.test(error.code)) return error.code;
  if (error.code.startsWith("WALLET_")) return `CONFIG_${error.code}`;
  return `RUN402_${error.code}`;
}

/** Rethrows `error` with its code in front of the message (and the original as `cause`). */
export function withCode(error: unknown): never {
  const code = errorCode(error);
  if (!code || !(error instanceof Error) || error.message.startsWith(`[${code}]`)) throw error;
  throw new Error(`[${code}] ${error.message}`, { cause: error });
}

type Handler = Record<string, (...args: never[]) => Promise<unknown>>;

/** The resource's URN when its inputs carry one (`resourceKey`), for progress lines. */
function urnOf(args: readonly unknown[]): string | undefined {
  for (const arg of [...args].reverse()) {
    const key = (arg as { resourceKey?: unknown } | null)?.resourceKey;
    if (typeof key === "string") return key;
  }
  return undefined;
}

function coded<T extends Handler>(handler: T): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(handler)) {
    wrapped[name] = (...args: never[]) => withUrn(urnOf(args), () => fn(...args)).catch(withCode);
  }
  return wrapped as T;
}

/** Receives the whole stack config (secrets decrypted) before any other call. */
export async function configure(request: {
  config: { get(key: string): string | undefined };
}): Promise<void> {
  try {
    configureContext((key) => request.config.get(key));
  } catch (error) {
    withCode(error);
  }
}

/** CRUD handlers by resource kind. */
export const handlers = {
  tier: coded(tier),
  project: coded(project),
  deployment: coded(deployment),
  secret: coded(secret),
};
