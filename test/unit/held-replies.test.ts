// HeldReplies: replies leave once their entry is committed, in log order; a
// quiet one (a SUBMIT with notify, answered by its TASK_DONE) sends nothing
// then, but is refused like the others when the primary steps down.

import { expect, test } from "bun:test";
import { HeldReplies, type HeldReply } from "../../src/coordinator/held-replies.ts";
import type { Connection } from "../../src/net/connection.ts";
import { FrameWriter } from "../../src/protocol/codec.ts";
import { Kind } from "../../src/protocol/messages.ts";
import { decodeStream } from "../support/codec-fixtures.ts";

function fakeConnection() {
  const writer = new FrameWriter();
  const errors: Array<{ requestId: number; code: string }> = [];
  const conn = {
    writer,
    writable: () => true,
    queueFlush: () => {},
    sendError: (requestId: number, code: string) => void errors.push({ requestId, code }),
  } as unknown as Connection;
  const sent = () => decodeStream([writer.finish()]).map((m) => [m.kind, (m as { fields: { requestId: number } }).fields.requestId]);
  return { conn, errors, sent };
}

const reply = (conn: Connection, index: number, requestId: number, quiet = false): HeldReply => ({
  index, conn, kind: Kind.SUBMITTED, requestId, taskId: requestId, status: 0, attempts: 0, output: new Uint8Array(0), quiet,
});

test("committed replies leave in order; a quiet one sends nothing", () => {
  const { conn, sent } = fakeConnection();
  const held = new HeldReplies();
  held.hold(reply(conn, 1, 11));
  held.hold(reply(conn, 2, 12, true));
  held.hold(reply(conn, 3, 13));
  held.release(2);
  expect(sent()).toEqual([[Kind.SUBMITTED, 11]]);
  held.release(3);
  expect(sent()).toEqual([[Kind.SUBMITTED, 11], [Kind.SUBMITTED, 13]]);
});

test("stepping down refuses every reply still held, quiet ones included, with E_NOT_PRIMARY", () => {
  const { conn, errors, sent } = fakeConnection();
  const held = new HeldReplies();
  held.hold(reply(conn, 1, 21));
  held.hold(reply(conn, 2, 22, true));
  held.hold(reply(conn, 3, 23));
  held.release(1);
  held.refuseAll("stepped down");
  expect(sent()).toEqual([[Kind.SUBMITTED, 21]]);
  expect(errors).toEqual([{ requestId: 22, code: "E_NOT_PRIMARY" }, { requestId: 23, code: "E_NOT_PRIMARY" }]);
});
