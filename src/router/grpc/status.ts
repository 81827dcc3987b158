// Our error codes as gRPC status codes. The gRPC code says what kind of
// failure it is (what a generic client retries on); our own code travels
// beside it in the trailing metadata, as REST sends it in the body.

import { Metadata, status, type ServiceError } from "@grpc/grpc-js";

/** Trailing metadata key holding our error code (E_*). */
export const ERROR_CODE_KEY = "task-scheduler-error-code";

const STATUS_OF: Record<string, status> = {
  E_BAD_REQUEST: status.INVALID_ARGUMENT,
  E_CYCLE: status.INVALID_ARGUMENT,
  E_BAD_FRAME: status.INVALID_ARGUMENT,
  E_TOO_LARGE: status.RESOURCE_EXHAUSTED,
  E_QUEUE_FULL: status.RESOURCE_EXHAUSTED,
  E_UNAUTHORIZED: status.UNAUTHENTICATED,
  E_UNKNOWN_TASK: status.NOT_FOUND,
  E_UNKNOWN_SHARD: status.NOT_FOUND,
  E_UNAVAILABLE: status.UNAVAILABLE,
  E_NOT_PRIMARY: status.UNAVAILABLE,
  E_SHUTTING_DOWN: status.UNAVAILABLE,
  E_TOO_MANY_CONNECTIONS: status.UNAVAILABLE,
  E_SLOW_READER: status.UNAVAILABLE,
  E_IDLE_TIMEOUT: status.UNAVAILABLE,
};

/** The gRPC status for one of our codes; INTERNAL for a code with no better match. */
export function grpcStatusOf(code: string): status {
  return STATUS_OF[code] ?? status.INTERNAL;
}

/** An error grpc-js sends as the call's status: the mapped code, our message, our code in the trailers. */
export function grpcError(code: string, message: string, grpcCode: status = grpcStatusOf(code)): Partial<ServiceError> {
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, code);
  return { code: grpcCode, details: message, metadata };
}
