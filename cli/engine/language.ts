/** Pulumi's internal language runtime, loaded from the SDK to serve an inline program to the engine. */
import { createRequire } from "node:module";

/** Loads what serving an inline program takes: the SDK's language runtime and gRPC. */
export function languageRuntime() {
  const fromPulumi = createRequire(createRequire(import.meta.url).resolve("@pulumi/pulumi/package.json"));
  const grpc = fromPulumi("@grpc/grpc-js") as typeof import("@grpc/grpc-js");
  const { LanguageServer } = fromPulumi("@pulumi/pulumi/automation/server.js") as {
    LanguageServer: new (
      program: () => Promise<Record<string, unknown> | undefined>,
    ) => { onPulumiExit(hasError: boolean): void };
  };
  const langrpc = fromPulumi("@pulumi/pulumi/proto/language_grpc_pb.js") as {
    LanguageRuntimeService: import("@grpc/grpc-js").ServiceDefinition;
  };
  const { grpcChannelOptions } = fromPulumi("@pulumi/pulumi/runtime/settings.js") as {
    grpcChannelOptions: Record<string, unknown>;
  };
  return { grpc, LanguageServer, langrpc, grpcChannelOptions };
}
