// A plain gRPC client of the router's API for the TS tests, built from the
// same embedded .proto the router serves: calls as promises that settle with
// the reply or with the status, details and our error code.

import { credentials, Metadata, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";
import { schedulerService } from "../../src/router/grpc/proto.ts";
import { ERROR_CODE_KEY } from "../../src/router/grpc/status.ts";

export interface CallFailure {
  status: number;
  details: string;
  code: string | undefined;
}

export type Settled<T> = { reply: T; failure?: undefined } | { reply?: undefined; failure: CallFailure };

type Callback = (err: ServiceError | null, reply: unknown) => void;
type Stub = Record<string, (request: unknown, metadata: Metadata, options: { deadline: number }, callback?: Callback) => any> & { close(): void };

const CALL_DEADLINE_MS = 30_000;

function failureOf(err: ServiceError): CallFailure {
  return { status: err.code, details: err.details, code: err.metadata?.get(ERROR_CODE_KEY)[0] as string | undefined };
}

function metadataWith(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

export class GrpcTestClient {
  private readonly stub: Stub;

  constructor(address: string, ca?: string) {
    const creds: ChannelCredentials = ca === undefined ? credentials.createInsecure() : credentials.createSsl(Buffer.from(ca));
    this.stub = new (schedulerService().client)(address, creds) as Stub;
  }

  call<T = any>(method: string, request: unknown, token?: string): Promise<Settled<T>> {
    return new Promise((resolve) => {
      this.stub[method]!(request, metadataWith(token), { deadline: Date.now() + CALL_DEADLINE_MS }, (err, reply) => {
        resolve(err ? { failure: failureOf(err) } : { reply: reply as T });
      });
    });
  }

  /** Every event of a Watch stream until it ends, or the failure that ended it. */
  watch(taskIds: number[], token?: string, onEvent?: (event: any) => void): Promise<Settled<any[]>> {
    return new Promise((resolve) => {
      const events: any[] = [];
      const stream = this.stub.Watch!({ taskIds }, metadataWith(token), { deadline: Date.now() + CALL_DEADLINE_MS });
      stream.on("data", (event: unknown) => {
        events.push(event);
        onEvent?.(event);
      });
      stream.on("error", (err: ServiceError) => resolve({ failure: failureOf(err) }));
      stream.on("end", () => resolve({ reply: events }));
    });
  }

  /** Events until `enough(events)` says so (then the call is cancelled), or the failure that ended the stream. */
  events(request: Record<string, unknown>, enough: (events: any[]) => boolean, token?: string): Promise<Settled<any[]>> {
    return new Promise((resolve) => {
      const events: any[] = [];
      const stream = this.stub.Events!(request, metadataWith(token), { deadline: Date.now() + CALL_DEADLINE_MS });
      stream.on("data", (event: unknown) => {
        events.push(event);
        if (!enough(events)) return;
        resolve({ reply: events });
        stream.cancel();
      });
      stream.on("error", (err: ServiceError) => resolve({ failure: failureOf(err) }));
      stream.on("end", () => resolve({ reply: events }));
    });
  }

  close(): void {
    this.stub.close();
  }
}
