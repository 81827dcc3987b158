// The router's event relay (router/event-relay.ts) with fake links and a fake
// client: one client subscription becomes one per shard primary; their EVENTS
// reach the client under its own request id; when a shard's subscription ends
// (link lost, primary changed) it is opened again from the position forwarded
// last; a client too far behind is cut off (E_SLOW_READER) and every shard
// unsubscribed, so the router holds nothing for it.

import { encode } from "@msgpack/msgpack";
import { expect, test } from "bun:test";
import { EventRelay, SUBSCRIBER_BACKLOG_BYTES_MAX, type RelayUpstream } from "../../src/router/event-relay.ts";
import { Routes } from "../../src/router/routes.ts";
import type { Connection } from "../../src/net/connection.ts";
import type { CoordinatorLink } from "../../src/net/coordinator-link.ts";
import { FrameWriter, forEachMessage, readControl, Reader } from "../../src/protocol/codec.ts";
import { Kind } from "../../src/protocol/messages.ts";

function fakeUpstream(): RelayUpstream & { sent: Array<{ kind: number; body: Record<string, unknown> }> } {
  const sent: Array<{ kind: number; body: Record<string, unknown> }> = [];
  const link = { label: "fake", sendControl: (kind: number, body: Record<string, unknown>) => (sent.push({ kind, body }), true) };
  return { link: link as unknown as CoordinatorLink, routes: new Routes(), sent };
}

function fakeClient() {
  const writer = new FrameWriter(1024);
  const errors: Array<{ requestId: number; code: string }> = [];
  const raw = {
    closed: false, backlogBytes: 0, writer, queueFlush() {},
    sendError: (requestId: number, code: string) => errors.push({ requestId, code }),
    idle: { startWait() {}, endWait() {} },
  };
  const received = (): Array<Record<string, unknown>> => {
    const out: Array<Record<string, unknown>> = [];
    const bytes = writer.finish();
    for (let at = 0; at < bytes.length; ) {
      const length = new DataView(bytes.buffer, bytes.byteOffset + at).getUint32(0, true);
      forEachMessage(bytes.subarray(at + 4, at + 4 + length), new Reader(), (kind, r) => kind === Kind.EVENTS && out.push(readControl(r)));
      at += 4 + length;
    }
    writer.reset();
    return out;
  };
  return { conn: raw as unknown as Connection, raw, errors, received };
}

const control = (body: unknown) => new Reader().reset(encode(body));
const batch = (requestId: number, shard: number, seq: number) => ({
  requestId, shard, term: 4, seq, events: [{ kind: "completed", shard, term: 4, seq, at: 1, taskId: 100 + seq, type: "noop", attempt: 1 }],
});

test("one subscription per shard; events under the client's id; a shard's subscription reopened from its last position", () => {
  const upstreams = [fakeUpstream(), fakeUpstream()];
  const primaries = new Map<number, RelayUpstream>([[0, upstreams[0]!], [1, upstreams[1]!]]);
  const relay = new EventRelay({ shards: () => [0, 1], primaryOf: (s) => primaries.get(s) });
  const client = fakeClient();
  relay.message(client.conn, Kind.SUBSCRIBE, control({ requestId: 42, filter: { kinds: ["completed"] } }));
  const [sub0] = upstreams[0]!.sent;
  expect(sub0).toMatchObject({ kind: Kind.SUBSCRIBE, body: { filter: { kinds: ["completed"] } } });
  expect(sub0!.body.after).toBeUndefined(); // a fresh subscription starts from now
  const upstreamId = Number(sub0!.body.requestId);

  upstreams[0]!.routes.get(upstreamId)!.onEvents!(batch(upstreamId, 0, 7));
  expect(client.received()).toEqual([{ ...batch(42, 0, 7) }]);

  // The link to shard 0's primary drops: its route fails, and the new primary gets the position.
  upstreams[0]!.routes.failAll("lost");
  const replacement = fakeUpstream();
  primaries.set(0, replacement);
  relay.primaryChanged(0);
  expect(replacement.sent[0]!.body.after).toEqual([{ shard: 0, term: 4, seq: 7 }]);
  // A shard that never sent a position is reopened from its oldest event, not from now.
  upstreams[1]!.routes.failAll("stepped down");
  relay.primaryChanged(1);
  expect(upstreams[1]!.sent.at(-1)!.body.after).toEqual([]);
  relay.clientClosed(client.conn);
  expect(relay.size).toBe(0);
});

test("a client too far behind is cut off with E_SLOW_READER, and every shard unsubscribed", () => {
  const upstreams = [fakeUpstream(), fakeUpstream()];
  const relay = new EventRelay({ shards: () => [0, 1], primaryOf: (s) => upstreams[s] });
  const client = fakeClient();
  relay.message(client.conn, Kind.SUBSCRIBE, control({ requestId: 9, filter: {} }));
  const id0 = Number(upstreams[0]!.sent[0]!.body.requestId);
  client.raw.backlogBytes = SUBSCRIBER_BACKLOG_BYTES_MAX + 1;
  upstreams[0]!.routes.get(id0)!.onEvents!(batch(id0, 0, 1));
  expect(client.received()).toEqual([]);
  expect(client.errors).toEqual([{ requestId: 9, code: "E_SLOW_READER" }]);
  for (const u of upstreams) expect(u.sent.at(-1)!.kind).toBe(Kind.UNSUBSCRIBE);
  expect(upstreams.map((u) => u.routes.size)).toEqual([0, 0]);
  expect(relay.size).toBe(0);
});

test("a request a coordinator refuses as bad ends the client's subscription with that code; a bad filter never goes upstream", () => {
  const upstream = fakeUpstream();
  const relay = new EventRelay({ shards: () => [0], primaryOf: () => upstream });
  const client = fakeClient();
  relay.message(client.conn, Kind.SUBSCRIBE, control({ requestId: 3, filter: {}, after: [{ shard: 0, term: 4, seq: 99 }] }));
  const id = Number(upstream.sent[0]!.body.requestId);
  upstream.routes.close(id)!.onControl!(Kind.ERROR, { requestId: id, code: "E_BAD_REQUEST", message: "seq 99 is past the last event" });
  expect(client.errors).toEqual([{ requestId: 3, code: "E_BAD_REQUEST" }]);
  relay.message(client.conn, Kind.SUBSCRIBE, control({ requestId: 4, filter: { kinds: ["nope"] } }));
  expect(client.errors.at(-1)).toEqual({ requestId: 4, code: "E_BAD_REQUEST" });
  expect(upstream.sent.filter((m) => m.kind === Kind.SUBSCRIBE)).toHaveLength(1);
});
