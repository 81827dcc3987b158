// A primary's event feed (coordinator/event-feed.ts) over its ring
// (core/event-ring.ts), with fake connections: events go out only once their
// log entries are committed, each subscription from its own position and
// through its filter; a position the ring no longer holds, or from another
// term, gets a gap event first; a subscriber that falls behind is held back,
// then told of the gap; stepping down ends every subscription.

import { describe, expect, test } from "bun:test";
import { EventFeed, SUBSCRIBER_BACKLOG_BYTES_MAX } from "../../src/coordinator/event-feed.ts";
import { EventKind, EventRing } from "../../src/core/event-ring.ts";
import type { Ready } from "../../src/core/scheduler-types.ts";
import type { Task } from "../../src/core/task.ts";
import type { Connection } from "../../src/net/connection.ts";
import { FrameWriter, forEachMessage, readControl, Reader } from "../../src/protocol/codec.ts";
import { EVENT_ERROR_CHARS_MAX, EVENTS_BATCH_BYTES_MAX, type EventBatch } from "../../src/protocol/events.ts";
import { Kind } from "../../src/protocol/messages.ts";
import { makeTask } from "../support/scheduler-fixtures.ts";

/** A connection that keeps what is written to it. */
function fakeConnection() {
  const writer = new FrameWriter(1024);
  const errors: Array<{ requestId: number; code: string }> = [];
  let waits = 0;
  const conn = {
    closed: false,
    backlogBytes: 0,
    writer,
    queueFlush() {},
    sendError: (requestId: number, code: string) => errors.push({ requestId, code }),
    idle: { startWait: () => waits++, endWait: () => waits-- },
  };
  /** EVENTS batches written since the last call. */
  const batches = (): EventBatch[] => {
    const out: EventBatch[] = [];
    const bytes = writer.finish();
    let at = 0;
    while (at < bytes.length) {
      const length = new DataView(bytes.buffer, bytes.byteOffset + at).getUint32(0, true);
      forEachMessage(bytes.subarray(at + 4, at + 4 + length), new Reader(), (kind, r) => {
        if (kind === Kind.EVENTS) out.push(readControl<EventBatch>(r));
      });
      at += 4 + length;
    }
    writer.reset();
    return out;
  };
  return { conn: conn as unknown as Connection, raw: conn, errors, batches, waits: () => waits };
}

function ready(finished: Task[], retried: Task[] = []): Ready {
  return { assignments: new Map(), finished, retried, notices: [], aborts: [], lostWorkers: [] };
}

const completed = (id: number, type = "noop", tags: string[] = []) => makeTask({ id, type, tags, state: "completed", attempt: 1 });

describe("EventRing", () => {
  test("keeps the last `capacity` events, numbered from 1, and only small outputs", () => {
    const ring = new EventRing(9, 3, 2);
    expect([ring.first, ring.head]).toEqual([1, 0]);
    for (let id = 1; id <= 5; id++) ring.record(EventKind.COMPLETED, { ...completed(id), output: new Uint8Array(id % 2 === 0 ? 2 : 3) }, id * 10, id);
    expect([ring.first, ring.head]).toEqual([3, 5]);
    const out = ring.read(4, { seq: 0, kind: 0, taskId: 0, type: "", tags: [], output: undefined, attempt: 0, at: 0, logIndex: 0, error: undefined, progress: 0 });
    expect([out.seq, out.taskId, out.type, out.at, out.logIndex, out.output?.length]).toEqual([4, 4, "noop", 40, 4, 2]);
    expect(ring.read(5, out).output).toBeUndefined(); // over outputBytesMax: not kept (its task is fetched by id)
    expect(() => ring.read(2, out)).toThrow();
  });
});

describe("EventFeed", () => {
  test("delivers only committed events, through the filter, and moves the position past the rest", () => {
    const feed = new EventFeed(0, 100);
    feed.lead(77);
    const c = fakeConnection();
    feed.message(c.conn, Kind.SUBSCRIBE, { requestId: 5, filter: { types: ["wanted"] } }, 0);
    expect(c.batches()).toEqual([{ requestId: 5, shard: 0, term: 77, seq: 0, events: [] }]); // its starting position
    expect(c.waits()).toBe(1); // not idle while subscribed
    feed.recordReady(ready([completed(1, "wanted"), completed(2, "other")]), 1000, 10);
    feed.recordReady(ready([completed(3, "wanted")]), 1001, 11);
    feed.committed(10, 1000); // entry 11 is not committed yet: task 3's event waits
    let [batch] = c.batches();
    expect(batch!.events.map((e) => [e.taskId, e.seq, e.kind])).toEqual([[1, 1, "completed"]]);
    expect(batch!.seq).toBe(2); // task 2 was looked at and left out
    feed.committed(11, 1002);
    [batch] = c.batches();
    expect(batch!.events.map((e) => e.taskId)).toEqual([3]);
  });

  test("resumes after a position; one no longer held, or of another term, starts with a gap event", () => {
    const feed = new EventFeed(2, 4);
    feed.lead(8);
    for (let id = 1; id <= 6; id++) feed.recordReady(ready([completed(id)]), id, id);
    feed.committed(6, 6); // the ring holds seqs 3..6
    const resume = (after: unknown) => {
      const c = fakeConnection();
      feed.message(c.conn, Kind.SUBSCRIBE, { requestId: 1, filter: {}, after }, 7);
      return c.batches()[0]!.events.map((e) => `${e.kind}:${e.seq}:${e.term}`);
    };
    expect(resume([{ shard: 2, term: 8, seq: 4 }])).toEqual(["completed:5:8", "completed:6:8"]);
    expect(resume([{ shard: 2, term: 8, seq: 1 }])).toEqual(["gap:2:8", "completed:3:8", "completed:4:8", "completed:5:8", "completed:6:8"]);
    expect(resume([{ shard: 2, term: 3, seq: 5 }])[0]).toBe("gap:2:8");
    expect(resume([{ shard: 1, term: 3, seq: 5 }])[0]).toBe("gap:2:8"); // no position for this shard: from the oldest held
    const c = fakeConnection();
    feed.message(c.conn, Kind.SUBSCRIBE, { requestId: 1, filter: {}, after: [{ shard: 2, term: 8, seq: 99 }] }, 7);
    expect(c.errors).toEqual([{ requestId: 1, code: "E_BAD_REQUEST" }]); // a position past the last event
  });

  test("a subscriber whose connection is behind is held back; once the ring moved past it, it hears of the gap", () => {
    const feed = new EventFeed(0, 4);
    feed.lead(1);
    const c = fakeConnection();
    feed.message(c.conn, Kind.SUBSCRIBE, { requestId: 1, filter: {} }, 0);
    c.batches();
    c.raw.backlogBytes = SUBSCRIBER_BACKLOG_BYTES_MAX + 1;
    for (let id = 1; id <= 10; id++) {
      feed.recordReady(ready([completed(id)]), id, id);
      feed.committed(id, id);
    }
    expect(c.batches()).toEqual([]); // nothing written while it is behind
    c.raw.backlogBytes = 0;
    feed.committed(10, 11);
    const events = c.batches()[0]!.events;
    expect(events[0]).toMatchObject({ kind: "gap", seq: 6 });
    expect(events.slice(1).map((e) => e.taskId)).toEqual([7, 8, 9, 10]);
  });

  test("failed attempts, dead letters with their code, progress; stepping down ends every subscription", () => {
    const feed = new EventFeed(0, 100);
    feed.lead(1);
    const c = fakeConnection();
    feed.message(c.conn, Kind.SUBSCRIBE, { requestId: 3, filter: { kinds: ["failed", "dead", "progress"] } }, 0);
    c.batches();
    const flaky = makeTask({ id: 1, type: "t", state: "delayed", attempt: 1, errors: [{ attempt: 1, workerId: 4, at: 1, code: "E_TIMEOUT", message: "too slow" }] });
    const dead = makeTask({ id: 2, type: "t", state: "failed", attempt: 0, errors: [{ attempt: 0, workerId: 0, at: 1, code: "E_DEADLINE", message: "late" }] });
    feed.recordReady(ready([dead, completed(3)], [flaky]), 1, 1);
    feed.progress(makeTask({ id: 4, type: "t", state: "leased", attempt: 2 }), 0.5, 2, 1);
    feed.committed(1, 2);
    expect(c.batches()[0]!.events.map(({ kind, taskId, code, error, progress }) => ({ kind, taskId, code, error, progress }))).toEqual([
      { kind: "failed", taskId: 1, code: "E_TIMEOUT", error: "too slow", progress: undefined },
      { kind: "dead", taskId: 2, code: "E_DEADLINE", error: "late", progress: undefined },
      { kind: "progress", taskId: 4, code: undefined, error: undefined, progress: 0.5 },
    ]);
    feed.follow("stepped down");
    expect(c.errors).toEqual([{ requestId: 3, code: "E_NOT_PRIMARY" }]);
    expect(c.waits()).toBe(0); // ended: the connection may be idle again
    const late = fakeConnection();
    feed.message(late.conn, Kind.SUBSCRIBE, { requestId: 1, filter: {} }, 3);
    expect(late.errors).toEqual([{ requestId: 1, code: "E_NOT_PRIMARY" }]);
  });

  test("long errors are cut in events and a batch stops near EVENTS_BATCH_BYTES_MAX, the rest following in the next", () => {
    const feed = new EventFeed(0, 1000);
    feed.lead(1);
    const c = fakeConnection();
    feed.message(c.conn, Kind.SUBSCRIBE, { requestId: 1, filter: {} }, 0);
    c.batches();
    const stack = "x".repeat(10_000);
    const dead = Array.from({ length: 100 }, (_, i) => makeTask({ id: i + 1, type: "t", state: "failed", errors: [{ attempt: 1, workerId: 1, at: 1, code: "E_HANDLER", message: stack }] }));
    feed.recordReady(ready(dead), 1, 1);
    feed.committed(1, 1);
    const [first] = c.batches();
    expect(first!.events[0]!.error!.length).toBe(EVENT_ERROR_CHARS_MAX + 1); // cut, with an ellipsis
    expect(first!.events.length).toBeLessThan(100);
    expect(first!.events.length * (EVENT_ERROR_CHARS_MAX + 128)).toBeLessThanOrEqual(EVENTS_BATCH_BYTES_MAX + EVENT_ERROR_CHARS_MAX + 128);
    feed.committed(1, 2);
    const rest = c.batches().flatMap((b) => b.events);
    expect(first!.events.length + rest.length).toBe(100);
  });
});
