import { describe, expect, test } from "vitest";
import { onLoopback } from "./loopback.js";

describe("onLoopback", () => {
  test("behavior: every way of naming this machine is loopback (a sandbox: never a public RPC)", () => {
    for (const url of [
      "http://localhost:4402",
      "http://LOCALHOST.:4402",
      "http://api.localhost:4402",
      "http://127.0.0.1:4402",
      "http://127.9.8.7",
      "http://0.0.0.0:4402",
      "http://[::1]:4402",
      "http://[::]:4402",
      "http://[::ffff:127.0.0.1]:4402",
    ])
      expect(onLoopback(url), url).toBe(true);
  });

  test("behavior: other hosts, and what is not a URL, are not", () => {
    for (const url of ["https://api.run402.com", "http://10.0.0.1", "http://[::ffff:10.0.0.1]", "not a url"])
      expect(onLoopback(url), url).toBe(false);
  });
});
