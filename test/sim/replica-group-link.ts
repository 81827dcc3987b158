// The simulated LeaderLink (src/coordinator/control-ports.ts; in the process a
// CoordinatorLink, src/coordinator/leader-link.ts): a backup's connection to the
// node it follows, redialled with backoff while wanted. Its WELCOME and ROLE
// messages say whether that node is primary and at which epoch; replication
// traffic goes up to the real EtcdControl.

import type { LeaderLink, LeaderLinkEvents } from "../../src/coordinator/control-ports.ts";
import type { Msg, SimNode } from "./replica-group-node.ts";
import { CONTROL } from "./replica-group-ports.ts";
import type { Conn, ConnEnd } from "./replica-group-world.ts";

export class SimLink implements LeaderLink<Msg> {
  up = false;
  primary = false;
  epoch = 0;
  private closed = false;
  private conn: Conn<Msg> | undefined;
  private end: ConnEnd<Msg> | undefined;
  private failures = 0;
  /** Each dial's callbacks act only while it is the current one. */
  private attempt = 0;

  constructor(readonly label: string, private readonly events: LeaderLinkEvents<Msg>, private readonly node: SimNode) {
    if ((node.cluster.node(label) as SimNode | undefined) === undefined) throw new Error(`no node is called ${label}`);
  }

  connect(): void {
    if (this.closed) return;
    const attempt = ++this.attempt;
    const world = this.node.cluster.world;
    const target = this.node.cluster.node(this.label);
    const end: ConnEnd<Msg> = {
      host: this.node, inc: this.node.inc, closed: false,
      message: (conn, msg) => attempt === this.attempt && this.onMessage(conn, msg),
      closedByPeer: (conn) => attempt === this.attempt && this.onDown(conn),
    };
    this.end = end;
    world.dial(end, target, (conn) => target.accept(conn), () => attempt === this.attempt && this.retry());
    world.timer(this.node, CONTROL.helloTimeoutMs, () => {
      if (attempt !== this.attempt || this.up || this.closed) return;
      end.closed = true;
      this.retry();
    });
  }

  /**
   * Closed for good. CoordinatorLink.close ends the socket; when the socket is closed
   * (the peer's close came back, or a dead link was noticed) its onClose runs, and
   * onDown when the link was up: that reaches the control even for a replaced link.
   */
  close(): void {
    this.closed = true;
    const world = this.node.cluster.world;
    if (this.conn !== undefined) {
      const wasUp = this.up;
      world.close(this.conn, 0);
      if (wasUp) world.timer(this.node, world.closeHeardMs(this.node.name, this.label), () => this.events.onDown(this));
    } else if (this.end !== undefined) this.end.closed = true;
  }

  send(msg: Msg): void {
    if (this.up && this.conn !== undefined) this.node.cluster.world.send(this.conn, 0, msg);
  }

  requestSync(epoch: number, replicaId: string): void {
    this.send({ kind: "sync", epoch, replicaId });
  }

  private onMessage(conn: Conn<Msg>, msg: Msg): void {
    if (this.closed) return;
    this.conn = conn;
    if (msg.kind === "welcome" || msg.kind === "role") {
      this.up = true;
      this.failures = 0;
      this.primary = msg.primary;
      this.epoch = msg.epoch;
      return msg.kind === "welcome" ? this.events.onUp(this) : this.events.onRole(this);
    }
    if (msg.kind === "snapshot" || msg.kind === "append") this.events.onReplication(this, msg);
    this.events.onReadEnd(this);
  }

  /** The connection closed under us (CoordinatorLink.onClose): onDown if it was up, then redial. */
  private onDown(conn: Conn<Msg>): void {
    if (this.conn !== conn) return;
    if (this.up) this.events.onDown(this);
    this.retry();
  }

  private retry(): void {
    this.attempt++;
    this.up = false;
    this.conn = undefined;
    if (this.closed) return;
    const delay = Math.min(CONTROL.reconnectMaxMs, CONTROL.reconnectMinMs * 2 ** this.failures++);
    this.node.cluster.world.timer(this.node, delay + this.node.cluster.world.prng.int(delay), () => this.connect());
  }
}
