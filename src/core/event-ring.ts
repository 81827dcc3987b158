// The task events a shard's primary keeps for subscribers: the last `capacity`
// of them, numbered 1, 2, ... within this primary's term. Recording writes a
// slot of preallocated arrays (numbers, and references to the task's type,
// tags, error and small output, never to the task itself, so the ring keeps no
// payload alive): no allocation per event, so a primary nobody listens to pays
// a few stores per task. Each event remembers the log index it follows, so
// that only events whose entries are committed go out (a failover never takes
// back an event someone heard).

import { assert } from "./assert.ts";
import type { AttemptError, Task } from "./task.ts";

/** In the order of TASK_EVENT_KINDS (protocol/events.ts); core does not import the protocol. */
export const EventKind = { COMPLETED: 0, FAILED: 1, DEAD: 2, CANCELLED: 3, PROGRESS: 4 } as const;
export type EventKindCode = (typeof EventKind)[keyof typeof EventKind];

/** One event as read back: views of the slot, valid until it is overwritten. */
export interface RecordedEvent {
  seq: number;
  kind: EventKindCode;
  taskId: number;
  type: string;
  tags: readonly string[];
  /** completed: the result when at most outputBytesMax (else fetched by id). */
  output: Uint8Array | undefined;
  attempt: number;
  at: number;
  logIndex: number;
  /** failed, dead. */
  error: AttemptError | undefined;
  /** progress. */
  progress: number;
}

export class EventRing {
  private readonly kinds: Uint8Array;
  private readonly numbers: Float64Array;
  private readonly types: string[];
  private readonly tags: Array<readonly string[]>;
  private readonly outputs: Array<Uint8Array | undefined>;
  private readonly errors: Array<AttemptError | undefined>;
  /** Seq of the last event recorded (0: none yet). */
  head = 0;

  constructor(
    /** This primary's term: a random id, so positions from another primary (or an earlier run) never match. */
    readonly term: number,
    readonly capacity: number,
    /** A completed event keeps the task's output only up to this size: the ring's memory stays bounded. */
    private readonly outputBytesMax: number,
  ) {
    assert(capacity >= 1, "an event ring holds at least one event", "capacity", capacity);
    this.kinds = new Uint8Array(capacity);
    this.numbers = new Float64Array(capacity * 5);
    this.types = new Array<string>(capacity).fill("");
    this.tags = new Array<readonly string[]>(capacity).fill([]);
    this.outputs = new Array<Uint8Array | undefined>(capacity).fill(undefined);
    this.errors = new Array<AttemptError | undefined>(capacity).fill(undefined);
  }

  /** The oldest seq still held (head + 1 when none is). */
  get first(): number {
    return Math.max(1, this.head - this.capacity + 1);
  }

  record(kind: EventKindCode, task: Task, at: number, logIndex: number, error?: AttemptError, progress = 0): void {
    const slot = this.head % this.capacity;
    this.head++;
    this.kinds[slot] = kind;
    this.types[slot] = task.type;
    this.tags[slot] = task.tags;
    const output = kind === EventKind.COMPLETED ? task.output : undefined;
    this.outputs[slot] = output !== undefined && output.length <= this.outputBytesMax ? output : undefined;
    this.errors[slot] = error;
    const n = slot * 5;
    this.numbers[n] = task.attempt;
    this.numbers[n + 1] = at;
    this.numbers[n + 2] = logIndex;
    this.numbers[n + 3] = progress;
    this.numbers[n + 4] = task.id;
  }

  /** The log index event `seq` follows (first <= seq <= head). */
  logIndexOf(seq: number): number {
    return this.numbers[this.slotOf(seq) * 5 + 2]!;
  }

  /** Event `seq` (first <= seq <= head), read into `out`. */
  read(seq: number, out: RecordedEvent): RecordedEvent {
    const slot = this.slotOf(seq);
    const n = slot * 5;
    out.seq = seq;
    out.kind = this.kinds[slot] as EventKindCode;
    out.taskId = this.numbers[n + 4]!;
    out.type = this.types[slot]!;
    out.tags = this.tags[slot]!;
    out.output = this.outputs[slot];
    out.error = this.errors[slot];
    out.attempt = this.numbers[n]!;
    out.at = this.numbers[n + 1]!;
    out.logIndex = this.numbers[n + 2]!;
    out.progress = this.numbers[n + 3]!;
    return out;
  }

  private slotOf(seq: number): number {
    assert(seq >= this.first && seq <= this.head, "only held events are read", "seq", seq, "first", this.first, "head", this.head);
    return (seq - 1) % this.capacity;
  }
}
