/**
 * The Pulumi side of run402-pulumi, and the only module the rest of the code imports from this folder:
 * finds the engine (lookup.ts), keeps the workspace (Pulumi.yaml, stack config, passphrase, file
 * backend) under `<manifest dir>/.run402/` (workspace.ts), and runs the stack whose inline program is
 * `manifestStack({ manifest })` (stack.ts).
 *
 * One engine process per command where the engine allows it. In a `file://` backend (the default)
 * this folder also creates the stack, keeps the stack's identity tag and reads the state (status,
 * outputs, pending operations) from the backend's files (state.ts), whose formats are Pulumi's
 * documented checkpoint (`version: 3`) and its tags file. An operation (preview, up, refresh,
 * destroy) is one `pulumi` process: the inline program's language runtime (language.ts) is served
 * from this process, and steps, outputs and the summary come from the engine's event log
 * (events.ts), not from `stack output` or `stack history`. Other backends (s3, Pulumi Cloud, …) fall
 * back to the engine's own commands for what this folder cannot read or write itself. Stopping
 * (stop.ts) and reading the engine's text into coded errors (classify.ts) live here too.
 */
export { codedErrors, engineErrors, lockedFromEngine } from "./classify.js";
export {
  type Engine,
  EngineMissingError,
  engineAdvice,
  engineCommand,
  engineEnv,
  findPulumi,
  packageRoot,
  pulumiExecutable,
  userEngineBin,
} from "./lookup.js";
export {
  EngineCommandError,
  EngineStack,
  type OpenStackOptions,
  type OperationOptions,
  type OperationResult,
  openStack,
  type StackWorkspace,
} from "./stack.js";
export { type ExportedState, FileBackend, type Outputs, stateOutputs } from "./state.js";
export { hardStopGraceMs, hardStopSignal, runOwner, stopEngines, stopGraceMs } from "./stop.js";
export { passphraseEnv, pulumiProjectName, type WorkspacePaths, workspacePaths } from "./workspace.js";
