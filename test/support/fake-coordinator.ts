// A scripted coordinator for worker tests: listens on a free loopback port,
// answers the worker's HELLO with the WELCOME it is told (at once or when the
// test says), sends ROLE and ASSIGN on demand, and records what the worker sends.
// Router tests script its answers to control requests (`answers`).

import type { Socket, TCPSocketListener } from "bun";
import { encode } from "@msgpack/msgpack";
import { forEachMessage, FrameWriter, readControl, readResult, Reader, writeAssign, writeControl } from "../../src/protocol/codec.ts";
import { FrameDecoder } from "../../src/protocol/frame-decoder.ts";
import { Kind, PROTOCOL_VERSION, type Hello, type RoleChange, type Welcome } from "../../src/protocol/messages.ts";

/** What the worker may send us in one frame: generous, we are not the one under test. */
const FRAME_BYTES_MAX = 16 << 20;
const WAIT_POLL_MS = 5;
const ASSIGN_TIMEOUT_MS = 30_000;

export interface FakeRole {
  shard: number;
  epoch: number;
  primary: boolean;
}

export class FakeCoordinator {
  /** RESULTs received, in order. */
  readonly results: { taskId: number; attempt: number; status: number }[] = [];
  heartbeats = 0;
  hello: Hello | undefined;
  welcomed = false;
  /** Control requests it answers, by kind: the answer's kind and body (the request id is added). Others go unanswered. */
  readonly answers = new Map<number, (body: Record<string, unknown>) => { kind: number; body: Record<string, unknown> }>();
  private socket: Socket<undefined> | undefined;
  private listener: TCPSocketListener<undefined> | undefined;
  private readonly decoder = new FrameDecoder(FRAME_BYTES_MAX);
  private readonly reader = new Reader();
  private readonly writer = new FrameWriter();

  /** `welcomeAtOnce: false`: the HELLO is left unanswered until welcome() (a coordinator the worker hears of later). */
  constructor(
    public role: FakeRole,
    private readonly welcomeAtOnce = true,
    readonly nodeId = `fake-${role.shard}-${role.epoch}`,
  ) {}

  /** `port`: listen where an earlier fake did (a coordinator restarted in place); 0: any free port. */
  static async start(role: FakeRole, welcomeAtOnce = true, port = 0): Promise<FakeCoordinator> {
    const fake = new FakeCoordinator(role, welcomeAtOnce);
    fake.listener = Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (s) => {
          fake.socket = s;
          fake.heartbeats = 0;
          fake.welcomed = false;
        },
        data: (_s, chunk) => fake.receive(chunk),
        close: (s) => {
          if (fake.socket === s) fake.socket = undefined;
        },
      },
    });
    return fake;
  }

  get port(): number {
    return this.listener!.port;
  }

  get address(): { host: string; port: number } {
    return { host: "127.0.0.1", port: this.port };
  }

  get connected(): boolean {
    return this.socket !== undefined;
  }

  resultFor(taskId: number): { taskId: number; attempt: number; status: number } | undefined {
    return this.results.find((r) => r.taskId === taskId);
  }

  welcome(): void {
    const w: Welcome = { role: "coordinator", version: PROTOCOL_VERSION, nodeId: this.nodeId, shard: this.role.shard, epoch: this.role.epoch, primary: this.role.primary };
    writeControl(this.writer, Kind.WELCOME, w);
    this.flush();
    this.welcomed = true;
  }

  sendRole(epoch: number, primary: boolean): void {
    this.role = { ...this.role, epoch, primary };
    const r: RoleChange = { nodeId: this.nodeId, shard: this.role.shard, epoch, primary };
    writeControl(this.writer, Kind.ROLE, r);
    this.flush();
  }

  assign(taskId: number, type = "noop", payload: unknown = undefined): void {
    writeAssign(this.writer, taskId, 1, ASSIGN_TIMEOUT_MS, type, payload === undefined ? new Uint8Array(0) : encode(payload));
    this.flush();
  }

  /** Resolves once the worker has sent a heartbeat since the WELCOME: proof it took the WELCOME in. */
  async heardSinceWelcome(timeoutMs: number): Promise<void> {
    await waitUntil(`a heartbeat to ${this.nodeId} after its WELCOME`, () => this.welcomed && this.heartbeats > 0, timeoutMs);
  }

  stop(): void {
    this.socket?.end();
    this.listener?.stop(true);
  }

  private flush(): void {
    if (this.socket === undefined) throw new Error(`${this.nodeId}: no worker connected`);
    this.socket.write(this.writer.finish().slice());
    this.writer.reset();
  }

  private receive(chunk: Uint8Array): void {
    this.decoder.push(chunk, (body) =>
      forEachMessage(body, this.reader, (kind, r) => {
        if (kind === Kind.HELLO) {
          this.hello = readControl<Hello>(r);
          if (this.welcomeAtOnce) this.welcome();
        } else if (kind === Kind.HEARTBEAT) {
          if (this.welcomed) this.heartbeats++;
        } else if (kind === Kind.RESULT) {
          const { taskId, attempt, status } = readResult(r);
          this.results.push({ taskId, attempt, status });
        } else {
          const answer = this.answers.get(kind);
          if (answer === undefined) return;
          const request = readControl<Record<string, unknown>>(r);
          const reply = answer(request);
          writeControl(this.writer, reply.kind, { ...reply.body, requestId: request.requestId });
          this.flush();
        }
      }),
    );
  }
}

/** Polls `check` until true, or throws naming `what` at the deadline. */
export async function waitUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(WAIT_POLL_MS);
  }
}
