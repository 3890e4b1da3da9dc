/** Helpers for the values the engine passes to check and diff. */

/** The sentinel the Node SDK sends for values not known during preview (the one copy: the CLI reads it too). */
export const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** True when `value` is, or contains, an unknown. */
export function containsUnknown(value: unknown): boolean {
  if (value === unknown) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  if (value !== null && typeof value === "object") return Object.values(value).some(containsUnknown);
  return false;
}

/**
 * The recorded state a read refreshes. The engine's refresh always passes it; only an import reads
 * without one, and the native provider (provider/native/) builds that state before it reads.
 */
export function recorded<T>(state: T | undefined, id: string): T {
  if (state === undefined || state === null) {
    throw new Error(
      `Reading ${id} needs its recorded state; to adopt an existing Run402 resource use the native provider's \`pulumi import\` (run402:index:…).`,
    );
  }
  return state;
}
