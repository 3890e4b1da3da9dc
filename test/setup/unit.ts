/**
 * Setup of the unit tier (vitest project `unit`): a unit test starts no process and opens no
 * socket, so the tier is fast because of what it is. Every way to do either (child_process, a TCP
 * or UDP socket, a listening server, fetch) throws here, and a test during which one was tried fails
 * in its afterEach even when the code under it caught the throw. A test that needs a process, a
 * chain or a server belongs in `*.integration.test.ts` (or `*.e2e.test.ts`).
 */
import childProcess from "node:child_process";
import dgram from "node:dgram";
import { syncBuiltinESMExports } from "node:module";
import net from "node:net";
import { afterEach } from "vitest";

/** What was refused since the last test ended (the guard's own test takes them, test/setup/unit.test.ts). */
export const tried: string[] = [];

function refuse(what: string): never {
  const message = `A unit test may not ${what}: move this test to a *.integration.test.ts file (test/setup/unit.ts).`;
  tried.push(message);
  throw new Error(message);
}

for (const name of ["spawn", "spawnSync", "exec", "execSync", "execFile", "execFileSync", "fork"] as const) {
  Object.assign(childProcess, { [name]: () => refuse(`start a process (child_process.${name})`) });
}
net.Socket.prototype.connect = () => refuse("open a socket (net.Socket.connect)");
net.Server.prototype.listen = () => refuse("listen on a socket (net.Server.listen)");
Object.assign(dgram, { createSocket: () => refuse("open a UDP socket (dgram.createSocket)") });
// fetch (undici) connects below net's public API: refused here too. A test that stubs fetch replaces this.
globalThis.fetch = async () => refuse("fetch over the network");
// ESM imports of these modules (`import { spawn } from "node:child_process"`) see the refusals too.
syncBuiltinESMExports();

afterEach(() => {
  if (tried.length === 0) return;
  const message = tried.splice(0).join("\n");
  throw new Error(message);
});
