// top --servers A,B: a failed poll moves on to the next address, round robin,
// and each failure names the address that failed.

import { expect, test } from "bun:test";
import { StatsSource } from "../../src/top/stats-source.ts";

function closedPort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = listener.port;
  listener.stop(true);
  return port;
}

test("a failed poll moves on to the next of --servers, wrapping", async () => {
  const [a, b] = [closedPort(), closedPort()];
  const source = new StatsSource({ targets: [{ host: "127.0.0.1", port: a }, { host: "127.0.0.1", port: b }], timeoutMs: 2000 });
  try {
    const polled: string[] = [];
    for (let i = 0; i < 3; i++) {
      const poll = await source.poll();
      expect(poll.ok).toBe(false);
      polled.push(poll.target);
      if (!poll.ok) expect(poll.error).toContain(`${poll.target} unreachable`);
    }
    expect(polled).toEqual([`127.0.0.1:${a}`, `127.0.0.1:${b}`, `127.0.0.1:${a}`]);
  } finally {
    source.close();
  }
});

test("no address is refused at construction", () => {
  expect(() => new StatsSource({ targets: [], timeoutMs: 100 })).toThrow("at least one address");
});
