// A small etcd v3 client over etcd's JSON gateway (POST /v3/...): fetch only, no
// native code or npm package, so it works inside a `bun build --compile` binary.

export interface EtcdKv { key: string; value: string; createRevision: number; modRevision: number; version: number; lease: string }
export interface EtcdCompare { key: string; target: "CREATE" | "MOD" | "VERSION" | "VALUE" | "LEASE"; result: "EQUAL" | "NOT_EQUAL" | "GREATER" | "LESS"; createRevision?: number; modRevision?: number; version?: number; value?: string; lease?: string }
export type EtcdOp =
  | { put: { key: string; value: string; lease?: string } }
  | { deleteRange: { key: string; prefix?: boolean } }
  | { range: { key: string; prefix?: boolean } };
export interface EtcdTxnResult { succeeded: boolean; revision: number; /** one per op of the branch taken; range ops give their kvs, others [] */ responses: EtcdKv[][] }
export interface EtcdWatchEvent { type: "PUT" | "DELETE"; kv: EtcdKv /* for DELETE: key and modRevision at least */ }
export type EtcdErrorCode = "E_ETCD_UNAVAILABLE" | "E_ETCD";

export class EtcdError extends Error {
  /** grpcCode: the gRPC status etcd gave (5 = not found), when it answered with one. */
  constructor(readonly code: EtcdErrorCode, message: string, readonly grpcCode?: number) {
    super(message);
    this.name = "EtcdError";
  }
}

export const ETCD_REQUEST_TIMEOUT_MS_DEFAULT = 1000;
const GRPC_NOT_FOUND = 5;

// The gateway speaks proto3 JSON: int64 as strings, defaults (0, "", false) omitted.
type Json = Record<string, any>;

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string | undefined): string => (s ? Buffer.from(s, "base64").toString("utf8") : "");
const int = (s: string | number | undefined): number => (s === undefined ? 0 : Number(s));

/** The etcd prefix rule: range_end is the key with its last byte below 0xff incremented (bytes after it dropped); "\0" = every key. */
export function prefixRangeEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, "utf8");
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]! += 1;
      return end.toString("base64");
    }
  }
  return Buffer.from([0]).toString("base64");
}

function decodeKv(kv: Json): EtcdKv {
  return { key: unb64(kv.key), value: unb64(kv.value), createRevision: int(kv.create_revision), modRevision: int(kv.mod_revision), version: int(kv.version), lease: kv.lease ?? "0" };
}

function rangeBody(key: string, prefix?: boolean): Json {
  return prefix ? { key: b64(key), range_end: prefixRangeEnd(key) } : { key: b64(key) };
}

function putBody(key: string, value: string, lease?: string): Json {
  return lease && lease !== "0" ? { key: b64(key), value: b64(value), lease } : { key: b64(key), value: b64(value) };
}

function encodeCompare(c: EtcdCompare): Json {
  const out: Json = { key: b64(c.key), target: c.target, result: c.result };
  if (c.createRevision !== undefined) out.create_revision = String(c.createRevision);
  if (c.modRevision !== undefined) out.mod_revision = String(c.modRevision);
  if (c.version !== undefined) out.version = String(c.version);
  if (c.value !== undefined) out.value = b64(c.value);
  if (c.lease !== undefined) out.lease = c.lease;
  return out;
}

function encodeOp(op: EtcdOp): Json {
  if ("put" in op) return { request_put: putBody(op.put.key, op.put.value, op.put.lease) };
  if ("deleteRange" in op) return { request_delete_range: rangeBody(op.deleteRange.key, op.deleteRange.prefix) };
  return { request_range: rangeBody(op.range.key, op.range.prefix) };
}

/**
 * Splits a stream of concatenated JSON objects into one string per object, fed
 * any chunking (down to one byte). It tracks brace depth outside strings instead
 * of relying on newlines, and works on bytes so a UTF-8 character split between
 * chunks is decoded whole.
 */
export function createJsonSplitter(): (chunk: Uint8Array) => string[] {
  const decoder = new TextDecoder();
  let parts: Uint8Array[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  return (chunk) => {
    const out: string[] = [];
    let start = depth > 0 ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (c === 0x5c) escaped = true;
        else if (c === 0x22) inString = false;
      } else if (c === 0x22) {
        inString = true;
      } else if (c === 0x7b) {
        if (depth++ === 0) start = i;
      } else if (c === 0x7d) {
        if (--depth < 0) throw new Error("unbalanced '}' in the JSON stream");
        if (depth === 0) {
          parts.push(chunk.subarray(start, i + 1));
          out.push(decoder.decode(Buffer.concat(parts)));
          parts = [];
          start = -1;
        }
      } else if (depth === 0 && c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
        throw new Error(`unexpected byte 0x${c.toString(16)} between JSON messages`);
      }
    }
    // Copy the unfinished tail: the caller may reuse the chunk's buffer.
    if (depth > 0 && start >= 0) parts.push(chunk.slice(start));
    return out;
  };
}

/** An error etcd sent inside a 200: a string (LeaseGrantResponse.error) or, on streaming methods, {grpc_code, message}. */
function answeredError(where: string, error: string | Json): EtcdError {
  if (typeof error === "string") return new EtcdError("E_ETCD", `${where}: ${error}`);
  return new EtcdError("E_ETCD", `${where}: ${error.message ?? JSON.stringify(error)}`, error.grpc_code ?? error.code);
}

const normalize = (e: string): string => (/^https?:\/\//.test(e) ? e : `http://${e}`).replace(/\/+$/, "");

export class EtcdClient {
  private readonly endpoints: string[];
  private readonly timeoutMs: number;
  private preferred = 0; // index of the endpoint that last answered
  private readonly watches = new Set<() => void>(); // each open watch's finish

  constructor(endpoints: string[], options: { requestTimeoutMs?: number } = {}) {
    if (endpoints.length === 0) throw new Error("EtcdClient needs at least one endpoint");
    this.endpoints = endpoints.map(normalize);
    this.timeoutMs = options.requestTimeoutMs ?? ETCD_REQUEST_TIMEOUT_MS_DEFAULT;
  }

  async grantLease(ttlS: number): Promise<{ id: string; ttlS: number }> {
    const res = await this.call("/v3/lease/grant", { TTL: ttlS });
    return { id: String(res.ID), ttlS: int(res.TTL) };
  }

  async keepAlive(id: string): Promise<number> {
    // A streaming method: the gateway wraps its one answer in {result} and leaves TTL out once the lease is gone.
    const res = await this.call("/v3/lease/keepalive", { ID: id });
    return int(res.result?.TTL);
  }

  async revoke(id: string): Promise<void> {
    try {
      await this.call("/v3/lease/revoke", { ID: id });
    } catch (err) {
      if (!(err instanceof EtcdError && err.grpcCode === GRPC_NOT_FOUND)) throw err;
    }
  }

  async get(key: string): Promise<{ kv: EtcdKv | undefined; revision: number }> {
    const res = await this.call("/v3/kv/range", rangeBody(key));
    return { kv: res.kvs?.[0] ? decodeKv(res.kvs[0]) : undefined, revision: int(res.header?.revision) };
  }

  async getPrefix(prefix: string): Promise<{ kvs: EtcdKv[]; revision: number }> {
    const res = await this.call("/v3/kv/range", rangeBody(prefix, true));
    return { kvs: (res.kvs ?? []).map(decodeKv), revision: int(res.header?.revision) };
  }

  async put(key: string, value: string, lease?: string): Promise<{ revision: number }> {
    const res = await this.call("/v3/kv/put", putBody(key, value, lease));
    return { revision: int(res.header?.revision) };
  }

  async delete(key: string): Promise<{ revision: number }> {
    const res = await this.call("/v3/kv/deleterange", rangeBody(key));
    return { revision: int(res.header?.revision) };
  }

  /** Note: a txn that timed out on one endpoint and was retried on the next may have committed on the first. */
  async txn(compare: EtcdCompare[], success: EtcdOp[], failure: EtcdOp[] = []): Promise<EtcdTxnResult> {
    const res = await this.call("/v3/kv/txn", { compare: compare.map(encodeCompare), success: success.map(encodeOp), failure: failure.map(encodeOp) });
    const responses = ((res.responses ?? []) as Json[]).map((r) => ((r.response_range?.kvs ?? []) as Json[]).map(decodeKv));
    return { succeeded: res.succeeded === true, revision: int(res.header?.revision), responses };
  }

  /** onEvents throwing stops the watch like a stream error would (onError gets it). */
  watchPrefix(prefix: string, fromRevision: number, onEvents: (events: EtcdWatchEvent[], revision: number) => void, onError: (err: Error) => void): { close(): void } {
    const abort = new AbortController();
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      this.watches.delete(finish);
      abort.abort();
      if (err) onError(err);
    };
    this.watches.add(finish);
    const body = { create_request: { ...rangeBody(prefix, true), start_revision: String(fromRevision) } };
    const stream = async () => {
      const { res, endpoint } = await this.send("/v3/watch", body, abort.signal);
      const reader = res.body!.getReader();
      const split = createJsonSplitter();
      for (;;) {
        const chunk = await reader.read().catch((err: Error) => {
          throw new EtcdError("E_ETCD_UNAVAILABLE", `${endpoint}: watch stream failed: ${err.message}`);
        });
        if (chunk.done) throw new EtcdError("E_ETCD_UNAVAILABLE", `${endpoint}: watch stream ended`);
        let messages: Json[];
        try {
          messages = split(chunk.value).map((text) => JSON.parse(text) as Json);
        } catch (err) {
          throw new EtcdError("E_ETCD", `${endpoint}/v3/watch: unreadable stream: ${(err as Error).message}`);
        }
        for (const msg of messages) {
          if (done) return;
          if (msg.error) throw answeredError(`${endpoint}/v3/watch`, msg.error);
          const r: Json = msg.result ?? {};
          if (r.canceled) throw new EtcdError("E_ETCD", `${endpoint}: watch canceled: ${r.cancel_reason || (r.compact_revision ? `revision ${fromRevision} is compacted (compacted up to ${r.compact_revision})` : "no reason given")}`);
          const events = ((r.events ?? []) as Json[]).map((e): EtcdWatchEvent => ({ type: e.type === "DELETE" ? "DELETE" : "PUT", kv: decodeKv(e.kv ?? {}) }));
          if (events.length > 0) onEvents(events, int(r.header?.revision));
        }
      }
    };
    stream().then(
      () => finish(),
      (err) => finish(err instanceof Error ? err : new Error(String(err))),
    );
    return { close: () => finish() };
  }

  /** Aborts open watches without calling their onError: the caller asked for it. */
  close(): void {
    for (const finish of [...this.watches]) finish();
  }

  private async call(path: string, body: Json): Promise<Json> {
    const { text, endpoint } = await this.send(path, body);
    let json: Json;
    try {
      json = JSON.parse(text) as Json;
    } catch {
      throw new EtcdError("E_ETCD", `${endpoint}${path}: answer is not JSON: ${text.slice(0, 200)}`);
    }
    if (json.error) throw answeredError(endpoint + path, json.error);
    return json;
  }

  /**
   * Tries the endpoint that last answered, then the others in order. A network
   * error or timeout moves on; an HTTP error is etcd's own answer and would be the
   * same elsewhere, so it is thrown. A watch (`watch` given) keeps its body open
   * as long as it runs, so only its wait for the headers is bounded.
   */
  private async send(path: string, body: Json, watch?: AbortSignal): Promise<{ res: Response; text: string; endpoint: string }> {
    const failures: string[] = [];
    const json = JSON.stringify(body);
    for (let n = 0; n < this.endpoints.length; n++) {
      const index = (this.preferred + n) % this.endpoints.length;
      const endpoint = this.endpoints[index]!;
      const connect = new AbortController();
      const timer = watch ? setTimeout(() => connect.abort(), this.timeoutMs) : undefined;
      const signal = watch ? AbortSignal.any([watch, connect.signal]) : AbortSignal.timeout(this.timeoutMs);
      let res: Response;
      let text = "";
      try {
        res = await fetch(endpoint + path, { method: "POST", body: json, headers: { "content-type": "application/json" }, signal });
        if (!watch || !res.ok) text = await res.text();
      } catch (err) {
        if (watch?.aborted) throw new EtcdError("E_ETCD_UNAVAILABLE", `${endpoint}${path}: watch closed`);
        const timedOut = connect.signal.aborted || (err as Error).name === "TimeoutError";
        failures.push(`${endpoint}: ${timedOut ? `no answer within ${this.timeoutMs} ms` : (err as Error).message}`);
        continue;
      } finally {
        clearTimeout(timer);
      }
      this.preferred = index;
      if (!res.ok) {
        let parsed: Json = {};
        try { parsed = JSON.parse(text) as Json; } catch { /* not JSON: quote the text */ }
        throw new EtcdError("E_ETCD", `${endpoint}${path}: HTTP ${res.status}: ${parsed.message ?? (text.slice(0, 200) || res.statusText)}`, parsed.code);
      }
      return { res, text, endpoint };
    }
    throw new EtcdError("E_ETCD_UNAVAILABLE", `no etcd endpoint answered ${path}: ${failures.join("; ")}`);
  }
}
