// Task events on the wire (SUBSCRIBE, EVENTS, UNSUBSCRIBE) and the cursor that
// resumes a stream of them. Each shard's primary numbers its events 1, 2, ...
// within a term (a random id it draws when it becomes primary), so a position
// in one shard's stream is (term, seq); a position in the whole cluster's is
// one such pair per shard, written as an event id: `<shard>.<term>.<seq>`
// joined by `_`, shards ascending (e.g. `0.1849282.1532_1.99301.88`).
// Every reader here takes peer input: it checks each field and throws
// ProtocolError for anything else.

import { ProtocolError } from "./errors.ts";

/** completed, cancelled; failed: an attempt failed and the task will be retried; dead: failed for good (in the DLQ); progress: a worker's report. */
export const TASK_EVENT_KINDS = ["completed", "failed", "dead", "cancelled", "progress"] as const;
export type TaskEventKind = (typeof TASK_EVENT_KINDS)[number];

/** Most types, tags or task ids one filter names. */
export const FILTER_ITEMS_MAX = 1024;
/** Most events in one EVENTS message. */
export const EVENTS_BATCH_MAX = 512;
/** An EVENTS message stops taking events past about this many bytes (far below any frame limit, whatever the tags and errors). */
export const EVENTS_BATCH_BYTES_MAX = 256 * 1024;
/** An event's error is cut to this many characters (the whole of it is in the task's status). */
export const EVENT_ERROR_CHARS_MAX = 4096;
/** A completed event carries the task's output when it is at most this big (else fetch it by id); it bounds what a primary's event ring holds too. */
export const EVENT_OUTPUT_BYTES_MAX = 1024;

/** Which events a subscription wants; an absent list admits all. */
export interface EventFilter {
  kinds?: TaskEventKind[];
  types?: string[];
  /** A task matches when it has at least one of these tags. */
  tags?: string[];
  taskIds?: number[];
}

/** One shard's position: the last event seq seen in a term. */
export interface ShardPosition {
  shard: number;
  term: number;
  seq: number;
}

/** SUBSCRIBE: `after` absent starts from now; present, it resumes after each position and from the oldest event held on shards it does not name. */
export interface Subscribe {
  requestId: number;
  filter: EventFilter;
  after?: ShardPosition[];
}

export interface TaskEvent {
  kind: TaskEventKind | "gap";
  shard: number;
  term: number;
  seq: number;
  /** ms since the epoch, on the coordinator's clock. */
  at: number;
  /** 0 for a gap. */
  taskId: number;
  type?: string;
  tags?: string[];
  attempt?: number;
  /** failed, dead: the attempt's error code and message. */
  code?: string;
  error?: string;
  /** progress: 0..1. */
  progress?: number;
  /** completed: the handler's result bytes when small enough (EVENT_OUTPUT_BYTES_MAX). */
  output?: Uint8Array;
  /** gap: why events before this one may be missing (the stream goes on after it). */
  reason?: string;
}

/** EVENTS: a shard's events for subscription `requestId`, and the position after them (filtered-out events move it too). */
export interface EventBatch {
  requestId: number;
  shard: number;
  term: number;
  seq: number;
  events: TaskEvent[];
}

const isUint = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;

function stringList(v: unknown, field: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > FILTER_ITEMS_MAX || !v.every((x) => typeof x === "string")) {
    throw new ProtocolError("E_BAD_REQUEST", `filter ${field} must be a list of at most ${FILTER_ITEMS_MAX} strings`);
  }
  return v;
}

/** A filter from a peer or a caller, checked field by field; an unknown field is refused by name. */
export function checkFilter(value: unknown): EventFilter {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new ProtocolError("E_BAD_REQUEST", "filter must be a map");
  const f = value as Record<string, unknown>;
  const stray = Object.keys(f).find((k) => !["kinds", "types", "tags", "taskIds"].includes(k));
  if (stray !== undefined) throw new ProtocolError("E_BAD_REQUEST", `"${stray}" is not a filter field (known: kinds, types, tags, taskIds)`);
  const filter: EventFilter = {};
  const kinds = stringList(f.kinds, "kinds");
  if (kinds !== undefined) {
    const bad = kinds.find((k) => !(TASK_EVENT_KINDS as readonly string[]).includes(k));
    if (bad !== undefined) throw new ProtocolError("E_BAD_REQUEST", `"${bad}" is not an event kind (known: ${TASK_EVENT_KINDS.join(", ")})`);
    filter.kinds = kinds as TaskEventKind[];
  }
  const types = stringList(f.types, "types");
  if (types !== undefined) filter.types = types;
  const tags = stringList(f.tags, "tags");
  if (tags !== undefined) filter.tags = tags;
  if (f.taskIds !== undefined && f.taskIds !== null) {
    if (!Array.isArray(f.taskIds) || f.taskIds.length > FILTER_ITEMS_MAX || !f.taskIds.every((id) => isUint(id))) {
      throw new ProtocolError("E_BAD_REQUEST", `filter taskIds must be a list of at most ${FILTER_ITEMS_MAX} task ids`);
    }
    filter.taskIds = f.taskIds as number[];
  }
  return filter;
}

function checkPosition(v: unknown): ShardPosition {
  const p = v as Record<string, unknown> | null;
  if (p === null || typeof p !== "object" || !isUint(p.shard, 0xffff) || !isUint(p.term, 0xffffffff) || !isUint(p.seq)) {
    throw new ProtocolError("E_BAD_REQUEST", "a position must be {shard, term, seq}, each a non-negative integer");
  }
  return { shard: p.shard, term: p.term, seq: p.seq };
}

/** A SUBSCRIBE's msgpack map, checked. */
export function checkSubscribe(q: Record<string, unknown>): Subscribe {
  const requestId = q.requestId;
  if (!isUint(requestId, 0xffffffff) || requestId === 0) throw new ProtocolError("E_BAD_REQUEST", "SUBSCRIBE needs a requestId from 1 to 2^32-1");
  const sub: Subscribe = { requestId, filter: checkFilter(q.filter) };
  if (q.after !== undefined && q.after !== null) {
    if (!Array.isArray(q.after) || q.after.length > FILTER_ITEMS_MAX) throw new ProtocolError("E_BAD_REQUEST", "after must be a list of positions");
    sub.after = q.after.map(checkPosition);
  }
  return sub;
}

/** An EVENTS message's msgpack map, checked (the SDK trusts nothing it did not check either). */
export function checkEventBatch(q: Record<string, unknown>): EventBatch {
  const { shard, term, seq } = checkPosition(q);
  if (!isUint(q.requestId, 0xffffffff) || !Array.isArray(q.events) || q.events.length > EVENTS_BATCH_MAX + 1) {
    throw new ProtocolError("E_BAD_FRAME", `EVENTS needs a requestId and at most ${EVENTS_BATCH_MAX + 1} events`);
  }
  const events = q.events.map((e) => checkEvent(e, shard, term));
  return { requestId: q.requestId, shard, term, seq, events };
}

function checkEvent(v: unknown, shard: number, term: number): TaskEvent {
  const e = v as Record<string, unknown> | null;
  const kinds: readonly string[] = TASK_EVENT_KINDS;
  if (e === null || typeof e !== "object" || (e.kind !== "gap" && !kinds.includes(e.kind as string))
    || e.shard !== shard || e.term !== term || !isUint(e.seq) || typeof e.at !== "number" || !isUint(e.taskId)) {
    throw new ProtocolError("E_BAD_FRAME", "an event needs a known kind, its batch's shard and term, a seq, a time and a task id");
  }
  const optional: Array<[string, string]> = [["type", "string"], ["attempt", "number"], ["code", "string"], ["error", "string"], ["progress", "number"], ["reason", "string"]];
  for (const [field, type] of optional) {
    if (e[field] !== undefined && typeof e[field] !== type) throw new ProtocolError("E_BAD_FRAME", `event field ${field} must be a ${type}`);
  }
  if (e.tags !== undefined && (!Array.isArray(e.tags) || !e.tags.every((t) => typeof t === "string"))) throw new ProtocolError("E_BAD_FRAME", "event tags must be strings");
  if (e.output !== undefined && !(e.output instanceof Uint8Array)) throw new ProtocolError("E_BAD_FRAME", "event output must be bytes");
  return e as unknown as TaskEvent;
}

// ------------------------------------------------------------ cursors (event ids)

/** Per shard, the last position seen: what a resumed subscription sends as `after`. */
export class EventCursor {
  private readonly byShard = new Map<number, ShardPosition>();

  /** Parses an event id (as `format` writes it); throws E_BAD_REQUEST when it is not one. */
  static parse(id: string): EventCursor {
    const cursor = new EventCursor();
    if (id === "") return cursor;
    for (const part of id.split("_")) {
      const m = /^(\d{1,5})\.(\d{1,10})\.(\d{1,16})$/.exec(part);
      if (m === null) throw new ProtocolError("E_BAD_REQUEST", `"${id.slice(0, 80)}" is not an event id (<shard>.<term>.<seq> joined by _)`);
      cursor.move(checkPosition({ shard: Number(m[1]), term: Number(m[2]), seq: Number(m[3]) }));
    }
    return cursor;
  }

  get size(): number {
    return this.byShard.size;
  }

  /** Moves a shard's position (a new term replaces the old one whatever its seq). */
  move(p: ShardPosition): void {
    this.byShard.set(p.shard, { shard: p.shard, term: p.term, seq: p.seq });
  }

  /** True when the event is past the shard's position (not seen yet): a re-delivered one is skipped. */
  isNew(e: { shard: number; term: number; seq: number }): boolean {
    const at = this.byShard.get(e.shard);
    return at === undefined || at.term !== e.term || e.seq > at.seq;
  }

  positions(): ShardPosition[] {
    return [...this.byShard.values()].sort((a, b) => a.shard - b.shard);
  }

  /** The event id of this position. */
  format(): string {
    return this.positions().map((p) => `${p.shard}.${p.term}.${p.seq}`).join("_");
  }
}

/** Whether `filter` admits an event of `kind` for a task of this type, tags and id. */
export function filterAdmits(filter: EventFilter, kind: TaskEventKind, taskId: number, type: string, tags: readonly string[]): boolean {
  if (filter.kinds !== undefined && !filter.kinds.includes(kind)) return false;
  if (filter.types !== undefined && !filter.types.includes(type)) return false;
  if (filter.taskIds !== undefined && !filter.taskIds.includes(taskId)) return false;
  if (filter.tags !== undefined && !filter.tags.some((t) => tags.includes(t))) return false;
  return true;
}
