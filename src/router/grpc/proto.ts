// The gRPC service definition, compiled into the router: the .proto is
// imported as text (a compiled binary cannot read the repository's files) and
// turned into grpc-js service definitions by proto-loader.

import { loadPackageDefinition, type ServiceDefinition } from "@grpc/grpc-js";
import { fromJSON } from "@grpc/proto-loader";
import protobuf from "protobufjs";
import protoText from "../../../proto/task_scheduler.proto" with { type: "text" };

/**
 * Field names in camelCase (as in our REST bodies), 64-bit integers as JS
 * numbers (task ids are safe integers; larger ones are refused as not task
 * ids), and fields left unset absent rather than zero.
 */
export const PROTO_OPTIONS = { keepCase: false, longs: Number, enums: String, defaults: false, oneofs: false } as const;

/** The protobufjs root of task_scheduler.proto, with the well-known wrapper types it imports. */
export function protoRoot(): protobuf.Root {
  const root = protobuf.Root.fromJSON(protobuf.common.get("google/protobuf/wrappers.proto")!);
  protobuf.parse(protoText, root, { keepCase: false });
  root.resolveAll();
  return root;
}

/** The TaskScheduler service as grpc-js serves it (and as a TS client calls it). */
export function schedulerService(): { service: ServiceDefinition; client: new (address: string, credentials: import("@grpc/grpc-js").ChannelCredentials) => unknown } {
  const definition = fromJSON(protoRoot().toJSON(), PROTO_OPTIONS);
  const pkg = loadPackageDefinition(definition) as unknown as { taskscheduler: { v1: { TaskScheduler: { service: ServiceDefinition } & (new (address: string, credentials: import("@grpc/grpc-js").ChannelCredentials) => unknown) } } };
  const ctor = pkg.taskscheduler.v1.TaskScheduler;
  return { service: ctor.service, client: ctor };
}
