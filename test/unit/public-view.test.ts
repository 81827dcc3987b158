// What public JSON (REST answers, the CLI's output) leaves out of a message.

import { expect, test } from "bun:test";
import { publicView } from "../../src/protocol/public-view.ts";

test("publicView drops requestId at any depth and keeps the rest (bytes too)", () => {
  const bytes = new Uint8Array([1, 2]);
  expect(publicView({ requestId: 3, coordinators: [{ stats: { requestId: 4, shard: 0 } }], output: bytes })).toEqual({ coordinators: [{ stats: { shard: 0 } }], output: bytes });
});
