import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";

// The project exists on Run402 (the API is the part mocked here); what is tested is the key store.
vi.mock("./context.js", () => ({
  getContext: async () => ({
    client: { projects: { get: async () => ({ name: "shop" }) } },
    config: { apiBase: "https://api.run402.com" },
  }),
}));
// The unit tier shares its module registry across files: load fresh modules, so the mock applies.
vi.resetModules();
const { BaseError } = await import("../../core/errors.js");
const { handlers } = await import("../impl.js");
const { project } = await import("./project.js");

let dir: string;
const saved = process.env.RUN402_CONFIG_DIR;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "run402-keys-"));
  process.env.RUN402_CONFIG_DIR = dir;
});
afterEach(() => {
  if (saved === undefined) delete process.env.RUN402_CONFIG_DIR;
  else process.env.RUN402_CONFIG_DIR = saved;
  rmSync(dir, { recursive: true, force: true });
});

const adopt = { name: "shop", resourceKey: "urn:x", adoptProjectId: "prj_1" };

describe("adopting a project", () => {
  test("error: without its keys in the key store: PROJECT_KEYS_NOT_FOUND, across the engine too", async () => {
    const error = await project.create(adopt).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BaseError);
    expect((error as InstanceType<typeof BaseError>).code).toBe("PROJECT_KEYS_NOT_FOUND");
    expect((error as InstanceType<typeof BaseError>).message).toMatch(
      /Project prj_1 exists but its keys are not in the run402 key store/,
    );
    await expect(handlers.project.create(adopt)).rejects.toThrow(/^\[PROJECT_KEYS_NOT_FOUND\] Project prj_1/);
  });

  test("error: a key store that is not JSON: PROJECT_KEYS_UNREADABLE, naming the file only", async () => {
    mkdirSync(join(dir, "credentials"));
    writeFileSync(
      join(dir, "credentials", "project-keys.v1.json"),
      '{"projects": {"prj_1": {"service_key": "sk_secret"',
    );
    await expect(handlers.project.create(adopt)).rejects.toThrow(
      /^\[PROJECT_KEYS_UNREADABLE\] The run402 key store .*project-keys\.v1\.json is not valid JSON\.$/,
    );
  });

  test("default: with its keys in the key store, it is adopted", async () => {
    mkdirSync(join(dir, "credentials"));
    writeFileSync(
      join(dir, "credentials", "project-keys.v1.json"),
      JSON.stringify({ projects: { prj_1: { anon_key: "ak", service_key: "sk" } } }),
    );
    const created = await project.create(adopt);
    expect(created.id).toBe("prj_1");
    expect(created.outs).toMatchObject({ projectId: "prj_1", anonKey: "ak", serviceKey: "sk", name: "shop" });
  });
});
