/**
 * The sandbox's application state (orgs, projects, releases, plans, idempotency records, ledger) as
 * one JSON document, written atomically after every mutation when a state directory is given.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";

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

/** A function as stored in a release. */
export interface FunctionEntry {
  runtime: string;
  code_hash: string;
  timeout_seconds: number | null;
  memory_mb: number | null;
  schedule: string | null;
}

/** One site file in a release. */
export interface SiteEntry {
  sha256: string;
  size: number;
  content_type: string;
}

/** The desired content of a release, without identity. */
export interface ReleaseBody {
  site: Record<string, SiteEntry>;
  functions: Record<string, FunctionEntry>;
  secrets: string[];
  subdomains: string[];
  routes: unknown[];
}

/** An activated release. */
export interface Release extends ReleaseBody {
  releaseId: string;
  projectId: string;
  manifestDigest: string;
  activatedAt: number;
}

/** A migration awaiting application. */
export interface PlannedMigration {
  id: string;
  checksum: string;
  sql: string;
}

/** A deploy plan (`POST /apply/v1/plans`). */
export interface Plan {
  planId: string;
  operationId: string;
  projectId: string;
  wallet: string;
  baseReleaseId: string | null;
  manifestDigest: string;
  target: ReleaseBody;
  migrations: PlannedMigration[];
  /** Secrets the release deletes on activation (`secrets.delete`). */
  deleteSecrets: string[];
  /** sha256 of every content object the release references. */
  content: string[];
  contentMeta: Record<string, { size: number; content_type: string }>;
  isNoop: boolean;
  idempotencyKey: string | null;
  /** The diff reported when planning (replayed for a repeated idempotency_key). */
  diff: unknown;
  createdAt: number;
  committed: boolean;
}

/** Deploy operation states, as the wire names them. */
export type OperationStatus = "running" | "migrating" | "activating" | "ready" | "failed" | "rolled_back";

/** A deploy operation (`POST /apply/v1/plans/:id/commit`). */
export interface Operation {
  operationId: string;
  projectId: string;
  planId: string;
  status: OperationStatus;
  releaseId: string | null;
  error: { code: string; message: string } | null;
  createdAt: number;
  updatedAt: number;
}

/** A content upload plan (`POST /content/v1/plans`). */
export interface ContentPlan {
  planId: string;
  projectId: string;
  expiresAt: number;
  items: { sha256: string; size: number; content_type: string }[];
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
  version: 1;
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
    version: 1,
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
    state = { ...state, ...(JSON.parse(readFileSync(file, "utf8")) as AppState) };
  }
  if (stateDir) mkdirSync(stateDir, { recursive: true });
  const store: StateStore = {
    state,
    save() {
      if (!file) return;
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(state));
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
