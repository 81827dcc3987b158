// An etcd-led replica group under faults, TigerBeetle VOPR style: one seed
// decides the group (2 to 5 nodes, durable or not), the clients' traffic and
// every fault (drops, partitions of any link, pauses, crashes and restarts in
// any order, etcd hiccups); checkers run after every step. Then a drain: faults
// stop, everyone comes back, and the group must lead and acknowledge again, and
// every other node must follow the leader with its state.

import { Prng } from "../../src/core/prng.ts";
import { Checks } from "./replica-group-checks.ts";
import { CONTROL, isrMembersOf, KEYS, leaderReplicaIdOf } from "./replica-group-ports.ts";
import { SimEtcd } from "./replica-group-etcd.ts";
import { newStats, SimNode, type Cluster, type Held, type Stats } from "./replica-group-node.ts";
import { World } from "./replica-group-world.ts";

/** Every bound of a run, named; faults are chances per step, per mille. */
export const RUN = {
  stepMsMin: 5, stepMsSpread: 16, clients: 3, clientTimeoutMs: 800, clientRetryMs: 40,
  partitionPerMille: 5, partitionMsMin: 100, partitionMsSpread: 3_000,
  pausePerMille: 3, pauseMsMin: 50, pauseMsSpread: 2_600,
  crashPerMille: 2, downMsMin: 100, downMsSpread: 4_000,
  hiccupPerMille: 1, hiccupMsMin: 200, hiccupMsSpread: 2_000, hiccupSlowMsMax: 800,
  /** With `powerLoss`: the chance, per batch a durable primary syncs, that the power fails during that sync. */
  powerLossInSyncPerMille: 10,
  /** Monotonic clocks run up to 2% fast or slow: inside the lease margin (10%), which is what makes it safe. */
  monoRateSpreadPerMille: 20,
};

interface Client {
  submission: number;
  target: number;
  waiting: boolean;
  resendAt: number;
  /** The last refusal named a node (or a random one) to try next; otherwise a timeout picks one. */
  redirected: boolean;
}

export class ReplicaGroupSim implements Cluster {
  readonly world: World;
  readonly etcd = new SimEtcd(KEYS.leader);
  readonly nodes: SimNode[] = [];
  readonly checks: Checks;
  readonly stats: Stats = newStats();
  step = 0;
  drain = false;
  private serial = 0;
  private replicaIds = 0;
  private submissions = 0;
  private readonly clients: Client[] = [];
  private readonly restartAt = new Map<SimNode, number>();
  private readonly prng: Prng;

  /** Power losses draw from their own stream, so runs without them are the same as before they existed. */
  private readonly powerPrng: Prng;

  /** `powerLoss`: a durable primary may lose power while it syncs a batch its backups already have. */
  constructor(readonly seed: number, private readonly options: { powerLoss?: boolean } = {}) {
    this.powerPrng = new Prng(seed ^ 0x5eedf00d);
    this.prng = new Prng(seed);
    this.world = new World(this.prng, this.etcd);
    const roll = this.prng.int(100);
    const count = roll < 10 ? 2 : roll < 20 ? 4 : roll < 28 ? 5 : 3;
    const durability = this.prng.int(4); // 0: none durable, 3: some, else all
    for (let i = 0; i < count; i++) {
      const durable = durability === 3 ? this.prng.int(2) === 0 : durability !== 0;
      this.nodes.push(new SimNode(`n${i}`, this, durable, 1 + (this.prng.int(2 * RUN.monoRateSpreadPerMille + 1) - RUN.monoRateSpreadPerMille) / 1000));
    }
    this.checks = new Checks(seed, this.world, this.etcd, this.nodes, () => this.step);
    // Nodes start in a random order, a little apart.
    for (const node of this.nodes) this.world.at(this.prng.int(300), () => node.start());
    for (let i = 0; i < RUN.clients; i++) this.clients.push({ submission: 0, target: this.prng.int(count), waiting: false, resendAt: 0, redirected: false });
  }

  run(chaosSteps: number, drainStepsMax: number): void {
    while (this.step < chaosSteps) this.runStep();
    this.startDrain();
    const end = this.step + drainStepsMax;
    while (!this.drained()) {
      if (this.step >= end) {
        if (this.isrGone()) return void this.stats.isrLost++; // nobody may lead, by design: nothing more to check
        this.checks.fail(`liveness: ${drainStepsMax} steps after the faults stopped, ${this.describe()}`);
      }
      this.runStep();
    }
    this.checks.atEnd(this.leader()!);
  }

  runStep(): void {
    this.world.runUntil(this.world.now + RUN.stepMsMin + this.prng.int(RUN.stepMsSpread));
    if (!this.drain) this.chaos();
    this.clientsStep();
    this.checks.afterStep();
    this.step++;
  }

  /** The node etcd names leader, if it acts as primary of that epoch. */
  leader(): SimNode | undefined {
    const key = this.etcd.get(KEYS.leader);
    return this.nodes.find((n) => n.up && !n.paused && n.control.role === "primary" && n.control.epoch === key?.createRevision);
  }

  describe(): string {
    const key = this.etcd.get(KEYS.leader);
    const isr = isrMembersOf(this.etcd.get(KEYS.isr));
    const nodes = this.nodes.map((n) => `${n.name}(${n.replicaId}${n.up ? "" : " down"} ${n.control?.role}${n.control?.role === "backup" && !n.control.isSynced ? " without its leader's state" : ""} epoch ${n.control?.epoch} log ${n.log.length})`);
    return `leader key ${key ? `epoch ${key.createRevision} ${leaderReplicaIdOf(key)}` : "none"}, ISR ${isr?.join(",") ?? "none"}, nodes ${nodes.join(" ")}, clients waiting ${this.clients.filter((c) => c.waiting).length}`;
  }

  // ------------------------------------------------------------ Cluster (what nodes call)

  node(name: string): SimNode {
    return this.nodes.find((n) => n.name === name)!;
  }

  nextSerial(): number {
    return ++this.serial;
  }

  newReplicaId(node: SimNode): string {
    return `${node.name}.${++this.replicaIds}`;
  }

  acted(node: SimNode): void {
    this.checks.acted(node);
  }

  committed(node: SimNode, index: number): void {
    this.checks.committed(node, index);
  }

  acknowledged(node: SimNode, held: Held): void {
    this.stats.acks++;
    this.checks.acknowledged(node, held);
  }

  replyToClient(from: SimNode, client: number, submission: number, ok: boolean, hint: string | undefined): void {
    const delay = this.world.transit(from.name, "clients", true);
    if (delay === undefined) return;
    this.world.at(this.world.now + delay, () => {
      const c = this.clients[client]!;
      if (!c.waiting || c.submission !== submission) return;
      if (ok) return void (c.waiting = false);
      c.target = hint !== undefined ? this.nodes.findIndex((n) => n.name === hint) : this.prng.int(this.nodes.length);
      c.redirected = true;
      c.resendAt = Math.min(c.resendAt, this.world.now + RUN.clientRetryMs);
    });
  }

  // ------------------------------------------------------------ clients

  private clientsStep(): void {
    const now = this.world.now;
    this.clients.forEach((c, i) => {
      if (!c.waiting) {
        if (this.drain && c.submission !== 0) return;
        c.submission = ++this.submissions;
        c.waiting = true;
      } else if (now < c.resendAt) return;
      else if (!c.redirected) c.target = this.prng.int(this.nodes.length); // timed out: try any
      c.redirected = false;
      c.resendAt = now + RUN.clientTimeoutMs;
      const node = this.nodes[c.target]!;
      const delay = this.world.transit("clients", node.name, true);
      if (delay === undefined) return;
      const submission = c.submission;
      this.world.at(now + delay, () => node.deliver(node.inc, () => node.submit(i, submission)));
    });
  }

  // ------------------------------------------------------------ faults

  private chaos(): void {
    const p = this.prng;
    const world = this.world;
    const now = world.now;
    for (const [node, at] of this.restartAt) {
      if (at > now) continue;
      this.restartAt.delete(node);
      this.restart(node);
    }
    if (p.int(1000) < RUN.partitionPerMille) {
      const ends = [...this.nodes.map((n) => n.name), "etcd", "clients"];
      const a = ends[p.int(this.nodes.length)]!; // always a node on one side
      const b = p.int(4) === 0 ? undefined : ends.filter((e) => e !== a)[p.int(ends.length - 1)]!;
      const key = b === undefined ? a : a < b ? `${a}|${b}` : `${b}|${a}`;
      world.cuts.set(key, Math.max(world.cuts.get(key) ?? 0, now + RUN.partitionMsMin + p.int(RUN.partitionMsSpread)));
      world.trace(`partition ${b === undefined ? `${a} from everyone` : `${a}<->${b}`} until ${world.cuts.get(key)}`);
      this.stats.partitions++;
    }
    const up = this.nodes.filter((n) => n.up && !n.paused);
    if (p.int(1000) < RUN.pausePerMille && up.length > 0) {
      const node = up[p.int(up.length)]!;
      const ms = RUN.pauseMsMin + p.int(RUN.pauseMsSpread);
      const inc = node.inc;
      node.pause();
      world.trace(`${node.name} paused for ${ms} ms`);
      world.at(now + ms, () => node.inc === inc && node.paused && node.resume());
      this.stats.pauses++;
      if (ms > CONTROL.leaseTtlMs) this.stats.pausesOverTtl++;
    }
    if (p.int(1000) < RUN.crashPerMille && up.length > 1) {
      const node = up[p.int(up.length)]!;
      node.crash();
      this.restartAt.set(node, now + RUN.downMsMin + p.int(RUN.downMsSpread));
      this.stats.crashes++;
    }
    if (p.int(1000) < RUN.hiccupPerMille && now >= world.etcdSlowUntil) {
      world.etcdSlowMs = 1 + p.int(RUN.hiccupSlowMsMax);
      world.etcdSlowUntil = now + RUN.hiccupMsMin + p.int(RUN.hiccupMsSpread);
      // Half the time etcd's leader changed: the new one gives every lease a fresh TTL.
      if (p.int(2) === 0) world.at(world.etcdSlowUntil, () => this.etcd.refreshLeases(world.now));
      world.trace(`etcd slow by up to ${world.etcdSlowMs} ms until ${world.etcdSlowUntil}`);
      this.stats.hiccups++;
    }
  }

  powerLossInSync(node: SimNode): boolean {
    if (this.options.powerLoss !== true || this.drain || !node.durable) return false;
    if (this.powerPrng.int(1000) >= RUN.powerLossInSyncPerMille) return false;
    if (this.nodes.filter((n) => n.up && !n.paused).length < 2) return false; // as for crashes: one node stays up
    this.restartAt.set(node, this.world.now + RUN.downMsMin + this.powerPrng.int(RUN.downMsSpread));
    this.stats.powerLossesInSync++;
    return true;
  }

  private restart(node: SimNode): void {
    node.restarted = true;
    node.start();
    this.stats.restarts++;
  }

  private startDrain(): void {
    this.drain = true;
    this.world.reliable = true;
    this.world.etcdSlowUntil = 0;
    for (const node of this.nodes) if (node.paused) node.resume();
    for (const node of this.restartAt.keys()) this.restart(node);
    this.restartAt.clear();
    this.world.trace("drain: faults stop, every node runs");
  }

  /** A leader acknowledges again, and every other node follows it with its state (none is left out for good). */
  private drained(): boolean {
    const leader = this.leader();
    if (leader === undefined || this.clients.some((c) => c.waiting)) return false;
    return this.nodes.every((n) => n === leader || (n.control.role === "backup" && n.control.epoch === leader.control.epoch && n.control.isSynced));
  }

  /** No replica etcd's ISR names still has its log: by design nobody may lead (docs/replication.md). */
  private isrGone(): boolean {
    const isr = isrMembersOf(this.etcd.get(KEYS.isr));
    if (isr === undefined) return false;
    return isr.every((id) => !this.nodes.some((n) => n.replicaId === id && (n.up || n.durable)));
  }
}
