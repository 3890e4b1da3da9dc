/**
 * Node's module compile cache (Node ≥ 22.1: `module.enableCompileCache`; a no-op before): compiled
 * code is kept on disk (Node's default folder under the system temp folder; `NODE_DISABLE_COMPILE_CACHE=1`
 * turns it off) and reused while a file's content is unchanged. Enabled first thing, it serves what
 * this process loads later (the program's modules, @pulumi/pulumi); `NODE_COMPILE_CACHE` hands the
 * same folder to every process this run starts (the engine passes it on to the provider process).
 */
import module from "node:module";

const enable = (module as { enableCompileCache?: () => { status: number; directory?: string } })
  .enableCompileCache;
const constants = (module as { constants?: { compileCacheStatus?: Record<string, number> } }).constants
  ?.compileCacheStatus;
if (enable && constants) {
  const { status, directory } = enable();
  if ((status === constants.ENABLED || status === constants.ALREADY_ENABLED) && directory)
    process.env.NODE_COMPILE_CACHE = directory;
}
