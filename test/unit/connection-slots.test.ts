// Slot accounting by connection kind and the idle clock, as pure logic: the
// rules that keep idle clients from starving workers, routers and peers.

import { describe, expect, test } from "bun:test";
import { ConnectionSlots, IdleClock, slotKindOf } from "../../src/net/connection-slots.ts";

const LIMITS = { handshakesMax: 3, clientsMax: 2, peersMax: 2 };

/** A slots table with `n` connections named c0.. that completed their handshake as clients. */
function withClients(n: number): ConnectionSlots<string> {
  const slots = new ConnectionSlots<string>({ ...LIMITS, handshakesMax: n + 1, clientsMax: n });
  for (let i = 0; i < n; i++) {
    slots.open(`c${i}`);
    expect(slots.identify(`c${i}`, "client")).toBeUndefined();
  }
  return slots;
}

describe("slotKindOf", () => {
  test("clients and top are clients; workers, routers and coordinators are peers", () => {
    expect(slotKindOf("client")).toBe("client");
    expect(slotKindOf("top")).toBe("client");
    expect(slotKindOf("worker")).toBe("peer");
    expect(slotKindOf("router")).toBe("peer");
    expect(slotKindOf("coordinator")).toBe("peer");
  });
});

describe("ConnectionSlots", () => {
  test("clients past their limit are refused, naming the limit and its flag", () => {
    const slots = withClients(2);
    slots.open("c2");
    const refusal = slots.identify("c2", "client");
    expect(refusal).toContain("2 client connections");
    expect(refusal).toContain("--connections-max");
    // The refused one still holds its handshaking slot until it is closed.
    expect(slots.count("handshaking")).toBe(1);
    slots.close("c2");
    expect(slots.count("handshaking")).toBe(0);
    expect(slots.count("client")).toBe(2);
  });

  test("a full set of clients leaves every peer slot free: idle clients cannot shut out a worker", () => {
    const slots = withClients(2);
    for (const w of ["worker", "router"]) {
      expect(slots.open(w)).toBeUndefined();
      expect(slots.identify(w, "peer")).toBeUndefined();
    }
    expect(slots.count("peer")).toBe(2);
    slots.open("third-peer");
    const refusal = slots.identify("third-peer", "peer");
    expect(refusal).toContain("2 worker, router and coordinator links");
    expect(refusal).toContain("--peer-connections-max");
  });

  test("peers never take client slots either", () => {
    const slots = new ConnectionSlots<string>(LIMITS);
    for (const p of ["p0", "p1"]) {
      slots.open(p);
      expect(slots.identify(p, "peer")).toBeUndefined();
    }
    slots.open("c0");
    expect(slots.identify("c0", "client")).toBeUndefined();
    expect(slots.count("client")).toBe(1);
  });

  test("closing a connection frees the slot of its kind, and only that", () => {
    const slots = withClients(2);
    slots.open("c2");
    expect(slots.identify("c2", "client")).toBeDefined();
    slots.close("c0");
    expect(slots.count("client")).toBe(1);
    slots.open("c3");
    expect(slots.identify("c3", "client")).toBeUndefined();
    // Closing twice, or closing what was never opened, changes nothing.
    slots.close("c0");
    slots.close("never-opened");
    expect(slots.count("client")).toBe(2);
  });

  test("past handshakesMax the oldest handshake makes room for the newest", () => {
    const slots = new ConnectionSlots<string>(LIMITS);
    expect(slots.open("a")).toBeUndefined();
    expect(slots.open("b")).toBeUndefined();
    expect(slots.open("c")).toBeUndefined();
    expect(slots.open("d")).toBe("a");
    // b completes its handshake: the oldest still handshaking is c.
    expect(slots.identify("b", "client")).toBeUndefined();
    expect(slots.open("e")).toBeUndefined();
    expect(slots.open("f")).toBe("c");
    expect(slots.count("handshaking")).toBe(3);
    // An evicted connection holds nothing: identifying it is refused, closing it frees nothing.
    expect(slots.identify("a", "client")).toBe("this connection was not in its handshake");
    slots.close("a");
    expect(slots.count("handshaking")).toBe(3);
  });

  test("a connection is identified once", () => {
    const slots = new ConnectionSlots<string>(LIMITS);
    slots.open("x");
    expect(slots.identify("x", "client")).toBeUndefined();
    expect(slots.identify("x", "peer")).toBe("this connection was not in its handshake");
    expect(slots.count("client")).toBe(1);
    expect(slots.count("peer")).toBe(0);
  });

  test("clientConnections lists the clients for the idle sweep, not peers or handshakes", () => {
    const slots = withClients(2);
    slots.open("w");
    slots.identify("w", "peer");
    slots.open("pending");
    expect([...slots.clientConnections]).toEqual(["c0", "c1"]);
  });
});

describe("IdleClock", () => {
  test("idle time counts from the first sweep that found nothing heard", () => {
    const clock = new IdleClock();
    expect(clock.sweep(1_000)).toBe(0); // starts heard
    expect(clock.sweep(1_500)).toBe(500);
    expect(clock.sweep(2_000)).toBe(1_000);
    clock.heard = true;
    expect(clock.sweep(2_500)).toBe(0);
    expect(clock.sweep(3_000)).toBe(500);
  });

  test("a client waiting for an answer is never idle, however long it is quiet; the clock starts when the wait ends", () => {
    const clock = new IdleClock();
    clock.startWait();
    clock.startWait();
    for (let t = 0; t <= 600_000; t += 60_000) expect(clock.sweep(t)).toBe(0);
    clock.endWait();
    expect(clock.sweep(660_000)).toBe(0);
    clock.endWait();
    expect(clock.waiting).toBe(0);
    // Idle since the last sweep that saw the wait, not since the client last spoke.
    expect(clock.sweep(700_000)).toBe(40_000);
    expect(clock.sweep(760_000)).toBe(100_000);
  });

  test("an end without a start cannot cancel a later wait", () => {
    const clock = new IdleClock();
    clock.endWait();
    clock.startWait();
    expect(clock.waiting).toBe(1);
    clock.sweep(0);
    expect(clock.sweep(10_000)).toBe(0);
  });
});
