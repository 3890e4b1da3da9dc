/**
 * Per-process provider state: the validated stack config and one Run402 client, built lazily on
 * first use. One provider process serves one Pulumi operation, so the client's spend counter is
 * the per-run total that `run402:maxSpendUsd` caps. Building it first resolves what earlier runs
 * left unfinished in the payment journal (recovery at start).
 */
import { hostname } from "node:os";
import {
  createRun402,
  type Recovered,
  type Run402,
  resolveWallet,
  type Settlement,
} from "../../sdk/index.js";
import { checkLocalRpcs, type ProviderConfig, readConfig } from "../config.js";
import { publish } from "./progress.js";

/** Everything a handler needs. */
export interface Context {
  config: ProviderConfig;
  client: Run402;
  rail: "x402" | "mpp";
  wallet: string;
  /** The API server's clock (HTTP Date header of its latest response), which leases are measured against. */
  serverNow(): Promise<number>;
  /**
   * The newest settlement recovery finds (delivered, or paid on chain) for an intent starting with
   * `prefix` (a Tier's purchases: `tier/<wallet>/`), or null. Recovery asks the server and the chain,
   * so only handlers that run at apply (create, update) may call it; it runs once per process.
   */
  recoveredSettlement(prefix: string): Promise<Settlement | null>;
}

let config: ProviderConfig | undefined;
let context: Promise<Context> | undefined;

/** Stores the stack config; called by Pulumi before any other provider method. */
export function configure(get: (key: string) => string | undefined): void {
  const next = readConfig(get);
  checkLocalRpcs(next, next.rail ?? walletRail(next) ?? "x402");
  // Pulumi configures once per resource kind in one process; keep the client (and so the run's
  // spend total that run402:maxSpendUsd caps) unless the config really changed.
  if (config && JSON.stringify(config) === JSON.stringify(next)) return;
  config = next;
  context = undefined;
}

/** The validated settings of this process, once Pulumi configured it (for error messages). */
export function configured(): ProviderConfig | undefined {
  return config;
}

/** The configured context; throws a clear error when the wallet or config is missing. */
export function getContext(): Promise<Context> {
  // Pulumi always configures first; defaults apply if it ever does not.
  if (!config) configure(() => undefined);
  context ??= build(config as ProviderConfig).catch((error: unknown) => {
    context = undefined;
    throw error;
  });
  return context;
}

/**
 * The engine's cancel: aborted by the plugin launcher (scripts/pulumi-resource-pulumi-nodejs.cjs)
 * when the engine sends Cancel (its first SIGINT). Undefined in a process without that launcher.
 */
export function engineCancel(): AbortSignal | undefined {
  const controller = (globalThis as Record<symbol, unknown>)[Symbol.for("run402.engineCancel")];
  return controller instanceof AbortController ? controller.signal : undefined;
}

/** The rail the wallet's allowance file names, as {@link build} resolves it; none when it names none or is missing. */
function walletRail(config: ProviderConfig): "x402" | "mpp" | undefined {
  try {
    return resolveWallet({ privateKey: config.privateKey as `0x${string}` | undefined }).rail;
  } catch {
    // No wallet yet: building the context reports that.
    return undefined;
  }
}

async function build(config: ProviderConfig): Promise<Context> {
  const wallet = resolveWallet({ privateKey: config.privateKey as `0x${string}` | undefined });
  const rail = config.rail ?? wallet.rail ?? "x402";
  const client = createRun402({
    apiBase: config.apiBase,
    wallet,
    rail,
    ...(config.fallbackRail ? { fallbackRail: config.fallbackRail } : {}),
    policy: {
      maxPaymentUsd: config.maxPaymentUsd,
      maxSpendUsd: config.maxSpendUsd,
      ...(config.allowedRecipients ? { allowedRecipients: config.allowedRecipients } : {}),
      // Unset: the chains of the configured RPCs, else the testnets (a mainnet is the operator's choice).
      ...(config.allowedNetworks ? { allowedNetworks: config.allowedNetworks } : {}),
    },
    // Presigned upload hosts besides the API's own origin (Run402 may upload to a storage bucket).
    ...(config.uploadOrigins ? { uploadOrigins: config.uploadOrigins } : {}),
    // run402:journal (a PostgreSQL URL shared by a fleet) first; else run402:journalPath; else a
    // postgres:// state backend's own database (PULUMI_BACKEND_URL); else the SDK's file beside the run402 allowance
    // (RUN402_CONFIG_DIR or ~/.config/run402), for one host.
    ...journalOf(config),
    // The journal sums this run's claims against run402:maxSpendUsd (across the processes of one
    // CLI command or one reconcile), and the wallet's against run402:budgetUsd per budgetPeriod.
    budget: {
      run: { id: config.runId ?? runId, maxUsd: config.maxSpendUsd },
      ...(config.budgetUsd !== undefined
        ? { window: { seconds: config.budgetPeriod, maxUsd: config.budgetUsd } }
        : {}),
    },
    rpcUrls: {
      ...(config.baseRpcUrl ? { base: config.baseRpcUrl } : {}),
      ...(config.tempoRpcUrl ? { tempo: config.tempoRpcUrl } : {}),
    },
    // Progress lines for the engine (and the CLI).
    onEvent: publish,
    // The engine's cancel ends every request and wait; a payment already sent stays pending.
    signal: engineCancel(),
  });
  // No recovery at start: this may be a check, a preview or a plan, and asking the server for an
  // earlier result repeats a keyed request it could answer by selling. Earlier runs' unfinished
  // purchases are reported from the journal alone; an apply resolves each when it gets to it.
  const unfinished = await client.unfinished().catch(() => []);
  for (const u of unfinished) {
    publish({
      type: "payment.unfinished",
      intentId: u.intentId,
      state: u.state,
      amountUsd: u.amountUsd,
    });
  }
  let recovered: Promise<Recovered[]> | undefined;
  return {
    config,
    client,
    rail,
    wallet: wallet.account.address,
    // Asked of the server only when no response has told it yet (plan reads the status first).
    serverNow: async () => client.serverNow() ?? serverNow(config.apiBase),
    async recoveredSettlement(prefix) {
      // A failure leaves the journal as it was: the purchase itself resolves its own intent again.
      recovered ??= client.recover().catch(() => [] as Recovered[]);
      const found = (await recovered)
        .filter((r) => r.intentId.startsWith(prefix) && r.settlement)
        .map((r) => r.settlement as Settlement)
        .sort((a, b) => Date.parse(b.settledAt) - Date.parse(a.settledAt));
      return found[0] ?? null;
    },
  };
}

/**
 * The run id when the run names none (a plain `pulumi up`): the engine that started this plugin
 * (its parent), so every provider process of one engine run (an explicit provider starts its own)
 * sums its claims against one `maxSpendUsd`, never one cap each.
 */
const runId = `engine:${hostname()}:${process.ppid}`;

/** The journal the config names (see {@link build}). */
export function journalOf(
  config: Pick<ProviderConfig, "journal" | "journalPath">,
  env: NodeJS.ProcessEnv = process.env,
): { journal?: { path: string } | { url: string } } {
  if (config.journal) return { journal: { url: config.journal } };
  if (config.journalPath) return { journal: { path: config.journalPath } };
  const backend = env.PULUMI_BACKEND_URL ?? "";
  return /^postgres(ql)?:\/\//i.test(backend) ? { journal: { url: backend } } : {};
}

async function serverNow(apiBase: string): Promise<number> {
  const response = await fetch(`${apiBase}/tiers/v1`, {
    redirect: "manual",
    signal: AbortSignal.any([
      AbortSignal.timeout(15_000),
      ...(engineCancel() ? [engineCancel() as AbortSignal] : []),
    ]),
  });
  await response.body?.cancel();
  const date = Date.parse(response.headers.get("date") ?? "");
  return Number.isFinite(date) ? date : Date.now();
}
