import { displayPath, type LoadedManifest, loadManifest } from "./load.js";
import { type ResolvedRelease, resolveManifest } from "./resolve.js";

/** The project id a checked release is resolved for (the digest leaves it out). */
const CHECK_PROJECT = "prj_check";

/**
 * Every check that needs no network, in the order a deploy makes them: the file is read (bounded,
 * regular, UTF-8), parsed (strict JSON or plain-data YAML), validated (schema, Run402's rules and
 * `@run402/release`'s own validator), and every file it names is read (inside the folder, regular,
 * within the limits) and hashed into the release. Throws `ManifestNotFoundError`,
 * `ManifestUnreadableError` or `ManifestValidationError` with every problem found.
 * @example
 * import { checkManifest } from "pulumi-run402/provider/manifest";
 * const { loaded, release } = await checkManifest("app.json");
 */
export async function checkManifest(
  path: string,
): Promise<{ loaded: LoadedManifest; release: ResolvedRelease }> {
  const loaded = await loadManifest(path);
  const release = await resolveManifest({
    manifest: loaded.manifest,
    dir: loaded.dir,
    projectId: CHECK_PROJECT,
    file: displayPath(loaded.file),
  });
  return { loaded, release };
}
