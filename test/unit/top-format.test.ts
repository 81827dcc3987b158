// Number and duration text on the dashboard: locale-free, so frames are stable.

import { describe, expect, test } from "bun:test";
import { count, duration, fit, millis, rate } from "../../src/top/format.ts";

describe("format", () => {
  test("count groups thousands", () => {
    expect(count(0)).toBe("0");
    expect(count(999)).toBe("999");
    expect(count(1000)).toBe("1,000");
    expect(count(1234567)).toBe("1,234,567");
    expect(count(-45678)).toBe("-45,678");
  });

  test("rate: '-' when unknown, a decimal for slow rates", () => {
    expect(rate(undefined)).toBe("-");
    expect(rate(0)).toBe("0.0");
    expect(rate(2.25)).toBe("2.3");
    expect(rate(12345.6)).toBe("12,346");
  });

  test("millis keeps precision where it matters", () => {
    expect(millis(0.123)).toBe("0.12");
    expect(millis(12.34)).toBe("12.3");
    expect(millis(1234.5)).toBe("1,235");
  });

  test("duration picks the unit", () => {
    expect(duration(250)).toBe("250 ms");
    expect(duration(3200)).toBe("3.2 s");
    expect(duration(245_000)).toBe("4m05s");
    expect(duration(7_380_000)).toBe("2h03m");
    expect(duration(-1)).toBe("-");
  });

  test("fit cuts with a mark, counting code points", () => {
    expect(fit("abcdef", 10)).toBe("abcdef");
    expect(fit("abcdef", 4)).toBe("abc…");
    expect(fit("▁▂▃▄▅", 3)).toBe("▁▂…");
    expect(fit("abc", 0)).toBe("");
    expect(fit("abc", Infinity)).toBe("abc");
  });
});
