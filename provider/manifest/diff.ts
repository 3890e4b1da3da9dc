import type { ResolvedSummary } from "./resolve.js";

/** Names added, removed and changed in one part of a release. */
export type ChangeSet = { added: string[]; removed: string[]; changed: string[] };

/** What differs between two resolved summaries, by site path, migration id and function name. */
export type ResolvedDiff = {
  files: ChangeSet;
  migrations: ChangeSet;
  functions: ChangeSet;
  /** True when any of the three change sets is non-empty. */
  hasChanges: boolean;
};

function compare<T>(
  before: readonly T[],
  after: readonly T[],
  key: (item: T) => string,
  fingerprint: (item: T) => string,
): ChangeSet {
  const old = new Map(before.map((item) => [key(item), fingerprint(item)]));
  const next = new Map(after.map((item) => [key(item), fingerprint(item)]));
  const sorted = (names: Iterable<string>) => [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    added: sorted([...next.keys()].filter((name) => !old.has(name))),
    removed: sorted([...old.keys()].filter((name) => !next.has(name))),
    changed: sorted([...next.keys()].filter((name) => old.has(name) && old.get(name) !== next.get(name))),
  };
}

/**
 * Names what changes between the release in state (`before`, undefined on first deploy) and the desired one,
 * for `pulumi preview`. A migration is "changed" when its id stays and its checksum does not (run402 refuses
 * that with MIGRATION_CHECKSUM_MISMATCH).
 */
export function diffResolved(before: ResolvedSummary | undefined, after: ResolvedSummary): ResolvedDiff {
  const empty: ResolvedSummary = { files: [], migrations: [], functions: [] };
  const old = before ?? empty;
  const files = compare(
    old.files,
    after.files,
    (f) => f.path,
    (f) => `${f.sha256} ${f.contentType}`,
  );
  const migrations = compare(
    old.migrations,
    after.migrations,
    (m) => m.id,
    (m) => m.checksum,
  );
  const functions = compare(
    old.functions,
    after.functions,
    (f) => f.name,
    (f) => f.sha256,
  );
  const hasChanges = [files, migrations, functions].some(
    (c) => c.added.length + c.removed.length + c.changed.length > 0,
  );
  return { files, migrations, functions, hasChanges };
}
