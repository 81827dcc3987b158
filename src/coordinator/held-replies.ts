// The acknowledgement rule of synchronous replication, in one place: a reply
// that tells a client something happened (task accepted, task ended, command
// done) waits here until the log entry it reports on is committed, that is,
// held by every in-sync backup (and on disk with --data-dir). Replies leave in
// log order; a primary that steps down refuses the ones never committed, so
// clients retry them at the new primary under the same idempotency key.

import { HeldQueue } from "../core/replication-step.ts";
import type { Task } from "../core/task.ts";
import type { Connection } from "../net/connection.ts";
import { writeControl, writeSubmitted, writeTaskDone } from "../protocol/codec.ts";
import { writeSubmittedBatch } from "../protocol/batch-codec.ts";
import { Kind, TaskStatus, type BatchItemOutcome, type RoleChange } from "../protocol/messages.ts";
import { failureOutput } from "./request-shapes.ts";

const EMPTY = new Uint8Array(0);

/** A reply a client may only see once the entry it reports on is committed. */
export interface HeldReply {
  /** Log index of the entry it reports on. */
  index: number;
  conn: Connection;
  kind: typeof Kind.SUBMITTED | typeof Kind.SUBMITTED_BATCH | typeof Kind.TASK_DONE | typeof Kind.REPLY | typeof Kind.ERROR;
  requestId: number;
  taskId: number;
  status: number;
  attempts: number;
  output: Uint8Array;
  /** REPLY / ERROR: the msgpack body. */
  body?: Record<string, unknown>;
  /** SUBMITTED_BATCH: each task's outcome; held at the index of the batch's last entry, so it leaves once all are committed. */
  outcomes?: BatchItemOutcome[];
  /**
   * Nothing to send once committed: a SUBMIT with notify is answered by its
   * TASK_DONE alone. Held all the same, so a primary that steps down before
   * the entry commits refuses it like any other.
   */
  quiet?: boolean;
}

export class HeldReplies {
  private readonly held = new HeldQueue<HeldReply>();

  hold(reply: HeldReply): void {
    this.held.hold(reply);
  }

  /** A watcher's TASK_DONE for a task that ended (its result, or its failure's {code, message}), sent once `index` commits. */
  holdTaskDone(index: number, conn: Connection, requestId: number, task: Task): void {
    const ok = task.state === "completed";
    this.hold({
      index, conn, kind: Kind.TASK_DONE, requestId, taskId: task.id, status: ok ? TaskStatus.OK : TaskStatus.FAILED,
      attempts: task.attempt, output: ok ? (task.output ?? EMPTY) : failureOutput(task),
    });
  }

  /** Sends every held reply whose entry is committed (index <= committed). */
  release(committed: number): void {
    this.held.release(committed, (h) => {
      if (h.quiet === true || !h.conn.writable()) return;
      if (h.kind === Kind.SUBMITTED) writeSubmitted(h.conn.writer, h.requestId, h.taskId);
      else if (h.kind === Kind.SUBMITTED_BATCH) writeSubmittedBatch(h.conn.writer, h.requestId, h.outcomes ?? []);
      else if (h.kind === Kind.TASK_DONE) writeTaskDone(h.conn.writer, h.requestId, h.taskId, h.status, h.attempts, h.output);
      else writeControl(h.conn.writer, h.kind, h.body);
      h.conn.queueFlush();
    });
  }

  /** Stepping down: every reply still held is answered E_NOT_PRIMARY instead (its entry may be lost). */
  refuseAll(message: string): void {
    this.held.refuseAll((h) => {
      if (h.conn.writable()) h.conn.sendError(h.requestId, "E_NOT_PRIMARY", message);
    });
  }
}

/** A ROLE message to every connection past its handshake (a promotion or step-down is not a reply: it goes at once). */
export function announceRole(connections: Iterable<Connection>, role: RoleChange): void {
  for (const conn of connections) {
    if (conn.state.role === undefined || !conn.writable()) continue;
    writeControl(conn.writer, Kind.ROLE, role);
    conn.queueFlush();
  }
}
