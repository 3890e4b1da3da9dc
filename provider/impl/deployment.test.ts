import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  canonicalizeJson,
  digestMaterializedRelease,
  materializeRelease,
  type PortableReleaseState,
} from "@run402/release";
import { afterAll, describe, expect, test } from "vitest";
import { fixture } from "~test/contract/fixtures.js";
import { MANIFEST_CACHE } from "../manifest/cache.js";
import {
  deployment,
  FILES_LISTED,
  type Inputs,
  mismatch,
  type Outputs,
  RELEASE_PACK_BYTES,
  recordedRelease,
  recordOf,
  stateOf,
} from "./deployment.js";
import { secret } from "./secret.js";

type Inventory = Parameters<typeof stateOf>[0];
const inventory = () => structuredClone(fixture("release-active").body) as Inventory;
const sha = (n: number) => n.toString(16).padStart(64, "0");

/** A planned release with `count` site files (and nothing else). */
function planned(count: number): PortableReleaseState {
  const replace = Object.fromEntries(
    Array.from({ length: count }, (_, i) => [
      `f${String(i).padStart(5, "0")}.txt`,
      { sha256: sha(i + 1), size: 1, contentType: "text/plain" },
    ]),
  );
  return materializeRelease({ spec: { project: "prj_x", site: { replace } } as never });
}

/** Run402's inventory of `release`, listing at most `limit` site paths (kychee-com/run402 deploy.types.ts ReleaseInventoryBase). */
function inventoryOf(release: PortableReleaseState, limit = 5000): Inventory {
  return {
    kind: "release_inventory",
    release_id: "rel_1",
    state_kind: "current_live",
    static_manifest_sha256: "d".repeat(64),
    site: {
      paths: release.site.paths
        .slice(0, limit)
        .map(({ path, content_sha256, content_type }) => ({ path, content_sha256, content_type })),
      totals: { paths: release.site.paths.length },
    },
    functions: [],
    secrets: { keys: [] },
    subdomains: { names: [] },
    routes: { manifest_sha256: release.routes.manifest_sha256, entries: release.routes.entries },
    migrations_applied: [],
  };
}

describe("the live release is an inventory", () => {
  test("behavior: an inventory with a function (no deps, no auth gates) is read", () => {
    const state = stateOf(inventory());
    expect(state.functions).toMatchObject([
      { name: "api", deps: [], require_auth: false, require_role: null },
    ]);
    expect(state.migrations).toEqual([
      { migration_id: "001_init", checksum_hex: "e".repeat(64), transaction: "default" },
    ]);
    expect(() => digestMaterializedRelease(state)).not.toThrow();
  });

  test("behavior: the inventory of the planned release matches it, so the planned digest is recorded", () => {
    const release = planned(3);
    expect(mismatch(release, inventoryOf(release))).toBeNull();
  });

  test("behavior: a site over 5,000 files listed up to the limit still matches by count and listed paths", () => {
    const release = planned(5_200);
    expect(mismatch(release, inventoryOf(release, 5_000))).toBeNull();
  });

  test("error: a truncated inventory of another site is not taken for the planned one", () => {
    const release = planned(5_200);
    const bigger = planned(5_201);
    expect(mismatch(release, inventoryOf(bigger, 5_000))).toMatch(/5201 paths/);
    const changed = inventoryOf(release, 5_000);
    changed.site!.paths![10]!.content_sha256 = sha(999_999);
    expect(mismatch(release, changed)).toMatch(/site path f00010\.txt differs/);
  });

  test("error: a function, secret or migration the plan has but the server lacks is a mismatch", () => {
    const base = planned(1);
    const withFn: PortableReleaseState = {
      ...base,
      functions: [
        {
          name: "api",
          code_hash: "b".repeat(64),
          runtime: "node22",
          timeout_seconds: 10,
          memory_mb: 128,
          schedule: null,
          deps: ["zod"],
          require_auth: true,
          require_role: null,
        },
      ],
    };
    const inv = inventoryOf(withFn);
    expect(mismatch(withFn, inv)).toBe("the functions differ");
    inv.functions = [
      {
        name: "api",
        code_hash: "b".repeat(64),
        runtime: "node22",
        timeout_seconds: 10,
        memory_mb: 128,
        schedule: null,
      },
    ];
    expect(mismatch(withFn, inv)).toBeNull();
    inv.functions = [
      {
        name: "api",
        code_hash: "b".repeat(64),
        runtime: "node22",
        timeout_seconds: 30,
        memory_mb: 128,
        schedule: null,
      },
    ];
    expect(mismatch(withFn, inv)).toMatch(/timeout_seconds/);
  });
});

describe("the recorded release of a large site stays small", () => {
  test("behavior: the digest recorded is @run402/release's, and the text reads back as the release, packed or not", () => {
    for (const release of [planned(3), planned(2_000), stateOf(inventory())]) {
      const record = recordOf(release);
      expect(record.releaseDigest).toBe(digestMaterializedRelease(release));
      expect(recordedRelease(record.release)).toEqual(release);
      const text = canonicalizeJson(release);
      if (text.length <= RELEASE_PACK_BYTES) expect(record.release).toBe(text);
      else {
        expect(record.release.startsWith("br64:")).toBe(true);
        expect(record.release.length).toBeLessThan(text.length / 3);
      }
    }
    // States written before packing hold the text, or (older still) the object.
    const release = planned(2_000);
    expect(recordedRelease(canonicalizeJson(release))).toEqual(release);
    expect(recordedRelease(release)).toEqual(release);
  });

  const dir = mkdtempSync(join(tmpdir(), "run402-deployment-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("behavior: with a packed release recorded, one changed file is planned as that change, and diff sees it", async () => {
    mkdirSync(join(dir, "site"));
    // More files than `files` lists: the change is seen through the digests, not the map.
    for (let i = 0; i <= FILES_LISTED; i++)
      writeFileSync(join(dir, "site", `f${String(i).padStart(4, "0")}.txt`), `file ${i}`);
    writeFileSync(join(dir, "app.json"), JSON.stringify({ project: { name: "big" }, site: { dir: "site" } }));
    const news = { projectId: "prj_big", anonKey: "anon", manifest: "app.json", baseDir: dir };
    const first = await deployment.check({}, news);
    const planned = first.inputs as Inputs;
    expect(planned.release.startsWith("br64:")).toBe(true);
    expect(planned.files).toEqual({});
    expect(recordedRelease(planned.release)?.site.paths).toHaveLength(FILES_LISTED + 1);
    // As create records it: the planned record, the live release id.
    const olds = {
      ...planned,
      releaseId: "rel_1",
      url: "",
      uploaded: [],
      apiOrigin: null,
    } as unknown as Outputs;

    const same = (await deployment.check(olds, news)).inputs as Inputs;
    expect(same.releaseDigest).toBe(olds.releaseDigest);
    expect((await deployment.diff("prj_big/deployment", olds, same)).changes).toBe(false);

    writeFileSync(join(dir, "site", "f0123.txt"), "changed");
    const next = (await deployment.check(olds, news)).inputs as Inputs;
    expect(next.changes.site).toEqual({ added: [], removed: [], changed: ["f0123.txt"] });
    expect(next.releaseDigest).not.toBe(olds.releaseDigest);
    expect((await deployment.diff("prj_big/deployment", olds, next)).changes).toBe(true);
    expect(recordedRelease(next.release)?.site.paths.find((p) => p.path === "f0123.txt")?.size_bytes).toBe(7);
  });
});

describe("issue 25: the Deployments of one manifest resolve and plan it once", () => {
  const dir = mkdtempSync(join(tmpdir(), "run402-deployment-cache-"));
  const racyMs = MANIFEST_CACHE.racyMs;
  afterAll(() => {
    MANIFEST_CACHE.racyMs = racyMs;
    rmSync(dir, { recursive: true, force: true });
  });

  test("behavior: checks of an unchanged manifest share one plan; a same-size edit is planned anew", async () => {
    mkdirSync(join(dir, "site"));
    writeFileSync(join(dir, "site", "index.html"), "<h1>one</h1>");
    writeFileSync(join(dir, "app.json"), JSON.stringify({ project: { name: "p" }, site: { dir: "site" } }));
    // The files are taken as settled at once (they would be after MANIFEST_CACHE.racyMs).
    MANIFEST_CACHE.racyMs = 0;
    await new Promise((resolve) => setTimeout(resolve, 20));
    const news = (i: number) => ({
      projectId: `prj_${i}`,
      anonKey: "anon",
      manifest: "app.json",
      baseDir: dir,
    });
    const created = (await deployment.check({}, news(0))).inputs as Inputs;
    const olds = (i: number) =>
      ({
        ...created,
        projectId: `prj_${i}`,
        releaseId: "rel_1",
        url: "",
        uploaded: [],
        apiOrigin: null,
      }) as unknown as Outputs;
    const [a, b] = await Promise.all(
      [1, 2].map(async (i) => (await deployment.check(olds(i), news(i))).inputs as Inputs),
    );
    expect(a?.changes).toBe(b?.changes);
    expect(a?.releaseDigest).toBe(created.releaseDigest);
    expect((await deployment.diff("prj_1/deployment", olds(1), a as Inputs)).changes).toBe(false);

    writeFileSync(join(dir, "site", "index.html"), "<h1>two</h1>");
    const { atime, mtime } = statSync(join(dir, "site", "index.html"));
    utimesSync(join(dir, "site", "index.html"), atime, new Date(mtime.getTime() - 60_000));
    const next = (await deployment.check(olds(1), news(1))).inputs as Inputs;
    expect(next.changes.site).toEqual({ added: [], removed: [], changed: ["index.html"] });
    expect(next.releaseDigest).not.toBe(created.releaseDigest);
    expect((await deployment.diff("prj_1/deployment", olds(1), next)).changes).toBe(true);
  });
});

describe("a release read from Run402 (an import, or another live release)", () => {
  /** A recorded state whose release is `release` as Run402's inventory reported it. */
  const liveState = (release: PortableReleaseState) => {
    const state = stateOf(inventoryOf(release));
    return {
      projectId: "prj_x",
      anonKey: "anon",
      manifest: "app.json",
      manifestDigest: "live:rel_1",
      releaseDigest: digestMaterializedRelease(state),
      release: canonicalizeJson(state),
    } as unknown as Parameters<typeof deployment.diff>[1];
  };
  /** What check plans for a manifest whose release is `release`. */
  const plannedInputs = (release: PortableReleaseState) =>
    ({
      projectId: "prj_x",
      anonKey: "anon",
      manifest: "app.json",
      manifestDigest: "a".repeat(64),
      releaseDigest: digestMaterializedRelease(release),
      release: canonicalizeJson(release),
    }) as unknown as Parameters<typeof deployment.diff>[2];

  test("behavior: when it serves what the manifest plans, the next diff has nothing to deploy", async () => {
    const release = planned(3);
    expect(
      (await deployment.diff("prj_x/deployment", liveState(release), plannedInputs(release))).changes,
    ).toBe(false);
  });

  test("behavior: when it serves something else, the manifest is deployed", async () => {
    const diff = await deployment.diff("prj_x/deployment", liveState(planned(2)), plannedInputs(planned(3)));
    expect(diff.changes).toBe(true);
  });

  test("behavior: a live function without the auth gate the program now sets is deployed again, not taken as served", async () => {
    const fn = (requireAuth: boolean) => ({
      ...planned(1),
      functions: [
        {
          name: "api",
          code_hash: "b".repeat(64),
          runtime: "node22" as const,
          timeout_seconds: 10,
          memory_mb: 128,
          schedule: null,
          deps: [],
          require_auth: requireAuth,
          require_role: null,
        },
      ],
    });
    // The live state as recorded (its functions as the inventory reported them).
    const live = (release: PortableReleaseState) =>
      ({
        ...liveState(release),
        releaseDigest: digestMaterializedRelease(release),
        release: canonicalizeJson(release),
      }) as unknown as Parameters<typeof deployment.diff>[1];
    expect(
      (await deployment.diff("prj_x/deployment", live(fn(false)), plannedInputs(fn(false)))).changes,
    ).toBe(false);
    expect(
      (await deployment.diff("prj_x/deployment", live(fn(false)), plannedInputs(fn(true)))).changes,
    ).toBe(true);
  });

  test("behavior: a release this stack deployed is compared by digest, as before", async () => {
    const release = planned(3);
    const mine = { ...liveState(release), manifestDigest: "b".repeat(64) };
    expect((await deployment.diff("prj_x/deployment", mine, plannedInputs(release))).changes).toBe(true);
  });

  test("behavior: pulumi import's check of the inputs its read reported (no manifest) passes them through", async () => {
    const { release: _r, ...read } = liveState(planned(1)) as unknown as Record<string, unknown>;
    delete read.manifest;
    expect(await deployment.check(read, read)).toEqual({ inputs: read });
    // A program's Deployment without a manifest is still refused.
    expect((await deployment.check({}, { projectId: "prj_x" })).failures?.[0]?.property).toBe("manifest");
  });
});

describe("Secret: an imported secret has no value", () => {
  test("behavior: pulumi import's check passes the read inputs (no value: Run402 never returns one); the next up's diff writes the program's", async () => {
    const read = { projectId: "prj_x", serviceKey: "svc", name: "API_TOKEN" };
    expect(await secret.check(read, read)).toEqual({ inputs: read });
    const diff = await secret.diff("prj_x/API_TOKEN", read as never, { ...read, value: "v" } as never);
    expect(diff).toMatchObject({ changes: true, replaces: [] });
  });

  test("error: a program's Secret without a value is still refused", async () => {
    const news = { projectId: "prj_x", serviceKey: "svc", name: "API_TOKEN" };
    expect((await secret.check({}, news)).failures?.[0]?.property).toBe("value");
    const olds = { ...news, value: "old" };
    expect((await secret.check(olds, news)).failures?.[0]?.property).toBe("value");
  });
});
