// host:port parsing shared by every binary's flags.

import { describe, expect, test } from "bun:test";
import { parseHostPort, parseHostPortList } from "../../src/net/endpoints.ts";

describe("parseHostPort", () => {
  test("host:port", () => {
    expect(parseHostPort("127.0.0.1:5000")).toEqual({ host: "127.0.0.1", port: 5000 });
    expect(parseHostPort("coordinator-1.local:65535")).toEqual({ host: "coordinator-1.local", port: 65535 });
    expect(parseHostPort("h:1")).toEqual({ host: "h", port: 1 });
  });

  test("a port alone or :port takes the default host", () => {
    expect(parseHostPort("5000")).toEqual({ host: "127.0.0.1", port: 5000 });
    expect(parseHostPort(":5000")).toEqual({ host: "127.0.0.1", port: 5000 });
    expect(parseHostPort("5000", "0.0.0.0")).toEqual({ host: "0.0.0.0", port: 5000 });
    expect(parseHostPort(":6000", "::")).toEqual({ host: "::", port: 6000 });
  });

  test("bracketed IPv6", () => {
    expect(parseHostPort("[::1]:5000")).toEqual({ host: "::1", port: 5000 });
    expect(parseHostPort("[fe80::1%eth0]:80")).toEqual({ host: "fe80::1%eth0", port: 80 });
  });

  test("surrounding whitespace is ignored", () => {
    expect(parseHostPort("  localhost:5000\n")).toEqual({ host: "localhost", port: 5000 });
  });

  test("bad ports and missing ports are errors that quote the input", () => {
    for (const bad of ["host:0", "host:65536", "host:", "host", "host:-1", "host:5e3", "host:50.0", "host: 5000", "[::1]", "[::1]:", "", ":", "host:0x10", "host:1:x"]) {
      expect(() => parseHostPort(bad)).toThrow(`"${bad}"`);
    }
  });
});

describe("parseHostPortList", () => {
  test("comma-separated, empty items skipped", () => {
    expect(parseHostPortList("127.0.0.1:5000,127.0.0.1:5001")).toEqual([
      { host: "127.0.0.1", port: 5000 },
      { host: "127.0.0.1", port: 5001 },
    ]);
    expect(parseHostPortList(" a:1 , ,b:2,")).toEqual([{ host: "a", port: 1 }, { host: "b", port: 2 }]);
    expect(parseHostPortList("5000,[::1]:5001", "10.0.0.1")).toEqual([{ host: "10.0.0.1", port: 5000 }, { host: "::1", port: 5001 }]);
  });

  test("an empty list is an error", () => {
    for (const bad of ["", ",", " , "]) expect(() => parseHostPortList(bad)).toThrow("names no host:port");
  });

  test("one bad item fails the whole list, naming it", () => {
    expect(() => parseHostPortList("a:1,b:99999")).toThrow('"b:99999"');
  });
});

describe("unbracketed IPv6", () => {
  // "::1:5000" could be an address or an address and a port: ambiguous, so refused
  // with a hint to use brackets, like every unbracketed IPv6 address.
  test("a host with colons is refused: IPv6 needs [address]:port", () => {
    expect(() => parseHostPort("::1:5000")).toThrow("[address]:port");
  });

  test("a bare IPv6 address without a port is an error, not host ':' port 1", () => {
    expect(() => parseHostPort("::1")).toThrow('"::1"');
    expect(() => parseHostPort("fe80::2")).toThrow('"fe80::2"');
  });
});
