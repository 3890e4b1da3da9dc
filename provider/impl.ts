/**
 * The provider implementation that the serialized stubs (resources/stub.ts) load by package name
 * in the Pulumi provider process. Nothing here is ever serialized into state.
 */
import type { RegisteredCode } from "../core/codes.js";
import { reportedCode } from "../core/errors.js";
import { configure as configureContext } from "./impl/context.js";
import { deployment } from "./impl/deployment.js";
import { withUrn } from "./impl/progress.js";
import { project } from "./impl/project.js";
import { secret } from "./impl/secret.js";
import { tier } from "./impl/tier.js";
import { wayOut } from "./impl/wayout.js";
import {
  deploymentShape,
  projectShape,
  recordQuiet,
  revealQuiet,
  type Shape,
  secretShape,
  tierShape,
} from "./shapes.js";

/**
 * The stable code an error is reported under. Only text crosses the engine to the user (and to
 * the run402-pulumi CLI, which looks the code up in core/codes.ts for its exit code), so every
 * error leaves the provider as `[CODE] message`, CODE a registered one: the error's own, or
 * `RUN402_API_ERROR` for a code of Run402's API (named in the message); none for a bug in this
 * provider.
 */
export function errorCode(error: unknown): RegisteredCode | undefined {
  return reportedCode(error);
}

/**
 * Rethrows `error` with its code in front of the message (and the original as `cause`), restated
 * with the setting or program line that fixes it when there is one (impl/wayout.ts).
 */
export function withCode(thrown: unknown): never {
  const error = wayOut(thrown);
  const code = errorCode(error);
  if (!code || !(error instanceof Error)) throw error;
  const message = error.message.startsWith(`[${code}]`) ? error.message : `[${code}] ${error.message}`;
  const coded = new Error(message, { cause: error });
  // An expected error, not a bug: Pulumi's dynamic-provider host prints `e.stack` of what read and
  // delete throw on the Stack's row, and its frames point into files the package does not ship.
  coded.stack = `Error: ${message}`;
  throw coded;
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

/**
 * A coded error in `check` as the check's failure: the engine prints a failure once, on the
 * resource's row, where a thrown error is also printed by Pulumi's dynamic-provider host on the
 * Stack's row with its stack trace (into files the package does not ship).
 */
function asFailure(thrown: unknown): { failures: { property: string; reason: string }[] } {
  const error = wayOut(thrown);
  const code = errorCode(error);
  if (!code || !(error instanceof Error)) withCode(error);
  const message = (error as Error).message.startsWith(`[${code}]`)
    ? (error as Error).message
    : `[${code}] ${(error as Error).message}`;
  return { failures: [{ property: "", reason: message.replace(/\s*\n\s*/g, " ") }] };
}

/**
 * The handler as the engine calls it: coded errors (check's as failures), progress lines on the
 * resource's row, and the shape's quiet properties under their recorded keys in the inputs the
 * engine records (check's and read's results), under their names for the handler.
 */
function coded<T extends Handler>(handler: T, shape: Shape): T {
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(handler)) {
    wrapped[name] = (...given: never[]) => {
      const args = given.map((arg) => revealQuiet(shape, arg)) as never[];
      return withUrn(urnOf(args), () => fn(...args))
        .then((result) => {
          const inputs = (result as { inputs?: unknown } | undefined)?.inputs;
          return inputs && typeof inputs === "object"
            ? { ...(result as object), inputs: recordQuiet(shape, inputs as Record<string, unknown>) }
            : result;
        })
        .catch(name === "check" ? asFailure : withCode);
    };
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
  tier: coded(tier, tierShape),
  project: coded(project, projectShape),
  deployment: coded(deployment, deploymentShape),
  secret: coded(secret, secretShape),
};
