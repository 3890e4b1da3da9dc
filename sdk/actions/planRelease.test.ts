/**
 * The plan body we send, key for key against the one `@run402/sdk` 3.3.3 sends for the same ReleaseSpec.
 * The real client runs against a recording fetch that answers its first request after the plan with an
 * error, so only what it would put on the wire is compared.
 */
import { join } from "node:path";
import { Run402 } from "@run402/sdk";
import { describe, expect, test } from "vitest";
import { loadManifest, resolveManifest } from "../../provider/manifest/index.js";
import { validDir, validManifests } from "../../test/manifests/corpus.js";
import { MANIFEST_CONTENT_TYPE, PLAN_BODY_LIMIT_BYTES, planBody, toWireSpec } from "./planRelease.js";

type Recorded = { method: string; path: string; body: unknown };

/** The body `@run402/sdk` POSTs to /apply/v1/plans for `spec`, or the error it refuses the spec with. */
async function realPlanBody(spec: Record<string, unknown>): Promise<Recorded | Error> {
  const requests: Recorded[] = [];
  const fetch = async (url: string | URL | Request, init?: RequestInit) => {
    const u = new URL(String(url));
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
    requests.push({ method: init?.method ?? "GET", path: u.pathname, body });
    return Response.json({ code: "STOP", message: "recorded" }, { status: 418 });
  };
  const credentials = {
    getAuth: async () => ({}),
    getProject: async () => ({ anon_key: "anon", service_key: "service" }),
  };
  const r = new Run402({ apiBase: "http://run402.test", credentials: credentials as never, fetch });
  try {
    await (await r.project(spec["project"] as string)).apply(spec as never, { maxRetries: 0 });
  } catch (error) {
    const plan = requests.find((q) => q.method === "POST" && q.path === "/apply/v1/plans");
    return plan ?? (error as Error);
  }
  throw new Error("the recording fetch let a deploy through");
}

describe("toWireSpec", () => {
  test("every corpus spec goes on the wire as @run402/sdk 3.3.3 sends it, or 3.3.3 refuses a field it predates", async () => {
    let compared = 0;
    const newer: string[] = [];
    for (const file of validManifests) {
      const { manifest, dir } = await loadManifest(join(validDir, file));
      const { spec } = await resolveManifest({ manifest, dir, projectId: "prj_wire" });
      const real = await realPlanBody(spec as unknown as Record<string, unknown>);
      if (real instanceof Error) {
        // 3.3.3 is older than Run402's current manifest: it refuses these fields before sending anything.
        // It also wants `checks` to be a list, where @run402/release, the oracle, allows only null, and
        // methods on static routes, which Run402's docs leave out and @run402/release defaults to GET, HEAD.
        expect(real.message, file).toMatch(
          /triggers|capabilities|pricing|deps|assets|i18n|public_paths|checks|routes\.replace\.\d+\.methods/,
        );
        newer.push(file);
        continue;
      }
      expect(planBody({ projectId: "prj_wire", spec }), file).toEqual(real.body);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(30);
    expect(newer.length).toBeLessThan(validManifests.length / 3);
  });

  test("inline SQL travels as sql_ref content, as the real client sends it", async () => {
    const spec = {
      project: "prj_wire",
      database: {
        migrations: [
          {
            id: "001",
            checksum: "822ae07d4783158bc1912bb623e5107cc9002d519e1143a9c200ed6ee18b6d0f",
            sql: "select 1",
          },
        ],
      },
    };
    const real = await realPlanBody(spec);
    expect(real).not.toBeInstanceOf(Error);
    expect(planBody({ projectId: "prj_wire", spec })).toEqual((real as Recorded).body);
    expect(toWireSpec(spec)).toMatchObject({
      database: {
        migrations: [
          {
            id: "001",
            sql_ref: {
              sha256: spec.database.migrations[0]?.checksum,
              size: 8,
              content_type: "application/sql",
            },
          },
        ],
      },
    });
  });

  test("a spec over 5 MiB is planned by manifest_ref, with only the project inline", () => {
    const ref = {
      sha256: "c".repeat(64),
      size: PLAN_BODY_LIMIT_BYTES + 1,
      content_type: MANIFEST_CONTENT_TYPE,
    };
    expect(planBody({ projectId: "prj_wire", spec: {}, manifestRef: ref, idempotencyKey: "k" })).toEqual({
      spec: { project_id: "prj_wire" },
      manifest_ref: ref,
      idempotency_key: "k",
    });
  });
});
