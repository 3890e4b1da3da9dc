import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, test } from "vitest";
import { bindOrigin, boundOrigin } from "./origin.js";

let dir: string;
const saved = process.env.RUN402_CONFIG_DIR;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "run402-origins-"));
  process.env.RUN402_CONFIG_DIR = dir;
});
afterEach(() => {
  if (saved === undefined) delete process.env.RUN402_CONFIG_DIR;
  else process.env.RUN402_CONFIG_DIR = saved;
  rmSync(dir, { recursive: true, force: true });
});

// The engine creates a stack's projects in parallel in one provider process: every binding is kept,
// and no write trips over another's temporary file.
test("bindings recorded at once by one process are all kept", async () => {
  const ids = Array.from({ length: 25 }, (_, i) => `prj_${i}`);
  await Promise.all(ids.map((id) => bindOrigin(id, "http://127.0.0.1:4020")));
  for (const id of ids) expect(await boundOrigin(id)).toBe("http://127.0.0.1:4020");
  const file = join(dir, "credentials", "pulumi-run402-origins.v1.json");
  expect(Object.keys(JSON.parse(readFileSync(file, "utf8")).projects)).toHaveLength(25);
});
