import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, test } from "vitest";
import { createRun402 } from "../client.js";

const account = privateKeyToAccount(`0x${"11".repeat(32)}`);
const row = (id: string, extra: Record<string, unknown> = {}) => ({ project_id: id, name: id, ...extra });

describe("listProjects", () => {
  test("behavior: follows every page and drops deleted or archived rows", async () => {
    const seen: string[] = [];
    const fetch = (async (input: string | URL | Request) => {
      const url = new URL(String(input instanceof Request ? input.url : input));
      seen.push(url.search);
      const page =
        url.searchParams.get("after") === "c1"
          ? {
              projects: [row("prj_3"), row("prj_4", { archived_at: "2026-01-01T00:00:00Z" })],
              has_more: false,
            }
          : {
              projects: [row("prj_1"), row("prj_2", { deleted_at: "2026-01-01T00:00:00Z" })],
              has_more: true,
              next_cursor: "c1",
            };
      return new Response(JSON.stringify(page), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    }) as typeof globalThis.fetch;
    const r402 = createRun402({
      apiBase: "http://127.0.0.1:9",
      wallet: { account },
      rail: "x402",
      policy: { maxPaymentUsd: 1, maxSpendUsd: 1 },
      journal: false,
      fetch,
    });
    const listed = await r402.projects.list();
    expect(listed.projects.map((p) => p.project_id)).toEqual(["prj_1", "prj_3"]);
    expect(seen).toEqual(["?limit=200", "?limit=200&after=c1"]);
  });
});
