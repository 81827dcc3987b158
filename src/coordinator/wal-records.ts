// The write-ahead log's records, and how recovery tells a torn tail (an append
// a crash interrupted, never acknowledged) from damage to a record that may have
// been acknowledged, which start-up refuses (storage-error.ts).
//
// record = u32 bodyBytes | u32 crc32(body) | body
// body   = u32 epoch | f64 firstIndex | u32 count | entries (count x `u32 bytes | entry`, as in REPL_APPEND)
//
// Only the last record can be torn: append() writes one record and fdatasyncs it
// before it is acknowledged or the next append starts, and recovery cuts a torn
// tail before anything is appended again. So every record but the last was whole
// on disk once, and damage to it is corruption, never something to cut. (With
// --fsync-interval-ms, records past the last sync may be damaged in any order by
// a power loss: wal.ts cuts from the first bad one past the mark wal-synced-mark.ts
// keeps, and refuses damage before it, as here.)
//
// Like etcd's WAL, which repairs only an unexpected end of file and stops on a
// checksum mismatch, a record is a torn tail only when the bytes show that its
// write did not finish:
//  - the file ends inside its 8-byte header, or holds only zeros from it on (the
//    file's size reached the disk, its data did not); or
//  - it claims more bytes than the file holds, and nothing proves otherwise:
//    its own entries do not end inside the file where its checksum matches (that
//    is a whole record whose length field was damaged), and no whole checksummed
//    record starts anywhere after it (that is damage in the middle of the log).
// Anything else that fails is corruption, the last record included: a record
// whose length fits in the file but whose checksum fails may be a complete,
// acknowledged record with a flipped bit. (A file system that persists a file's
// size before its data can leave the same bytes after a crash; the two cannot be
// told apart, so recovery refuses and the operator decides.)

export const RECORD_HEADER_BYTES = 8;
export const BATCH_HEADER_BYTES = 4 + 8 + 4;

export interface LogRecord {
  epoch: number;
  firstIndex: number;
  count: number;
  entries: Uint8Array;
  /** Where the next record starts. */
  end: number;
}

export type RecordRead =
  | { kind: "whole"; record: LogRecord }
  | { kind: "torn"; problem: string }
  | { kind: "corrupt"; problem: string };

/** The record at `at` (data.length > at): whole, a torn tail to cut, or corruption to refuse. */
export function readRecord(data: Uint8Array, at: number): RecordRead {
  const view = viewOf(data);
  const left = data.length - at;
  if (left < RECORD_HEADER_BYTES) return { kind: "torn", problem: `the file ends ${left} bytes into a record's ${RECORD_HEADER_BYTES}-byte header` };
  if (zerosToEnd(data, at)) return { kind: "torn", problem: `only zeros from here to the end of the file (${left} bytes): its size reached the disk, its data did not` };
  const bodyBytes = view.getUint32(at, true);
  const end = at + RECORD_HEADER_BYTES + bodyBytes;
  if (end > data.length) return pastTheEnd(data, at, bodyBytes);
  if (bodyBytes < BATCH_HEADER_BYTES) return { kind: "corrupt", problem: `a record of ${bodyBytes} bytes, shorter than its ${BATCH_HEADER_BYTES}-byte batch header` };
  if (crc32(data.subarray(at + RECORD_HEADER_BYTES, end)) !== view.getUint32(at + 4, true)) {
    return { kind: "corrupt", problem: `checksum mismatch in a record of ${bodyBytes} bytes that ends ${end === data.length ? "at the end of the file" : `at offset ${end}`}` };
  }
  const body = at + RECORD_HEADER_BYTES;
  return {
    kind: "whole",
    record: {
      epoch: view.getUint32(body, true),
      firstIndex: view.getFloat64(body + 4, true),
      count: view.getUint32(body + 12, true),
      entries: data.subarray(body + BATCH_HEADER_BYTES, end),
      end,
    },
  };
}

/** A record that claims more bytes than the file holds: torn, unless its bytes prove it whole or a whole record follows. */
function pastTheEnd(data: Uint8Array, at: number, bodyBytes: number): RecordRead {
  const wholeEnd = endWhereChecksumMatches(data, at);
  if (wholeEnd !== undefined) {
    return { kind: "corrupt", problem: `its length field says ${bodyBytes} bytes, but its entries end at offset ${wholeEnd} where its checksum matches: a whole record with a damaged length` };
  }
  const next = nextWholeRecord(data, at + 1);
  if (next !== undefined) return { kind: "corrupt", problem: `its length (${bodyBytes} bytes) runs past the end of the file, yet a whole record starts at offset ${next}` };
  return { kind: "torn", problem: `a record of ${bodyBytes} bytes, of which the file holds ${data.length - at - RECORD_HEADER_BYTES}` };
}

/** Where the record at `at` ends by its own count of entries, when that is inside the file and its checksum matches there. */
function endWhereChecksumMatches(data: Uint8Array, at: number): number | undefined {
  const view = viewOf(data);
  const body = at + RECORD_HEADER_BYTES;
  if (body + BATCH_HEADER_BYTES > data.length) return undefined;
  const end = entriesEnd(view, body + BATCH_HEADER_BYTES, view.getUint32(body + 12, true), data.length);
  if (end === undefined) return undefined;
  return crc32(data.subarray(body, end)) === view.getUint32(at + 4, true) ? end : undefined;
}

/**
 * The first offset from `from` on where a whole record starts: a length that fits, a batch header
 * that makes sense, entries that fill the body exactly, and a matching checksum. Only run on a
 * record that looks torn, so a damaged length mid-log cannot pass for the end of the log. The
 * cheap checks come first: most offsets fail on the length or the index before any checksum.
 */
function nextWholeRecord(data: Uint8Array, from: number): number | undefined {
  const view = viewOf(data);
  for (let p = from; p + RECORD_HEADER_BYTES + BATCH_HEADER_BYTES <= data.length; p++) {
    const bodyBytes = view.getUint32(p, true);
    const end = p + RECORD_HEADER_BYTES + bodyBytes;
    if (bodyBytes < BATCH_HEADER_BYTES || end > data.length) continue;
    const body = p + RECORD_HEADER_BYTES;
    const firstIndex = view.getFloat64(body + 4, true);
    if (!Number.isSafeInteger(firstIndex) || firstIndex < 1) continue;
    if (entriesEnd(view, body + BATCH_HEADER_BYTES, view.getUint32(body + 12, true), end) !== end) continue;
    if (crc32(data.subarray(body, end)) === view.getUint32(p + 4, true)) return p;
  }
  return undefined;
}

/** Where `count` entries (`u32 bytes | entry`) starting at `from` end, or undefined when they run past `limit`. */
function entriesEnd(view: DataView, from: number, count: number, limit: number): number | undefined {
  let at = from;
  // Each entry takes at least its 4-byte length, so a damaged count stops at `limit` soon.
  for (let n = count; n > 0; n--) {
    if (at + 4 > limit) return undefined;
    at += 4 + view.getUint32(at, true);
    if (at > limit) return undefined;
  }
  return at;
}

/**
 * CRC-32 (IEEE), as zlib computes it. Bun's is native: on a 250 KB batch it
 * takes ~6 µs where a table loop in JS took 1.6 ms, more than the fsync itself.
 */
export function crc32(bytes: Uint8Array): number {
  return Bun.hash.crc32(bytes) >>> 0;
}

function zerosToEnd(data: Uint8Array, at: number): boolean {
  for (let i = at; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

function viewOf(data: Uint8Array): DataView {
  return new DataView(data.buffer, data.byteOffset, data.byteLength);
}
