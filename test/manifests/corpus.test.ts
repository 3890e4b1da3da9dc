/**
 * The manifest corpus (test/manifests/README.md) against Run402's own code: `@run402/release` must
 * accept the ReleaseSpec every valid manifest maps to, and the field-support matrix it ships must be
 * covered; every negative case is refused with its pointer, and where Run402 refuses it too (its
 * release validator, or its deploy-manifest normalizer in @run402/sdk) the test asks Run402.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import {
  digestMaterializedRelease,
  digestPortableManifest,
  materializeRelease,
  parseReleaseSpec,
  ReleaseCoreError,
  type ReleaseSpec,
} from "@run402/release";
import { normalizeDeployManifest } from "@run402/sdk/node";
import { describe, expect, test } from "vitest";
import { loadManifest, resolveManifest } from "../../provider/manifest/index.js";
import { validateManifest } from "../../schema/validate.js";
import { negativeCases, validDir, validManifests } from "./corpus.js";

const negatives = negativeCases();

/** The fields of @run402/release's docs/field-support.md, as shipped in the npm package. */
function matrixFields(): string[] {
  const folders = createRequire(import.meta.url).resolve.paths("@run402/release") ?? [];
  for (const folder of folders) {
    let text: string;
    try {
      text = readFileSync(join(folder, "@run402/release/docs/field-support.md"), "utf8");
    } catch {
      continue;
    }
    return [...text.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] as string);
  }
  throw new Error("@run402/release's field-support.md was not found");
}

/** Whether `spec` sets the matrix field (`functions.*.triggers[]`, `routes[].pricing`, `base.release_id`, …). */
function sets(spec: unknown, field: string): boolean {
  const path = field
    .replace(/^functions\.\*\./, "functions.<fn>.")
    .replace(/^routes\[\]/, "routes.replace[]")
    .split(".");
  const walk = (node: unknown, parts: string[]): boolean => {
    if (parts.length === 0) return node !== undefined;
    if (node === null || typeof node !== "object") return false;
    const [head, ...rest] = parts as [string, ...string[]];
    const obj = node as Record<string, unknown>;
    if (head === "<fn>") {
      const fns = { ...(obj["replace"] as object), ...((obj["patch"] as { set?: object })?.set ?? {}) };
      return Object.values(fns).some((fn) => walk(fn, rest));
    }
    if (head.endsWith("[]")) {
      const list = obj[head.slice(0, -2)];
      if (!Array.isArray(list)) return false;
      return rest.length === 0 ? list.length > 0 : list.some((item) => walk(item, rest));
    }
    return head in obj && walk(obj[head], rest);
  };
  return walk(spec, path);
}

async function resolved(file: string) {
  const { manifest, dir } = await loadManifest(join(validDir, file));
  return resolveManifest({ manifest, dir, projectId: "prj_corpus" });
}

describe("the valid corpus", () => {
  test.each(validManifests)(
    "%s: validates, and @run402/release accepts, digests and materializes it",
    async (file) => {
      const { manifest } = await loadManifest(join(validDir, file));
      expect(validateManifest(manifest)).toEqual({ ok: true, manifest });
      const release = await resolved(file);
      expect(parseReleaseSpec(release.spec)).toBe(release.spec);
      expect(release.digest).toBe(digestPortableManifest(release.spec));
      const state = materializeRelease({ spec: release.spec });
      expect(digestMaterializedRelease(state)).toMatch(/^run402-materialized-release-v1:[0-9a-f]{64}$/);
    },
  );

  test("covers every field of @run402/release's field-support matrix", async () => {
    const specs: ReleaseSpec[] = [];
    for (const file of validManifests) specs.push((await resolved(file)).spec);
    const fields = matrixFields();
    expect(fields.length).toBeGreaterThan(25);
    const uncovered = fields.filter(
      (field) => field !== "Unknown fields" && !specs.some((spec) => sets(spec, field)),
    );
    expect(uncovered).toEqual([]);
    // "Unknown fields: reserved/rejected" is covered by a negative case.
    expect(negatives.some((c) => c.oracle === "release" && c.name === "an unknown slice")).toBe(true);
  });

  test("teaches both spellings where Run402 accepts both", async () => {
    const all = validManifests.map((f) => readFileSync(join(validDir, f), "utf8")).join("\n");
    for (const [snake, camel] of [
      ["timeout_seconds", "timeoutSeconds"],
      ["memory_mb", "memoryMb"],
      ["require_auth", "requireAuth"],
      ["require_role", "requireRole"],
      ["id_column", "idColumn"],
      ["default_locale", "defaultLocale"],
      ["unknown_locale_policy", "unknownLocalePolicy"],
      ["content_type", "contentType"],
      ["expected_status", '"expect"'],
      ["sql_file", "sql_path"],
    ]) {
      expect(all, snake).toContain(snake);
      expect(all, camel).toContain(camel);
    }
  });
});

describe("the negative corpus", () => {
  test.each(negatives.map((c) => [c.name, c] as const))("%s: refused at its pointer", async (_name, c) => {
    const result = validateManifest(c.manifest);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((i) => i.pointer)).toContain(c.pointer);
    for (const issue of result.issues) expect(issue.message.length).toBeGreaterThan(10);

    if (c.oracle === "release") {
      let refusal: unknown;
      try {
        parseReleaseSpec({ project: "prj_corpus", ...c.spec });
      } catch (error) {
        refusal = error;
      }
      expect(refusal, "@run402/release refuses it too").toBeInstanceOf(ReleaseCoreError);
    }
    if (c.oracle === "sdk") {
      await expect(
        normalizeDeployManifest(c.manifest as never, { project: "prj_corpus" }),
        "@run402/sdk's deploy-manifest normalizer refuses it too",
      ).rejects.toThrow();
    }
  });
});
