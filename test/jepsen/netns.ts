// Network namespaces for Jepsen-style fault tests: one namespace per host, joined by a bridge that
// lives in its own "hub" namespace, so 10.213.0.0/24 never appears in the root namespace.
// Links are cut with iptables inside the hosts' namespaces. Everything a run made is removed by
// destroy(), at process exit, and (if the run crashed) by the next run's create().

import type { Subprocess } from "bun";
export { namespacesAvailable } from "./preflight.ts";
import { COMMAND_TIMEOUT_MS, environmentWithoutProxies, mustRun, runCommand, type CommandResult } from "./process.ts";

/** The namespace holding the bridge; processes can run there too, at 10.213.0.1. */
export const HUB = "hub";
const SUBNET = "10.213.0";
const HUB_ADDRESS = `${SUBNET}.1`;
const FIRST_HOST_OCTET = 10;
/** Bounds the two-digit interface index (names must fit in 15 characters). */
export const HOSTS_MAX = 40;
const INTERFACE_NAME_CHARS_MAX = 15;
/** Every namespace and interface of every run starts with this, then the run's owner pid. */
const NAME_FAMILY = "jp";
const LEFTOVER_NAME = /^jp([0-9a-z]{1,6})-[0-9a-z]{1,2}-/;
const HOST_NAME = /^[a-z][a-z0-9]{0,11}$/;
/** How long destroy() waits for a SIGKILLed process to be reaped. */
const REAP_TIMEOUT_MS = 5_000;

export interface ExecOptions {
  env?: Record<string, string>;
  cwd?: string;
}

const liveNets = new Set<Net>();
let runCount = 0;
process.on("exit", () => {
  for (const net of liveNets) net.destroyNowSync();
});

export class Net {
  private readonly procs = new Set<Subprocess>();
  private readonly cuts = new Set<string>();
  private destroyed = false;

  private constructor(
    /** Unique to this run: `jp<pid>-<n>-`. */
    readonly prefix: string,
    readonly hosts: readonly string[],
  ) {}

  static async create(hostNames: string[]): Promise<Net> {
    checkHostNames(hostNames);
    removeLeftovers();
    const prefix = `${NAME_FAMILY}${process.pid.toString(36)}-${(runCount++ % 1296).toString(36)}-`;
    const net = new Net(prefix, [...hostNames]);
    liveNets.add(net);
    try {
      await net.buildHub();
      await Promise.all(net.hosts.map((host, i) => net.buildHost(host, i)));
    } catch (err) {
      await net.destroy();
      throw err;
    }
    return net;
  }

  /** Namespace names this run owns (the hub's included). */
  namespaces(): string[] {
    return [HUB, ...this.hosts].map((h) => this.ns(h));
  }

  ip(host: string): string {
    if (host === HUB) return HUB_ADDRESS;
    return `${SUBNET}.${FIRST_HOST_OCTET + this.indexOf(host)}`;
  }

  /** Spawns argv inside host's namespace; destroy() kills it. */
  exec(host: string, argv: string[], opts: ExecOptions = {}): Subprocess<"ignore", "pipe", "pipe"> {
    this.assertUsable();
    const proc = Bun.spawn(["ip", "netns", "exec", this.ns(host), ...argv], {
      stdin: "ignore", stdout: "pipe", stderr: "pipe", cwd: opts.cwd, env: environmentWithoutProxies(opts.env),
    });
    this.procs.add(proc);
    void proc.exited.then(() => this.procs.delete(proc));
    return proc;
  }

  /** Runs argv inside host's namespace to completion, killed at the deadline. */
  async run(host: string, argv: string[], timeoutMs = COMMAND_TIMEOUT_MS, env?: Record<string, string>): Promise<CommandResult> {
    this.assertUsable();
    return runCommand(["ip", "netns", "exec", this.ns(host), ...argv], timeoutMs, environmentWithoutProxies(env));
  }

  /** fetch() from inside host's namespace (the test process itself has no route there). */
  async fetch(host: string, url: string, init: { method?: string; body?: string } = {}, timeoutMs = 2_000): Promise<{ status: number; body: string }> {
    const request = JSON.stringify({ url, init, timeoutMs });
    const r = await this.run(host, [process.execPath, "-e", FETCH_SCRIPT], timeoutMs + 3_000, { JEPSEN_FETCH: request });
    if (r.code !== 0) throw new Error(`fetch ${url} from ${host} failed${r.timedOut ? " (timed out)" : ""}: ${r.stderr.trim()}`);
    return JSON.parse(r.stdout);
  }

  /** Drops all traffic between a and b, both ways; open TCP connections hang as in a real partition. */
  async cut(a: string, b: string): Promise<void> {
    const key = this.linkKey(a, b);
    if (this.cuts.has(key)) return;
    this.cuts.add(key); // before the await, so a concurrent cut of the same link adds no second rule
    await this.dropRules("-A", a, b);
  }

  async heal(a: string, b: string): Promise<void> {
    const key = this.linkKey(a, b);
    if (!this.cuts.has(key)) return;
    this.cuts.delete(key);
    await this.dropRules("-D", a, b);
  }

  /** Cuts host from every other host and from the hub. */
  async isolate(host: string): Promise<void> {
    for (const other of [HUB, ...this.hosts]) if (other !== host) await this.cut(host, other);
  }

  async healAll(): Promise<void> {
    for (const key of [...this.cuts]) {
      const [a, b] = key.split("|") as [string, string];
      await this.heal(a, b);
    }
  }

  /** Kills every process spawned here and deletes every namespace; safe to call twice. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    const reaped = Promise.all([...this.procs].map((p) => (p.kill("SIGKILL"), p.exited)));
    await Promise.race([reaped, Bun.sleep(REAP_TIMEOUT_MS)]);
    this.destroyNowSync();
  }

  /** The synchronous part of destroy(), also run at process exit. */
  destroyNowSync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.procs) p.kill("SIGKILL");
    for (const ns of this.namespaces()) deleteNamespaceSync(ns);
    liveNets.delete(this);
  }

  private async buildHub(): Promise<void> {
    const hub = this.ns(HUB);
    await mustRun(["ip", "netns", "add", hub]);
    await mustRun(["ip", "-n", hub, "link", "set", "lo", "up"]);
    await mustRun(["ip", "-n", hub, "link", "add", this.ifName("br"), "type", "bridge"]);
    await mustRun(["ip", "-n", hub, "addr", "add", `${HUB_ADDRESS}/24`, "dev", this.ifName("br")]);
    await mustRun(["ip", "-n", hub, "link", "set", this.ifName("br"), "up"]);
  }

  /** The veth is created with both ends already in their namespaces: the root namespace never holds it. */
  private async buildHost(host: string, index: number): Promise<void> {
    const [hub, ns] = [this.ns(HUB), this.ns(host)];
    const [hubEnd, hostEnd] = [this.ifName(`h${index}`), this.ifName(`n${index}`)];
    await mustRun(["ip", "netns", "add", ns]);
    await mustRun(["ip", "link", "add", hubEnd, "netns", hub, "type", "veth", "peer", "name", hostEnd, "netns", ns]);
    await mustRun(["ip", "-n", hub, "link", "set", hubEnd, "master", this.ifName("br"), "up"]);
    await mustRun(["ip", "-n", ns, "addr", "add", `${this.ip(host)}/24`, "dev", hostEnd]);
    await mustRun(["ip", "-n", ns, "link", "set", hostEnd, "up"]);
    await mustRun(["ip", "-n", ns, "link", "set", "lo", "up"]);
  }

  private async dropRules(action: "-A" | "-D", a: string, b: string): Promise<void> {
    for (const [self, peer] of [[a, b], [b, a]] as const) {
      const inNs = ["ip", "netns", "exec", this.ns(self), "iptables", "-w"];
      await mustRun([...inNs, action, "INPUT", "-s", this.ip(peer), "-j", "DROP"]);
      await mustRun([...inNs, action, "OUTPUT", "-d", this.ip(peer), "-j", "DROP"]);
    }
  }

  private linkKey(a: string, b: string): string {
    if (a === b) throw new Error(`cannot cut ${a} from itself`);
    this.checkHost(a);
    this.checkHost(b);
    return [a, b].sort().join("|");
  }

  private ns(host: string): string {
    this.checkHost(host);
    return `${this.prefix}${host}`;
  }

  private checkHost(host: string): void {
    if (host !== HUB) this.indexOf(host);
  }

  private indexOf(host: string): number {
    const i = this.hosts.indexOf(host);
    if (i < 0) throw new Error(`unknown host ${host} (hosts: ${[HUB, ...this.hosts].join(", ")})`);
    return i;
  }

  private ifName(suffix: string): string {
    const name = `${this.prefix}${suffix}`;
    if (name.length > INTERFACE_NAME_CHARS_MAX) throw new Error(`interface name ${name} is longer than ${INTERFACE_NAME_CHARS_MAX}`);
    return name;
  }

  private assertUsable(): void {
    if (this.destroyed) throw new Error(`net ${this.prefix} is destroyed`);
  }
}

function checkHostNames(hostNames: string[]): void {
  if (hostNames.length === 0 || hostNames.length > HOSTS_MAX) throw new Error(`between 1 and ${HOSTS_MAX} hosts, not ${hostNames.length}`);
  for (const h of hostNames) {
    if (h === HUB || !HOST_NAME.test(h)) throw new Error(`bad host name ${JSON.stringify(h)}: lowercase letters and digits, not "${HUB}"`);
  }
  if (new Set(hostNames).size !== hostNames.length) throw new Error(`duplicate host names: ${hostNames.join(", ")}`);
}

/** Namespaces of our family whose owning process is gone: an earlier run crashed before destroy(). */
function removeLeftovers(): void {
  const listing = Bun.spawnSync(["ip", "netns", "list"], { stdout: "pipe", stderr: "ignore" }).stdout.toString();
  for (const line of listing.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = LEFTOVER_NAME.exec(name);
    if (m && !processAlive(parseInt(m[1]!, 36))) deleteNamespaceSync(name);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills whatever still runs inside (children of our children), then deletes the namespace. */
function deleteNamespaceSync(ns: string): void {
  const pids = Bun.spawnSync(["ip", "netns", "pids", ns], { stdout: "pipe", stderr: "ignore" }).stdout.toString();
  for (const pid of pids.split("\n").filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  Bun.spawnSync(["ip", "netns", "del", ns], { stdout: "ignore", stderr: "ignore" });
}

/** Run by `bun -e` inside a namespace: one fetch, printed as JSON. */
const FETCH_SCRIPT = `
const { url, init, timeoutMs } = JSON.parse(process.env.JEPSEN_FETCH);
const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
console.log(JSON.stringify({ status: res.status, body: await res.text() }));
`;
