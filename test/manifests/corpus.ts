/** The manifest corpus (README.md beside this file): its valid manifests and its negative cases. */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));

/** The folder of the valid manifests (and the files they name). */
export const validDir = join(here, "valid");

/** Every valid manifest of the corpus, by file name. */
export const validManifests: string[] = readdirSync(validDir)
  .filter((f) => /\.(json|ya?ml)$/.test(f))
  .sort();

/** Content the valid manifests reference by `{ sha256, size }`: uploaded before they deploy. */
export const preUploadedDir = join(validDir, "cas");

/** A negative case: the manifest, the pointer of the issue it must raise, and who else refuses it. */
export type NegativeCase = {
  name: string;
  manifest: Record<string, unknown>;
  pointer: string;
  /**
   * Who else refuses it: `release` — @run402/release refuses `spec`; `sdk` — @run402/sdk's
   * normalizeDeployManifest refuses the manifest; `docs` and `schema` — Run402's docs and schema say so,
   * and no installable Run402 code checks it.
   */
  oracle: "release" | "sdk" | "docs" | "schema";
  spec?: Record<string, unknown>;
  note?: string;
};

/** The negative cases (invalid/cases.json). */
export function negativeCases(): NegativeCase[] {
  return JSON.parse(readFileSync(join(here, "invalid/cases.json"), "utf8")) as NegativeCase[];
}
