// Built-in task handlers, and countWords cross-checked against the wordcount
// corpus, whose word count is known by construction.

import { describe, expect, test } from "bun:test";
import { decode, encode } from "@msgpack/msgpack";
import { makeWorkload, MIXED_MIX, WORKLOADS } from "../../src/client/workloads.ts";
import { BUILTIN_DURATION_MS_MAX, BUILTIN_TASKS, builtinPayloadProblem, countWords } from "../../src/worker/builtin-tasks.ts";
import type { TaskContext } from "../../src/worker/builtin-tasks.ts";

/** A context for calling built-in handlers directly: nothing here uses more than the signal. */
const CTX: TaskContext = { taskId: 1, attempt: 1, signal: new AbortController().signal, inputs: [], progress: () => {}, log: () => {} };

const utf8 = new TextEncoder();
const text = new TextDecoder();

describe("countWords", () => {
  test("ASCII words separated by spaces, tabs and newlines", () => {
    expect(countWords("")).toBe(0);
    expect(countWords("   \t\n ")).toBe(0);
    expect(countWords("one")).toBe(1);
    expect(countWords("one two  three\tfour\nfive\r\nsix")).toBe(6);
    expect(countWords("  leading and trailing  ")).toBe(3);
  });

  test("punctuation separates words; digits are word characters", () => {
    expect(countWords("hello, world. foo;bar - baz")).toBe(5);
    expect(countWords("a-b_c/d")).toBe(4);
    expect(countWords("x86 2026 3.14")).toBe(4);
    expect(countWords("...!!!???")).toBe(0);
    expect(countWords("(parenthesized) [bracketed] {braced}")).toBe(3);
  });

  test("apostrophes stay inside a word", () => {
    expect(countWords("don't can't it's")).toBe(3);
    expect(countWords("'quoted'")).toBe(1);
    expect(countWords("rock 'n' roll")).toBe(3);
  });

  test("letters outside ASCII are word characters (BMP)", () => {
    expect(countWords("épée naïve zürich")).toBe(3);
    expect(countWords("Привет мир")).toBe(2);
    expect(countWords("日本語")).toBe(1);
    expect(countWords("مرحبا بالعالم")).toBe(2);
    expect(countWords("٣٤ ½")).toBe(2); // Arabic-Indic digits and a vulgar fraction are \p{N}
    expect(countWords("a\u00a0b")).toBe(2); // no-break space separates
    expect(countWords("a—b")).toBe(2); // em dash separates
  });

  test("emoji and symbols are not words", () => {
    expect(countWords("🙂 🎉")).toBe(0);
    expect(countWords("hi 🙂 there")).toBe(2);
    expect(countWords("© ™ €")).toBe(0);
  });

  // BUG (src/worker/builtin-tasks.ts countWords): it tests one UTF-16 code unit
  // at a time, so (1) letters outside the BMP (surrogate pairs) are never word
  // characters: "𝐀𝐁𝐂 word" gives 1, expected 2; "𠀀𠀁" (CJK Ext. B) gives 0,
  // expected 1; and (2) combining marks (\p{M}) end a word: "नमस्ते दुनिया"
  // (Hindi, 2 words) gives 5, and decomposed "e\u0301te\u0301" (été in NFD)
  // gives 2, expected 1. The comment promises "Unicode-aware" words.
  test("letters outside the BMP and combining marks belong to words", () => {
    expect(countWords("𝐀𝐁𝐂 word")).toBe(2);
    expect(countWords("𠀀𠀁")).toBe(1);
    expect(countWords("नमस्ते दुनिया")).toBe(2);
    expect(countWords("e\u0301te\u0301")).toBe(1);
  });
});

describe("wordcount corpus cross-check", () => {
  for (const [seed, chunkWords, tasks] of [[1, 100, 50], [42, 1, 200], [7, 1000, 20], [0xdeadbeef, 37, 64]] as const) {
    test(`countWords of every chunk sums to expectedWords (seed=${seed}, ${tasks} x ${chunkWords})`, () => {
      const workload = makeWorkload({ name: "wordcount", durationMs: 0, seed, chunkWords }, tasks);
      let total = 0;
      for (let i = 0; i < tasks; i++) {
        const spec = workload.task(i);
        expect(spec.type).toBe("wordcount");
        const words = countWords(text.decode(spec.payload));
        if (words !== chunkWords) throw new Error(`seed=${seed} chunk ${i}: ${words} words, expected ${chunkWords}`);
        total += words;
      }
      expect(total).toBe(workload.expectedWords!);
    });
  }

  test("the wordcount handler returns the count as msgpack, matching the corpus", () => {
    const workload = makeWorkload({ name: "wordcount", durationMs: 0, seed: 3, chunkWords: 250 }, 5);
    let total = 0;
    for (let i = 0; i < 5; i++) total += decode(BUILTIN_TASKS.wordcount!(workload.task(i).payload, CTX) as Uint8Array) as number;
    expect(total).toBe(workload.expectedWords!);
  });

  test("chunks are deterministic from the seed and differ between seeds and indexes", () => {
    const a = makeWorkload({ name: "wordcount", durationMs: 0, seed: 5, chunkWords: 50 }, 3);
    const b = makeWorkload({ name: "wordcount", durationMs: 0, seed: 5, chunkWords: 50 }, 3);
    const c = makeWorkload({ name: "wordcount", durationMs: 0, seed: 6, chunkWords: 50 }, 3);
    expect(a.task(1).payload).toEqual(b.task(1).payload);
    expect(a.task(1).payload).not.toEqual(a.task(2).payload);
    expect(a.task(1).payload).not.toEqual(c.task(1).payload);
  });

  test("the corpus exercises the tricky words (apostrophes, accents, digits, several separators)", () => {
    const workload = makeWorkload({ name: "wordcount", durationMs: 0, seed: 11, chunkWords: 5000 }, 1);
    const corpus = text.decode(workload.task(0).payload);
    for (const word of ["don't", "épée", "naïve", "zürich", "x86", "2026"]) expect(corpus).toContain(word);
    for (const sep of [", ", ". ", "\n", " - ", "; ", "\t"]) expect(corpus).toContain(sep);
  });
});

describe("workloads", () => {
  test("every named workload makes tasks the built-ins can run", () => {
    for (const name of WORKLOADS) {
      const workload = makeWorkload({ name, durationMs: 1, seed: 1, chunkWords: 3 }, 10);
      for (let i = 0; i < 10; i++) expect(BUILTIN_TASKS[workload.task(i).type]).toBeDefined();
    }
  });

  test("mixed follows MIXED_MIX's shares, and the same seed gives the same sequence", () => {
    const run = (seed: number) => {
      const w = makeWorkload({ name: "mixed", durationMs: 0, seed, chunkWords: 0 }, 0);
      return Array.from({ length: 20_000 }, (_, i) => w.task(i));
    };
    const a = run(9);
    expect(run(9).map((t) => t.payload)).toEqual(a.map((t) => t.payload));
    for (const m of MIXED_MIX) {
      const count = a.filter((t) => t.type === m.type && (decode(t.payload) as { ms: number }).ms === m.ms).length;
      expect(Math.abs(count / a.length - m.share)).toBeLessThan(0.02);
    }
  });

  test("sleep and cpu carry the duration; noop carries nothing", () => {
    expect(decode(makeWorkload({ name: "sleep", durationMs: 25, seed: 1, chunkWords: 0 }, 1).task(0).payload)).toEqual({ ms: 25 });
    expect(decode(makeWorkload({ name: "cpu", durationMs: 3, seed: 1, chunkWords: 0 }, 1).task(0).payload)).toEqual({ ms: 3 });
    expect(makeWorkload({ name: "noop", durationMs: 3, seed: 1, chunkWords: 0 }, 1).task(0).payload.length).toBe(0);
  });
});

describe("built-in handlers", () => {
  test("noop returns empty output", () => {
    expect(BUILTIN_TASKS.noop!(new Uint8Array(0), CTX)).toEqual(new Uint8Array(0));
  });

  test("cpu with an empty payload or ms 0 returns at once", () => {
    expect(BUILTIN_TASKS.cpu!(new Uint8Array(0), CTX)).toEqual(new Uint8Array(0));
    expect(BUILTIN_TASKS.cpu!(encode({ ms: 0 }), CTX)).toEqual(new Uint8Array(0));
  });

  test("cpu spins for about its duration", () => {
    const start = performance.now();
    BUILTIN_TASKS.cpu!(encode({ ms: 5 }), CTX);
    expect(performance.now() - start).toBeGreaterThanOrEqual(5);
  });

  test("sleep resolves with empty output", async () => {
    const out = BUILTIN_TASKS.sleep!(encode({ ms: 1 }), CTX);
    expect(out).toBeInstanceOf(Promise);
    expect(await out).toEqual(new Uint8Array(0));
  });

  test("durations out of range, or not numbers, throw and name the limit", () => {
    for (const payload of [{ ms: -1 }, { ms: BUILTIN_DURATION_MS_MAX + 1 }, { ms: "soon" }, { ms: Infinity }]) {
      expect(() => BUILTIN_TASKS.cpu!(encode(payload), CTX)).toThrow(String(BUILTIN_DURATION_MS_MAX));
      expect(() => BUILTIN_TASKS.sleep!(encode(payload), CTX)).toThrow("sleep: payload.ms");
    }
  });

  test("a payload without ms means 0", () => {
    expect(BUILTIN_TASKS.cpu!(encode({}), CTX)).toEqual(new Uint8Array(0));
    expect(BUILTIN_TASKS.cpu!(encode(null), CTX)).toEqual(new Uint8Array(0));
  });

  test("a payload that is not {ms} is refused by name, not run as 0 ms", () => {
    expect(builtinPayloadProblem("sleep", encode("abc"))).toBe('sleep: payload must be a map {ms: number}, not "abc"');
    expect(builtinPayloadProblem("cpu", encode([5]))).toStartWith("cpu: payload must be a map {ms: number}");
    expect(builtinPayloadProblem("sleep", encode({ ms: 5, extra: 1 }))).toBe('sleep: payload has an unknown field "extra" (it takes {ms})');
    expect(builtinPayloadProblem("sleep", encode({ ms: "5" }))).toStartWith("sleep: payload.ms must be a number");
    expect(builtinPayloadProblem("sleep", Uint8Array.from([0xc1]))).toStartWith("sleep: payload must be a msgpack map {ms}");
    expect(() => BUILTIN_TASKS.sleep!(encode("abc"), CTX)).toThrow('not "abc"');
    for (const ok of [new Uint8Array(0), encode(null), encode({}), encode({ ms: 10 })]) expect(builtinPayloadProblem("sleep", ok)).toBeUndefined();
    expect(builtinPayloadProblem("resize", encode("anything"))).toBeUndefined(); // not built in: its handler's business
  });

  test("wordcount takes UTF-8 text or a msgpack string; other bytes are refused", () => {
    expect(decode(BUILTIN_TASKS.wordcount!(encode("one two three"), CTX) as Uint8Array)).toBe(3);
    expect(decode(BUILTIN_TASKS.wordcount!(encode("word ".repeat(40)), CTX) as Uint8Array)).toBe(40); // str8
    expect(builtinPayloadProblem("wordcount", Uint8Array.from([0xff, 0xfe, 0x00]))).toBe("wordcount: payload must be UTF-8 text or a msgpack string");
    expect(builtinPayloadProblem("wordcount", utf8.encode("قال الرجل"))).toBeUndefined();
  });

  test("wordcount of UTF-8 text", () => {
    expect(decode(BUILTIN_TASKS.wordcount!(utf8.encode("the quick brown fox, don't"), CTX) as Uint8Array)).toBe(5);
    expect(decode(BUILTIN_TASKS.wordcount!(new Uint8Array(0), CTX) as Uint8Array)).toBe(0);
  });
});
