import { join } from "node:path";
import type { LocalAccount } from "viem";
import {
  type ApplyReleaseParameters,
  type ApplyReleaseReturnType,
  applyRelease,
} from "./actions/applyRelease.js";
import {
  type CreateProjectParameters,
  type CreateProjectReturnType,
  createProject,
} from "./actions/createProject.js";
import {
  type DeleteProjectParameters,
  type DeleteProjectReturnType,
  deleteProject,
} from "./actions/deleteProject.js";
import { type DeleteSecretParameters, deleteSecret } from "./actions/deleteSecret.js";
import {
  type GenerateImageParameters,
  type GenerateImageReturnType,
  generateImage,
} from "./actions/generateImage.js";
import {
  type GetActiveReleaseParameters,
  getActiveRelease,
  type ReleaseInventory,
} from "./actions/getActiveRelease.js";
import {
  type GetOperationParameters,
  type GetOperationReturnType,
  getOperation,
} from "./actions/getOperation.js";
import { type GetProjectReturnType, getProject } from "./actions/getProject.js";
import { type GetTierQuoteReturnType, getTierQuote } from "./actions/getTierQuote.js";
import { type GetTierStatusReturnType, getTierStatus } from "./actions/getTierStatus.js";
import { type ListProjectsReturnType, listProjects } from "./actions/listProjects.js";
import {
  type ListSecretsParameters,
  type ListSecretsReturnType,
  listSecrets,
} from "./actions/listSecrets.js";
import { type DeploySpec, type PlanReleaseReturnType, planRelease } from "./actions/planRelease.js";
import { type SetSecretParameters, setSecret } from "./actions/setSecret.js";
import { type SetTierParameters, type SetTierReturnType, setTier } from "./actions/setTier.js";
import type { ActionContext } from "./internal/context.js";
import type { Run402Event } from "./internal/events.js";
import type { Transport } from "./internal/http.js";
import { onLoopback } from "./internal/loopback.js";
import { atomicToUsd } from "./money.js";
import { deriveKey } from "./pay/idempotency.js";
import * as Journal from "./pay/journal.js";
import * as PgJournal from "./pay/journal-postgres.js";
import { lazyRail } from "./pay/lazyRail.js";
import type { Recovered, Unfinished } from "./pay/payer.js";
import * as Payer from "./pay/payer.js";
import type * as Policy from "./pay/policy.js";
import type { RailName } from "./pay/rail.js";
import type { Settlement } from "./Receipt.js";
import { configDir } from "./wallet.js";

/** Options for {@link createRun402}. */
export type CreateRun402Options = {
  /** API base URL (`https://api.run402.com`, or a sandbox's). */
  apiBase: string | URL;
  /** The paying wallet, usually from `resolveWallet()`. */
  wallet: { account: LocalAccount };
  /** The rail to pay on. */
  rail: RailName;
  /** Paid on only when the server does not offer `rail`. @default none: a missing rail is an error */
  fallbackRail?: RailName | undefined;
  /** Spend limits checked before anything is signed. */
  policy: Policy.SpendPolicy;
  /**
   * Durable payment journal: a file (one host), a PostgreSQL database shared by a fleet
   * (`{ url: "postgres://…" }`, see sdk/pay/journal-postgres.ts), or `false` (memory only).
   * @default { path: <RUN402_CONFIG_DIR or ~/.config/run402>/payment-journal.jsonl }
   */
  journal?: { path: string } | { url: string; schema?: string | undefined } | false | undefined;
  /** The wallet budget the journal enforces at claim time, across every process sharing it (see {@link Payer.CreateOptions}). */
  budget?: Payer.CreateOptions["budget"];
  /**
   * RPC endpoints of each rail's chain. A configured URL serves only the chain it reports; a
   * challenge on another chain is refused. Unset: each known chain's public RPC. Base's is used to
   * ask whether an x402 authorization was used (and to cancel one); Tempo's to sign MPP payments.
   */
  rpcUrls?: { base?: string | undefined; tempo?: string | undefined } | undefined;
  /** Origins besides the API's own that content uploads may go to (e.g. a storage bucket's). @default none */
  uploadOrigins?: string[] | undefined;
  /** Largest response body read, bytes. @default 16 MiB */
  maxResponseBytes?: number | undefined;
  /** @default globalThis.fetch */
  fetch?: typeof globalThis.fetch | undefined;
  /** Per-request timeout. @default 30000 */
  timeoutMs?: number | undefined;
  /**
   * Stops the client: once it fires, every request, wait and chain read ends with `RUN_CANCELLED`
   * (a payment already sent stays pending in the journal, for the next run to resolve).
   */
  signal?: AbortSignal | undefined;
  /** Progress and payment events; never carries keys. */
  onEvent?: ((event: Run402Event) => void) | undefined;
};

/** The typed Run402 client. */
export type Run402 = {
  tiers: {
    quote(): Promise<GetTierQuoteReturnType>;
    status(): Promise<GetTierStatusReturnType>;
    set(parameters: SetTierParameters): Promise<SetTierReturnType>;
  };
  projects: {
    create(parameters: CreateProjectParameters): Promise<CreateProjectReturnType>;
    get(projectId: string): Promise<GetProjectReturnType>;
    list(): Promise<ListProjectsReturnType>;
    delete(parameters: DeleteProjectParameters): Promise<DeleteProjectReturnType>;
  };
  deploy: {
    plan(parameters: {
      projectId: string;
      spec: DeploySpec;
      intent?: string | undefined;
    }): Promise<PlanReleaseReturnType>;
    apply(parameters: ApplyReleaseParameters): Promise<ApplyReleaseReturnType>;
    active(parameters: GetActiveReleaseParameters): Promise<ReleaseInventory>;
    operation(parameters: GetOperationParameters): Promise<GetOperationReturnType>;
  };
  secrets: {
    set(parameters: SetSecretParameters): Promise<void>;
    list(parameters: ListSecretsParameters): Promise<ListSecretsReturnType>;
    delete(parameters: DeleteSecretParameters): Promise<void>;
  };
  images: { generate(parameters: GenerateImageParameters): Promise<GenerateImageReturnType> };
  /** Settlements paid in this client's lifetime (replays of earlier runs' payments are not counted). */
  payments(): Settlement[];
  /** USD paid in this client's lifetime, including payments whose outcome is unknown. */
  spentUsd(): number;
  /**
   * The API server's time now (ms since the epoch), from the HTTP `Date` of its latest response plus
   * the time since; null before any response. Leases are measured on this clock.
   */
  serverNow(): number | null;
  /**
   * Resolves purchases earlier runs left unfinished against this API, without paying: repeats each
   * keyed request (the server replays a stored result) and asks the chain whether its credential was
   * used. A payment found is recorded with its transaction even if the server lost it. Purchases
   * through this client do this for their own intent; call it at start to settle the journal.
   * With `cancel`, a valid unused x402 authorization is cancelled on chain (a transaction).
   */
  recover(options?: { cancel?: boolean | undefined }): Promise<Recovered[]>;
  /** What earlier runs left unfinished against this API, from the journal alone (no request, no chain read). */
  unfinished(): Promise<Unfinished[]>;
};

/**
 * Creates a Run402 client that pays on the configured rail, within the spend policy, never twice.
 *
 * @example
 * import { createRun402, resolveWallet } from "pulumi-run402/sdk";
 * const r402 = createRun402({ apiBase: "https://api.run402.com", wallet: resolveWallet(), rail: "x402",
 *   policy: { maxPaymentUsd: 5, maxSpendUsd: 10 } });
 * const { settlement } = await r402.tiers.set({ tier: "prototype", intent: "urn:…:Tier::main/2026-11" });
 */
export function createRun402(options: CreateRun402Options): Run402 {
  const {
    wallet,
    rail,
    fallbackRail,
    policy,
    rpcUrls = {},
    fetch = globalThis.fetch,
    timeoutMs = 30_000,
    onEvent,
    signal,
  } = options;
  const apiBase = new URL(options.apiBase);
  const account = wallet.account;
  const journalOption =
    options.journal === undefined
      ? {
          path: join(configDir(), "payment-journal.jsonl"),
        }
      : options.journal;
  const journal = !journalOption
    ? Journal.memory()
    : "url" in journalOption
      ? PgJournal.open({ url: journalOption.url, schema: journalOption.schema })
      : Journal.open({ path: journalOption.path });

  // A local API (a sandbox) is paid on its own chains: never through a public RPC.
  const localApi = onLoopback(apiBase);
  // Each rail's library loads when the payer first needs that rail (see pay/lazyRail.ts).
  const rails = [
    lazyRail("x402", async () =>
      (await import("./pay/x402.js")).create({ account, rpcUrl: rpcUrls.base, signal, localApi }),
    ),
    lazyRail("mpp", async () =>
      (await import("./pay/mpp.js")).create({ account, rpcUrl: rpcUrls.tempo, signal, localApi }),
    ),
  ];
  const payer = Payer.create({
    rails,
    rail,
    fallbackRail,
    policy,
    journal,
    payer: account.address,
    budget: options.budget,
  });
  const transport: Transport = {
    apiBase,
    fetch,
    timeoutMs,
    account,
    uploadOrigins: options.uploadOrigins,
    maxResponseBytes: options.maxResponseBytes,
    signal,
    emit: (event) => {
      try {
        onEvent?.(event);
      } catch {
        // A failing listener must not change what the client does with money.
      }
    },
  };
  const ctx: ActionContext = { transport, payer };

  return {
    tiers: {
      quote: () => getTierQuote(ctx),
      status: () => getTierStatus(ctx),
      set: (p) => setTier(ctx, p),
    },
    projects: {
      create: (p) => createProject(ctx, p),
      get: (id) => getProject(ctx, id),
      list: () => listProjects(ctx),
      delete: (p) => deleteProject(ctx, p),
    },
    deploy: {
      plan: (p) =>
        planRelease(ctx, {
          projectId: p.projectId,
          spec: p.spec,
          idempotencyKey: p.intent
            ? deriveKey({ intent: p.intent, method: "POST", route: "/apply/v1/plans", body: p.spec })
            : undefined,
        }),
      apply: (p) => applyRelease(ctx, p),
      active: (p) => getActiveRelease(ctx, p),
      operation: (p) => getOperation(ctx, p),
    },
    secrets: {
      set: (p) => setSecret(ctx, p),
      list: (p) => listSecrets(ctx, p),
      delete: (p) => deleteSecret(ctx, p),
    },
    images: { generate: (p) => generateImage(ctx, p) },
    payments: () => payer.payments(),
    spentUsd: () => Number(atomicToUsd(payer.spentAtomic())),
    serverNow: () => (transport.clock ? transport.clock.server + (Date.now() - transport.clock.local) : null),
    recover: (o) => payer.recover(transport, o),
    unfinished: () => payer.unfinished(transport),
  };
}
