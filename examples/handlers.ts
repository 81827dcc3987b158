// Example task handlers, loaded by a worker with:
//   dist/worker -p 5000 --handlers examples/handlers.ts
// Each export is a task type. A handler gets the payload (decoded from msgpack)
// and a context (attempt, abort signal, progress, logger, parent results) and
// returns a value (encoded with msgpack) or throws to fail the attempt.

import type { HandlerContext } from "../src/worker/handlers.ts";

/** A grayscale image: width x height bytes, row by row. */
interface Image {
  width: number;
  height: number;
  pixels: Uint8Array;
}

/** Halves an image in each direction by averaging 2x2 blocks: an image-like transform on bytes. */
function downscale(payload: Image, ctx: HandlerContext): Image {
  const { width, height, pixels } = payload;
  if (!(pixels instanceof Uint8Array) || pixels.length !== width * height) {
    throw new Error(`resize: expected ${width}x${height} = ${width * height} pixel bytes, got ${pixels?.length}`);
  }
  const w = Math.floor(width / 2);
  const h = Math.floor(height / 2);
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 2 * y * width + 2 * x;
      out[y * w + x] = (pixels[i]! + pixels[i + 1]! + pixels[i + width]! + pixels[i + width + 1]!) >> 2;
    }
    if (y % 64 === 0) ctx.progress(y / h);
  }
  return { width: w, height: h, pixels: out };
}

/** Word frequencies of one chunk of text: the map step. */
function countWords(text: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? []) counts[word] = (counts[word] ?? 0) + 1;
  return counts;
}

export default {
  resize: async (payload: Image, ctx: HandlerContext) => downscale(payload, ctx),

  "wordfreq-map": (text: string) => countWords(text),

  /** The reduce step: sums the maps of every parent task (its inputs). */
  "wordfreq-reduce": (_payload: unknown, ctx: HandlerContext) => {
    const total: Record<string, number> = {};
    for (const counts of ctx.inputs as Array<Record<string, number>>) {
      for (const [word, n] of Object.entries(counts)) total[word] = (total[word] ?? 0) + n;
    }
    ctx.log("reduced", { maps: ctx.inputs.length, words: Object.keys(total).length });
    return total;
  },

  /** Works for `ms` milliseconds, reporting progress, and stops early if cancelled. */
  "slow-job": async (payload: { ms: number }, ctx: HandlerContext) => {
    const steps = 10;
    for (let i = 1; i <= steps; i++) {
      if (ctx.signal.aborted) throw new Error("stopped: cancelled");
      await Bun.sleep(payload.ms / steps);
      ctx.progress(i / steps);
    }
    return { done: true, attempt: ctx.attempt };
  },

  /** Fails until the given attempt, then succeeds: shows retries. */
  flaky: (payload: { succeedOnAttempt: number }, ctx: HandlerContext) => {
    if (ctx.attempt < payload.succeedOnAttempt) throw new Error(`flaky: attempt ${ctx.attempt} fails on purpose`);
    return { attempt: ctx.attempt };
  },

  /** Always throws: ends in the dead-letter queue. */
  "always-fails": () => {
    throw new TypeError("always-fails: this handler never succeeds");
  },
};
