// The replica group simulation's checkers, run as things happen and after every
// step. They judge by etcd and by what was acknowledged, never by the code
// under test: (1) the leader etcd names holds every acknowledged entry;
// (2) a node acts as primary only while etcd could still name it (its epoch's
// leader key, or that key's lease, lives); (3) etcd's ISR never names a replica
// whose log lacks a committed entry. A failure says how to reproduce it.

import type { SimEtcd } from "./replica-group-etcd.ts";
import { isrMembersOf, KEYS, leaderReplicaIdOf } from "./replica-group-ports.ts";
import type { Entry, Held, SimNode } from "./replica-group-node.ts";
import type { World } from "./replica-group-world.ts";

export class SimFailure extends Error {}

export interface AckRecord {
  serial: number;
  index: number;
  submission: number;
  node: string;
  epoch: number;
  at: number;
}

export class Checks {
  readonly acks: AckRecord[] = [];
  /** The serial committed at each index (index - 1), by whichever leader's InSyncReplicas said so first. */
  readonly committedLog: number[] = [];
  /** Per node: how far its current log array agrees with committedLog (logs only grow, or are replaced whole). */
  private readonly agreed = new Map<SimNode, { log: Entry[]; upTo: number }>();
  private leaderChecked: { node: SimNode; inc: number; epoch: number; acks: number } | undefined;

  constructor(
    private readonly seed: number,
    private readonly world: World,
    private readonly etcd: SimEtcd,
    private readonly nodes: readonly SimNode[],
    private readonly step: () => number,
  ) {}

  /**
   * The first failure, thrown again after the step: a checker runs inside the code under
   * test (a promotion's pump, an awaited etcd answer), where a catch or a promise could
   * otherwise swallow it.
   */
  private failure: SimFailure | undefined;

  fail(message: string): never {
    throw (this.failure ??= new SimFailure(
      `seed=${this.seed} step=${this.step()} t=${this.world.now}: ${message}\n` +
        `reproduce with seed=${this.seed}: REPLICA_SEED=${this.seed} bun test test/sim/replica-group-sim (REPLICA_TRACE=1 prints every event)\n` +
        `last events:\n  ${this.world.recent.join("\n  ")}`,
    ));
  }

  /** Checker 2, whenever a primary gets past its lease check (coordinator.pump) and at each acknowledgement. */
  acted(node: SimNode, what = "acted"): void {
    const epoch = node.control.epoch;
    const key = this.etcd.get(KEYS.leader);
    if (key?.createRevision === epoch || this.etcd.epochLeaseAlive(epoch)) return;
    const named = key === undefined ? "no leader key" : `the leader key of epoch ${key.createRevision} (${leaderReplicaIdOf(key)})`;
    this.fail(`checker 2: ${node.name} (${node.replicaId}) ${what} as primary of epoch ${epoch}, but etcd holds ${named} and epoch ${epoch}'s lease has expired`);
  }

  acknowledged(node: SimNode, held: Held): void {
    this.acted(node, `acknowledged submission ${held.submission} (entry ${held.serial}, index ${held.index})`);
    this.acks.push({ serial: held.serial, index: held.index, submission: held.submission, node: node.name, epoch: node.control.epoch, at: this.world.now });
  }

  /** A leader's InSyncReplicas says `index` is committed: it must agree with every earlier commit. */
  committed(node: SimNode, index: number): void {
    const known = this.committedLog.length;
    const agreed = this.agreedUpTo(node, Math.min(index, known));
    if (agreed < Math.min(index, known)) {
      this.fail(`${node.name} at epoch ${node.control.epoch} committed index ${index}, but its entry at ${agreed + 1} is ${node.log[agreed]?.serial ?? "missing"}, not the committed ${this.committedLog[agreed]}`);
    }
    for (let i = known; i < index; i++) this.committedLog.push(node.log[i]!.serial);
  }

  afterStep(): void {
    if (this.failure !== undefined) throw this.failure;
    this.checkLeaderHoldsAcks();
    this.checkIsrHoldsCommitted();
  }

  /** At the end: every acknowledged entry is in the final leader's log. */
  atEnd(leader: SimNode): void {
    this.leaderChecked = undefined;
    this.holdsAcks(leader, "the final leader");
  }

  /** Checker 1: the node etcd names leader, once it acts as primary of that epoch, holds every acknowledged entry. */
  private checkLeaderHoldsAcks(): void {
    const key = this.etcd.get(KEYS.leader);
    if (key === undefined) return;
    const leader = this.nodes.find((n) => n.up && n.control.role === "primary" && n.control.epoch === key.createRevision);
    if (leader !== undefined) this.holdsAcks(leader, `leader of epoch ${key.createRevision}`);
  }

  private holdsAcks(node: SimNode, what: string): void {
    const c = this.leaderChecked;
    if (c === undefined || c.node !== node || c.inc !== node.inc || c.epoch !== node.control.epoch) {
      this.leaderChecked = { node, inc: node.inc, epoch: node.control.epoch, acks: 0 };
    }
    const checked = this.leaderChecked!;
    for (; checked.acks < this.acks.length; checked.acks++) {
      const a = this.acks[checked.acks]!;
      if (node.log[a.index - 1]?.serial === a.serial) continue;
      this.fail(`checker 1: ${what}, ${node.name} (${node.replicaId}), lacks submission ${a.submission} (entry ${a.serial} at index ${a.index}) that ${a.node} acknowledged at epoch ${a.epoch}, t=${a.at}; it holds ${node.log[a.index - 1]?.serial ?? "nothing"} there, ${node.log.length} entries`);
    }
  }

  /** Checker 3: each replica etcd's ISR names, while its log exists (up, or down but durable), holds everything committed. */
  private checkIsrHoldsCommitted(): void {
    const isr = this.etcd.get(KEYS.isr);
    if (isr === undefined) return;
    const committed = this.committedLog.length;
    const members = isrMembersOf(isr)!;
    for (const id of members) {
      const node = this.nodes.find((n) => n.replicaId === id && (n.up || n.durable));
      if (node === undefined) continue; // an incarnation gone with its memory: it can never lead
      const agreed = this.agreedUpTo(node, committed);
      if (agreed === committed) continue;
      this.fail(`checker 3: etcd's ISR (${members.join(",")}, revision ${isr.modRevision}) names ${id} (${node.name}), which lacks committed index ${agreed + 1} (entry ${this.committedLog[agreed]}; it holds ${node.log[agreed]?.serial ?? "nothing"}, ${node.log.length} entries, ${committed} committed)`);
    }
  }

  private agreedUpTo(node: SimNode, upTo: number): number {
    let a = this.agreed.get(node);
    if (a === undefined || a.log !== node.log) {
      a = { log: node.log, upTo: 0 };
      this.agreed.set(node, a);
    }
    const log = node.log;
    while (a.upTo < upTo && a.upTo < log.length && log[a.upTo]!.serial === this.committedLog[a.upTo]) a.upTo++;
    return a.upTo;
  }
}
