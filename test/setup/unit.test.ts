/** The unit tier's guard (test/setup/unit.ts) refuses processes and sockets, even when the code under test catches the refusal. */
import { execFile, spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { createServer as createHttpServer, request } from "node:http";
import { connect, createServer } from "node:net";
import { describe, expect, test } from "vitest";
import { tried } from "./unit.js";

describe("the unit tier", () => {
  test("error: starting a process is refused", () => {
    expect(() => spawnSync("true")).toThrow(
      /A unit test may not start a process \(child_process\.spawnSync\)/,
    );
    expect(() => spawn("true")).toThrow(/child_process\.spawn\)/);
    expect(() => execFile("true")).toThrow(/child_process\.execFile\)/);
    expect(tried.splice(0)).toHaveLength(3);
  });

  test("error: opening, serving or fetching over a socket is refused", async () => {
    expect(() => connect(9, "127.0.0.1")).toThrow(/may not open a socket/);
    expect(() => request("http://127.0.0.1:9/").end()).toThrow(/may not open a socket/);
    expect(() => createServer().listen(0)).toThrow(/may not listen on a socket/);
    expect(() => createHttpServer().listen(0)).toThrow(/may not listen on a socket/);
    expect(() => createSocket("udp4")).toThrow(/may not open a UDP socket/);
    await expect(fetch("http://127.0.0.1:9/")).rejects.toThrow(/may not fetch/);
    expect(tried.splice(0)).toHaveLength(6);
  });

  test("error: a refusal the code under test swallowed is still recorded for the test's end", () => {
    try {
      spawnSync("true");
    } catch {
      // what careless code would do
    }
    expect(tried).toHaveLength(1);
    tried.splice(0);
  });
});
