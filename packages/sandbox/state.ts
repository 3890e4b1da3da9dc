/**
 * The sandbox's application state (orgs, projects, releases, plans, idempotency records, ledger) as
 * one JSON document, written atomically after every mutation when a state directory is given.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  digestMaterializedRelease,
  materializeRelease,
  type PortableReleaseState,
  type RouteSpec,
} from "@run402/release";

/** Tier names, cheapest first. */
export type TierName = "prototype" | "hobby" | "team";

/** An organization: one per wallet, carrying the tier lease and the prepaid allowance. */
export interface Org {
  wallet: string;
  tier: TierName | null;
  leaseStartedAt: number | null;
  leaseExpiresAt: number | null;
  allowanceMicros: number;
}

/** A project and its keys. `deletedAt` tombstones keep a deleted project's keys answering 404. */
export interface Project {
  /** Run402's `assets` slice: key → object, changed only by activated releases. */
  assets?: Record<string, AssetEntry>;
  projectId: string;
  name: string;
  wallet: string;
  schemaSlot: string;
  anonKey: string;
  serviceKey: string;
  createdAt: number;
  deletedAt: number | null;
  activeReleaseId: string | null;
  secrets: Record<string, { value: string; updatedAt: number }>;
}

/** One asset under a project's asset namespace (Run402's `assets` slice). */
export interface AssetEntry {
  sha256: string;
  size_bytes: number;
  content_type: string | null;
  visibility: "public" | "private";
  immutable: boolean;
}

/** An activated release: Run402's materialized state (computed by @run402/release) plus what lives beside it. */
export interface Release {
  releaseId: string;
  projectId: string;
  /** `@run402/release`'s apply-request digest of the spec that made it. */
  manifestDigest: string;
  /** `@run402/release`'s materialized-release digest of `state`. */
  releaseDigest: string;
  state: PortableReleaseState;
  /** `database.expose` as last deployed (carried forward like a slice); stored, not enforced. */
  expose: unknown;
  activatedAt: number;
  /** The operation that activated it (absent in states saved before it was recorded). */
  operationId?: string;
  /** 1 for the project's first release, then one more for each (absent in older states). */
  generation?: number;
}

/** A migration awaiting application: inline SQL, or the sha256 of its SQL content. */
export interface PlannedMigration {
  id: string;
  checksum: string;
  sql?: string;
  sqlRef?: string;
}

/** A deploy plan (`POST /apply/v1/plans`). */
export interface Plan {
  planId: string;
  operationId: string;
  projectId: string;
  wallet: string;
  baseReleaseId: string | null;
  manifestDigest: string;
  /** The release it activates, materialized by @run402/release over the base. */
  target: PortableReleaseState;
  releaseDigest: string;
  expose: unknown;
  migrations: PlannedMigration[];
  /** Secrets the release deletes on activation (`secrets.delete`). */
  deleteSecrets: string[];
  /** The project's assets after activation; null when the spec has no `assets` slice. */
  assets: Record<string, AssetEntry> | null;
  /** sha256 of every content object the spec references. */
  content: string[];
  isNoop: boolean;
  idempotencyKey: string | null;
  /** The plan response (replayed for a repeated idempotency_key). */
  response: Record<string, unknown>;
  createdAt: number;
  committed: boolean;
}

/** Deploy operation states, as the wire names them. */
/**
 * Run402's operation statuses (kychee-com/run402 sdk/src/namespaces/deploy.types.ts `OperationStatus`),
 * and `running`, which a commit answers before the first phase.
 */
export type OperationStatus =
  | "running"
  | "staging"
  | "gating"
  | "migrating"
  | "schema_settling"
  | "activating"
  | "activation_pending"
  | "needs_repair"
  | "ready"
  | "failed"
  | "rolled_back";

/** A deploy operation (`POST /apply/v1/plans/:id/commit`). */
export interface Operation {
  operationId: string;
  projectId: string;
  planId: string;
  status: OperationStatus;
  releaseId: string | null;
  /** Run402's GatewayDeployError: `code` and `message`, and where known phase, retry hints and details. */
  error: ({ code: string; message: string } & Record<string, unknown>) | null;
  createdAt: number;
  updatedAt: number;
}

/** A content upload plan (`POST /content/v1/plans`). */
export interface ContentPlan {
  planId: string;
  projectId: string;
  expiresAt: number;
  items: {
    sha256: string;
    size: number;
    content_type: string;
    /** Where its bytes are staged on the upload origin, when it is one (presigned uploads). */
    stagingKey?: string;
    /** The multipart upload and its part count, for content uploaded in parts. */
    uploadId?: string;
    partCount?: number;
  }[];
}

/** A stored response under an `Idempotency-Key`. */
export interface IdempotencyRecord {
  fingerprint: string;
  status: number;
  headers: Record<string, string>;
  body: unknown;
  at: number;
}

/** One settled payment. */
export interface LedgerEntry {
  rail: "x402" | "mpp" | "allowance";
  reference: string;
  amount: string;
  asset: string;
  network: string;
  payer: string;
  idempotencyKey: string | null;
  route: string;
  at: string;
}

/** The whole persisted document. */
export interface AppState {
  /** 2: releases hold @run402/release's materialized state (1 held a hand-made summary). */
  version: 2;
  /** Random per state directory: the mppx server secret (challenges survive a restart). */
  secretKey: string;
  clockOffsetMs: number;
  seq: number;
  orgs: Record<string, Org>;
  projects: Record<string, Project>;
  releases: Record<string, Release>;
  plans: Record<string, Plan>;
  operations: Record<string, Operation>;
  contentPlans: Record<string, ContentPlan>;
  /** Committed content: sha256 → metadata (bytes live in the blob store). */
  content: Record<string, { size: number; content_type: string }>;
  idempotency: Record<string, IdempotencyRecord>;
  ledger: LedgerEntry[];
}

/** Holds the state and persists it. */
export interface StateStore {
  readonly state: AppState;
  /** Writes the document (atomically: temp file + rename). A no-op without a state directory. */
  save(): void;
  /** A fresh sequence number, for ids. */
  nextSeq(): number;
}

function emptyState(): AppState {
  return {
    version: 2,
    secretKey: randomBytes(32).toString("hex"),
    clockOffsetMs: 0,
    seq: 0,
    orgs: {},
    projects: {},
    releases: {},
    plans: {},
    operations: {},
    contentPlans: {},
    content: {},
    idempotency: {},
    ledger: [],
  };
}

/** Loads `<stateDir>/state.json` (or starts empty) and returns a store that writes it back. */
export function openState(stateDir?: string): StateStore {
  const file = stateDir ? join(stateDir, "state.json") : undefined;
  let state = emptyState();
  if (file && existsSync(file)) {
    state = upgrade({ ...state, ...(JSON.parse(readFileSync(file, "utf8")) as AppState) });
  }
  // The state holds project keys and secret values, the folder the database and chain dumps: only
  // their owner may read them (a folder made by an older version is tightened too).
  if (stateDir) {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    chmodSync(stateDir, 0o700);
  }
  const store: StateStore = {
    state,
    save() {
      if (!file) return;
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(state), { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, file);
    },
    nextSeq() {
      state.seq += 1;
      return state.seq;
    },
  };
  store.save();
  return store;
}

type V1Release = {
  releaseId: string;
  projectId: string;
  manifestDigest: string;
  activatedAt: number;
  site: Record<string, { sha256: string; size: number; content_type: string }>;
  functions: Record<
    string,
    {
      runtime: string;
      code_hash: string;
      timeout_seconds: number | null;
      memory_mb: number | null;
      schedule: string | null;
    }
  >;
  secrets: string[];
  subdomains: string[];
  routes: unknown[];
};

/**
 * Reads a version-1 document: its releases become materialized states (applied migrations stay in the
 * database, which plans consult), and its unfinished plans are dropped (plan again).
 */
function upgrade(state: AppState): AppState {
  if ((state.version as number) !== 1) return state;
  const releases: Record<string, Release> = {};
  for (const old of Object.values(state.releases) as unknown as V1Release[]) {
    const release = materializeRelease({
      spec: {
        project: old.projectId,
        base: { release: "empty" },
        site: {
          replace: Object.fromEntries(
            Object.entries(old.site).map(([path, e]) => [
              path,
              { sha256: e.sha256, size: e.size, contentType: e.content_type },
            ]),
          ),
        },
        functions: {
          replace: Object.fromEntries(
            Object.entries(old.functions).map(([name, f]) => [
              name,
              {
                runtime: "node22",
                source: { sha256: f.code_hash, size: 0 },
                config: {
                  ...(f.timeout_seconds ? { timeoutSeconds: f.timeout_seconds } : {}),
                  ...(f.memory_mb ? { memoryMb: f.memory_mb } : {}),
                },
                schedule: f.schedule,
              },
            ]),
          ),
        },
        secrets: { require: old.secrets },
        subdomains: { set: old.subdomains },
        routes: { replace: old.routes as RouteSpec[] },
      },
    });
    releases[old.releaseId] = {
      releaseId: old.releaseId,
      projectId: old.projectId,
      manifestDigest: old.manifestDigest,
      releaseDigest: digestMaterializedRelease(release),
      state: release,
      expose: null,
      activatedAt: old.activatedAt,
    };
  }
  return { ...state, version: 2, releases, plans: {} };
}
