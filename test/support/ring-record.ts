// The content of record i in the ring tests, computable on both threads:
// a length from 0 to sizeMax and bytes that depend on the index, so a lost,
// duplicated, reordered or torn record is detected.

export function ringRecordLength(seed: number, i: number, sizeMax: number): number {
  // Mostly small records with a few large ones, so wrap-around happens at many offsets.
  const h = Math.imul(i + 1, 0x9e3779b1) ^ seed;
  const x = (h ^ (h >>> 15)) >>> 0;
  return x % 7 === 0 ? x % (sizeMax + 1) : x % 61;
}

export function ringRecord(seed: number, i: number, sizeMax: number): Uint8Array {
  const out = new Uint8Array(ringRecordLength(seed, i, sizeMax));
  for (let j = 0; j < out.length; j++) out[j] = (i * 31 + j * 7 + seed) & 255;
  return out;
}

/** Null when data[start, start+length) is record i; otherwise what is wrong. */
export function checkRingRecord(seed: number, i: number, sizeMax: number, data: Uint8Array, start: number, length: number): string | null {
  const expected = ringRecordLength(seed, i, sizeMax);
  if (length !== expected) return `record ${i}: length ${length}, expected ${expected}`;
  for (let j = 0; j < length; j++) {
    if (data[start + j] !== ((i * 31 + j * 7 + seed) & 255)) return `record ${i}: byte ${j} is ${data[start + j]}`;
  }
  return null;
}
