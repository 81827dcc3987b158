// Error codes: every code has a sentence; ProtocolError carries its code.

import { describe, expect, test } from "bun:test";
import { ERROR_CODES, isErrorCode, isRetryable, ProtocolError } from "../../src/protocol/errors.ts";

describe("errors", () => {
  test("every code is E_ + upper snake case with a non-empty sentence", () => {
    for (const [code, sentence] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^E_[A-Z_]+$/);
      expect(sentence.length).toBeGreaterThan(10);
    }
  });

  test("ProtocolError is an Error with its code, default message and name", () => {
    const err = new ProtocolError("E_QUEUE_FULL");
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe("E_QUEUE_FULL");
    expect(err.message).toBe(ERROR_CODES.E_QUEUE_FULL);
    expect(err.name).toBe("ProtocolError");
    expect(new ProtocolError("E_BAD_FRAME", "custom").message).toBe("custom");
  });

  test("isErrorCode accepts known codes only, not inherited properties", () => {
    expect(isErrorCode("E_BAD_FRAME")).toBe(true);
    for (const bad of ["E_NOPE", "", "toString", "constructor", "__proto__", 5, null, undefined]) expect(isErrorCode(bad)).toBe(false);
  });

  test("retryable codes are the transient ones", () => {
    const retryable = Object.keys(ERROR_CODES).filter((c) => isRetryable(c as keyof typeof ERROR_CODES)).sort();
    expect(retryable).toEqual(["E_HANDSHAKE_TIMEOUT", "E_IDLE_TIMEOUT", "E_NOT_PRIMARY", "E_QUEUE_FULL", "E_SHUTTING_DOWN", "E_SLOW_READER", "E_TOO_MANY_CONNECTIONS", "E_UNAVAILABLE"]);
  });
});
