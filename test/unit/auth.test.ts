import { describe, expect, test } from "bun:test";
import { ALL_GRANTS, authorizeHello, authorizeHttp, authorizeKind, httpGrants, isLoopback, TOKEN_CHARS_MIN, TokenTable } from "../../src/net/auth.ts";
import { ProtocolError } from "../../src/protocol/errors.ts";
import { Kind } from "../../src/protocol/messages.ts";

const FILE = `
# comment line
replica  cluster-secret-000000
worker   worker-secret-0000000   # trailing comment
submit   submit-secret-0000000
read     read-secret-00000000
admin    admin-secret-00000000
replica  second-replica-000000
`;

const table = TokenTable.parse(FILE);

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.code;
    throw err;
  }
  return undefined;
}

describe("TokenTable.parse", () => {
  test("maps each token to its role's grants; the first replica token is the cluster token", () => {
    expect([...table.grantsOf("read-secret-00000000")!].sort()).toEqual(["read"]);
    expect([...table.grantsOf("submit-secret-0000000")!].sort()).toEqual(["read", "submit"]);
    expect([...table.grantsOf("admin-secret-00000000")!].sort()).toEqual(["admin", "read", "submit"]);
    expect([...table.grantsOf("worker-secret-0000000")!].sort()).toEqual(["worker"]);
    expect([...table.grantsOf("cluster-secret-000000")!].sort()).toEqual(["admin", "read", "replica", "submit"]);
    expect(table.clusterToken).toBe("cluster-secret-000000");
    expect(table.open).toBe(false);
  });

  test("unknown, missing and near-miss tokens get nothing", () => {
    expect(table.grantsOf(undefined)).toBeUndefined();
    expect(table.grantsOf("")).toBeUndefined();
    expect(table.grantsOf("read-secret-00000001")).toBeUndefined();
    expect(table.grantsOf("read-secret-00000000 ")).toBeUndefined();
  });

  test("refuses bad lines with their line number, short tokens, and an empty file", () => {
    expect(() => TokenTable.parse("root secret-secret-secret")).toThrow(/line 1: expected "<role> <token>"/);
    expect(() => TokenTable.parse("\nread")).toThrow(/line 2/);
    expect(() => TokenTable.parse("read a b-is-one-too-many-field")).toThrow(/line 1/);
    expect(() => TokenTable.parse("read short")).toThrow(new RegExp(`at least ${TOKEN_CHARS_MIN} characters`));
    expect(() => TokenTable.parse("# nothing\n\n")).toThrow(/holds no tokens/);
  });

  test("load: an empty path is the open table; a missing file names its path", () => {
    expect(TokenTable.load("")).toBe(TokenTable.OPEN);
    expect(() => TokenTable.load("/nonexistent/tokens")).toThrow(/cannot read tokens file \/nonexistent\/tokens/);
  });
});

describe("the open table (no tokens configured)", () => {
  test("grants everything to anyone, token or not", () => {
    expect(TokenTable.OPEN.open).toBe(true);
    expect(TokenTable.OPEN.grantsOf(undefined)).toBe(ALL_GRANTS);
    expect(authorizeHello(TokenTable.OPEN, "coordinator", undefined)).toBe(ALL_GRANTS);
    expect(authorizeHttp(TokenTable.OPEN, null, "admin")).toBeUndefined();
  });
});

describe("authorizeHello", () => {
  test("each connection role needs its token role", () => {
    expect(code(() => authorizeHello(table, "client", "read-secret-00000000"))).toBeUndefined();
    expect(code(() => authorizeHello(table, "top", "read-secret-00000000"))).toBeUndefined();
    expect(code(() => authorizeHello(table, "worker", "worker-secret-0000000"))).toBeUndefined();
    expect(code(() => authorizeHello(table, "coordinator", "cluster-secret-000000"))).toBeUndefined();
    expect(code(() => authorizeHello(table, "router", "second-replica-000000"))).toBeUndefined();
  });

  test("a worker token cannot act as a client, nor a client token as a worker or peer", () => {
    expect(code(() => authorizeHello(table, "client", "worker-secret-0000000"))).toBe("E_UNAUTHORIZED");
    expect(code(() => authorizeHello(table, "worker", "admin-secret-00000000"))).toBe("E_UNAUTHORIZED");
    expect(code(() => authorizeHello(table, "coordinator", "admin-secret-00000000"))).toBe("E_UNAUTHORIZED");
    expect(code(() => authorizeHello(table, "router", "worker-secret-0000000"))).toBe("E_UNAUTHORIZED");
  });

  test("missing, wrong and non-string tokens are refused without echoing the token", () => {
    expect(code(() => authorizeHello(table, "client", undefined))).toBe("E_UNAUTHORIZED");
    expect(code(() => authorizeHello(table, "client", 12345))).toBe("E_UNAUTHORIZED");
    try {
      authorizeHello(table, "client", "guess-guess-guess-guess");
    } catch (err) {
      expect((err as Error).message).not.toContain("guess");
    }
  });
});

describe("authorizeKind", () => {
  const read = table.grantsOf("read-secret-00000000")!;
  const submit = table.grantsOf("submit-secret-0000000")!;
  const admin = table.grantsOf("admin-secret-00000000")!;
  const worker = table.grantsOf("worker-secret-0000000")!;

  test("read may query but not submit or cancel", () => {
    for (const kind of [Kind.STATS_REQUEST, Kind.TASK_QUERY, Kind.WATCH, Kind.DLQ_LIST]) expect(code(() => authorizeKind(read, kind, "K"))).toBeUndefined();
    for (const kind of [Kind.SUBMIT, Kind.WORKFLOW, Kind.CANCEL]) expect(code(() => authorizeKind(read, kind, "K"))).toBe("E_UNAUTHORIZED");
  });

  test("submit may submit and cancel but not touch the DLQ; admin may", () => {
    expect(code(() => authorizeKind(submit, Kind.SUBMIT, "SUBMIT"))).toBeUndefined();
    expect(code(() => authorizeKind(submit, Kind.CANCEL, "CANCEL"))).toBeUndefined();
    expect(code(() => authorizeKind(submit, Kind.DLQ_REQUEUE, "DLQ_REQUEUE"))).toBe("E_UNAUTHORIZED");
    expect(code(() => authorizeKind(admin, Kind.DLQ_REQUEUE, "DLQ_REQUEUE"))).toBeUndefined();
    expect(code(() => authorizeKind(admin, Kind.DLQ_PURGE, "DLQ_PURGE"))).toBeUndefined();
  });

  test("only workers send results and heartbeats; only replicas replicate; workers cannot submit", () => {
    expect(code(() => authorizeKind(admin, Kind.RESULT, "RESULT"))).toBe("E_UNAUTHORIZED");
    expect(code(() => authorizeKind(admin, Kind.HEARTBEAT, "HEARTBEAT"))).toBe("E_UNAUTHORIZED");
    expect(code(() => authorizeKind(admin, Kind.REPL_SYNC, "REPL_SYNC"))).toBe("E_UNAUTHORIZED");
    expect(code(() => authorizeKind(worker, Kind.RESULT, "RESULT"))).toBeUndefined();
    expect(code(() => authorizeKind(worker, Kind.SUBMIT, "SUBMIT"))).toBe("E_UNAUTHORIZED");
  });
});

describe("authorizeHttp", () => {
  test("401 without a valid bearer token, 403 without the role, nothing when allowed", () => {
    expect(authorizeHttp(table, null, "read")?.status).toBe(401);
    expect(authorizeHttp(table, "Basic abc", "read")?.status).toBe(401);
    expect(authorizeHttp(table, "Bearer wrong-wrong-wrong-wrong", "read")?.status).toBe(401);
    expect(authorizeHttp(table, "Bearer read-secret-00000000", "submit")?.status).toBe(403);
    expect(authorizeHttp(table, "Bearer read-secret-00000000", "read")).toBeUndefined();
    expect(authorizeHttp(table, "bearer  admin-secret-00000000 ", "admin")).toBeUndefined();
  });
});

test("httpGrants: what a bearer token allows, everything when open, nothing for a missing or unknown token", () => {
  expect(httpGrants(TokenTable.OPEN, null)).toBe(ALL_GRANTS);
  expect(httpGrants(table, null)).toBeUndefined();
  expect(httpGrants(table, "Bearer wrong-wrong-wrong-wrong")).toBeUndefined();
  expect([...httpGrants(table, "Bearer read-secret-00000000")!]).toEqual(["read"]);
  expect([...httpGrants(table, "bearer  admin-secret-00000000 ")!]).toEqual(["read", "submit", "admin"]);
});

test("isLoopback", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) expect(isLoopback(h)).toBe(true);
  for (const h of ["0.0.0.0", "::", "10.0.0.5", "example.com"]) expect(isLoopback(h)).toBe(false);
});
