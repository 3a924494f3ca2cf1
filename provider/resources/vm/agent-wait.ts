// Waiting for the QEMU guest agent to report an IPv4 address, bounded and explained.
//
// - The NIC is found by its MAC address (net0's, which PVE generated and the provider read):
//   its name is the guest's business. With cloud-init network config (ipconfigN) PVE names it
//   `eth<N>` and cloud-init renames it; without, udev names it (`ens18` on i440fx). A name is
//   an explicit override only (`agentInterface`).
// - agent not configured in the VM: fails at once (no wait can help);
// - agent configured but not answering (`QEMU guest agent is not running`): the guest has no
//   qemu-guest-agent running yet, and each such call holds one of the node's 3 pvedaemon workers
//   for PVE's 3 s guest-ping timeout (qemu-server Agent.pm qga_check_running): a node can
//   afford about one such call per second. So agent calls are bounded per node
//   (`AGENT_CALLS_PER_NODE`, leaving a worker for clones and config writes) and go to the VM that
//   has waited longest first;
// - VMs that boot alike (same template, same node: a fleet) share what they learn about the time
//   from start to the agent's first answer (`FleetBoot`, fleet-boot.ts): while nothing is known,
//   one VM (the one waiting longest, the scout) asks and the others wait; once an agent
//   answered, every VM asks first at that time (later if a sibling was seen not ready later than
//   that), and VMs that have not got there yet test the middle of what is known, or their own
//   time when past the middle (one such call at a time, on top of their own call at the known
//   time), so the estimate tightens as the fleet comes up.
//   Nothing assumes a boot time: it is learned from the cluster, per fleet and provider process;
//   a VM whose siblings never answer asks on its own after `min(2 min, half its timeout)`;
// - at the timeout the error says what was seen and what to do: an agent that never answered
//   is an image without qemu-guest-agent (and user-data that does not install and start it); an
//   agent that answered without an IPv4 on the NIC is a network configuration matter.

import { PveApiError, type GuestNetworkInterface, type PveClient } from "../../proxmox";
import { isAgentNotConfigured, isAgentNotRunning, isGuestNotRunning } from "../../proxmox/errors";
import type { Clock } from "../../util/clock";
import { OrderedSlots } from "../../util/ordered-slots";
import { FleetBoot, fleetOf } from "./fleet-boot";

/** Agent calls in flight per node: pvedaemon runs 3 workers; one stays free for writes. */
export const AGENT_CALLS_PER_NODE = 2;

export interface AgentWaitOptions {
  node: string;
  vmid: number;
  name?: string;
  /** MAC of the NIC whose IPv4 is awaited (net0's). */
  macAddress?: string;
  /** Explicit override: the guest's name of that NIC (`agentInterface`). */
  interfaceName?: string;
  timeoutMs: number;
  /**
   * A fresh start's first call after this long (default 2 s: no guest answers sooner after a
   * start) unless its fleet learned more; then a call `pollIntervalMs` (default 1 s) or 10% of
   * the time waited so far after the previous one went out, whichever is longer, up to
   * maxDelayMs (default 5 s), and never while the previous is in flight (a call to an agent that
   * is not running takes PVE's 3 s guest-ping): a guest that takes minutes costs few calls. A
   * fleet's scout does not back off while others wait on it.
   */
  initialDelayMs?: number;
  pollIntervalMs?: number;
  maxDelayMs?: number;
  clock?: Clock;
  /** VMs that boot alike (the template and node): they learn their boot time together (`FleetBoot`). */
  fleetKey?: string;
  /** The VM was started just now: no guest answers at once (the first call waits
   *  `initialDelayMs`, or what its fleet learned). Otherwise the first call is immediate. */
  justStarted?: boolean;
  /** What the error at the timeout names as the likely cause when the agent never answered. */
  describeGuest?: () => Promise<GuestHint>;
}

export interface GuestHint {
  /** The image the VM's disk came from, when known (`debian-12-genericcloud-amd64.qcow2`). */
  image?: string;
  /** The user-data snippet given with cicustom, when one is. */
  userData?: string;
  /** The VM has an ipconfig for net0 (or a custom network config). */
  networkConfigured: boolean;
}

export interface AgentAddresses {
  /** IPv4 addresses of the awaited NIC. */
  primary: string[];
  /** Every non-loopback, non-link-local IPv4 the agent reported, interface order. */
  all: string[];
  interfaces: GuestNetworkInterface[];
}

export class AgentWaitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AgentWaitError";
  }
}

/** Which NIC: by MAC (default) or by the guest's name for it (override). */
export interface NicSelector {
  macAddress?: string;
  interfaceName?: string;
}

function selects(i: GuestNetworkInterface, nic: NicSelector): boolean {
  if (nic.interfaceName !== undefined) return i.name === nic.interfaceName;
  if (nic.macAddress !== undefined) return (i["hardware-address"] ?? "").toLowerCase() === nic.macAddress.toLowerCase();
  return i.name !== "lo";
}

export function ipv4Of(interfaces: GuestNetworkInterface[], nic?: NicSelector): string[] {
  return interfaces
    .filter((i) => (nic === undefined ? i.name !== "lo" : selects(i, nic)))
    .flatMap((i) => i["ip-addresses"] ?? [])
    .filter((a) => a["ip-address-type"] === "ipv4" && !a["ip-address"].startsWith("127.") && !a["ip-address"].startsWith("169.254."))
    .map((a) => a["ip-address"]);
}

function label(o: AgentWaitOptions): string {
  return `VM ${o.vmid}${o.name ? ` (${o.name})` : ""} on node '${o.node}'`;
}

function nicLabel(nic: NicSelector): string {
  return nic.interfaceName !== undefined ? `interface ${nic.interfaceName}` : nic.macAddress !== undefined ? `the NIC with MAC ${nic.macAddress.toUpperCase()} (net0)` : "any interface";
}

const slots = new WeakMap<PveClient, Map<string, OrderedSlots>>();

/** One agent call, in the node's bounded agent slots; `waitingSince` orders the waiters;
 *  `onSend` is told when the call leaves (after any wait for a slot). */
async function agentCall(api: PveClient, node: string, vmid: number, waitingSince = 0, onSend?: () => void): ReturnType<PveClient["qemu"]["agentNetworkInterfaces"]> {
  let perNode = slots.get(api);
  if (!perNode) slots.set(api, (perNode = new Map()));
  let s = perNode.get(node);
  if (!s) perNode.set(node, (s = new OrderedSlots(AGENT_CALLS_PER_NODE)));
  const release = await s.acquire(waitingSince);
  try {
    onSend?.();
    return await api.qemu.agentNetworkInterfaces(node, vmid, { noRetry: true });
  } finally {
    release();
  }
}

/** Sleeps `ms`, or until one of the signals aborts (then resolves early). */
async function nap(clock: Clock, ms: number, ...signals: AbortSignal[]): Promise<void> {
  if (ms <= 0 || signals.some((s) => s.aborted)) return;
  const both = new AbortController();
  const stop = () => both.abort();
  for (const s of signals) s.addEventListener("abort", stop, { once: true });
  try {
    await clock.sleep(ms, both.signal);
  } catch {
    /* woken */
  } finally {
    for (const s of signals) s.removeEventListener("abort", stop);
  }
}

/** One look at the agent (refresh): addresses, or undefined when it does not answer (yet), or
 *  when the principal may not ask it. A read-only principal (PVEAuditor) may on PVE 9
 *  (VM.GuestAgent.Audit) but not on PVE 8, which wants VM.Monitor: its refresh keeps the
 *  addresses in the state rather than failing (a CI drift check runs as such a principal). */
export async function agentAddresses(api: PveClient, node: string, vmid: number, nic: NicSelector): Promise<AgentAddresses | undefined> {
  try {
    const r = await agentCall(api, node, vmid);
    if (!r.ok) return undefined;
    return { primary: ipv4Of(r.interfaces, nic), all: ipv4Of(r.interfaces), interfaces: r.interfaces };
  } catch (err) {
    if (err instanceof PveApiError && err.status !== undefined && err.status >= 500) return undefined;
    if (err instanceof PveApiError && err.status === 403) return undefined;
    throw err;
  }
}

/**
 * The agent's addresses and, from the same call, whether the VM runs: an answer (even the
 * agent's own error) or `QEMU guest agent is not running` is a running VM; `VM <vmid> is not
 * running` a stopped one, said at once without a guest-ping (qemu-server
 * src/PVE/QemuServer/Agent.pm assert_agent_available). Anything else (no permission, a proxy
 * error) leaves the power state unknown.
 */
export async function agentAddressesAndPower(api: PveClient, node: string, vmid: number, nic: NicSelector): Promise<{ power: "running" | "stopped" | "unknown"; ips?: AgentAddresses }> {
  try {
    const r = await agentCall(api, node, vmid);
    if (!r.ok) return { power: "running" };
    return { power: "running", ips: { primary: ipv4Of(r.interfaces, nic), all: ipv4Of(r.interfaces), interfaces: r.interfaces } };
  } catch (err) {
    if (isGuestNotRunning(err)) return { power: "stopped" };
    if (isAgentNotRunning(err)) return { power: "running" };
    if (err instanceof PveApiError && err.status !== undefined && (err.status >= 500 || err.status === 403)) return { power: "unknown" };
    throw err;
  }
}

const AGENT_FIX =
  "install it from the VM's user-data (a CloudInitSnippet with packages: [qemu-guest-agent] and runcmd: [[systemctl, start, qemu-guest-agent]] given as cicustom.user; " +
  "Debian's and Ubuntu's package does not start itself when installed on a running system), or build the template from an image that ships it; or set waitForIp: false";

async function neverAnswered(o: AgentWaitOptions, seconds: number): Promise<string> {
  let hint: GuestHint | undefined;
  try {
    hint = await o.describeGuest?.();
  } catch {
    hint = undefined;
  }
  const image = hint?.image ? `its image (${hint.image})` : "its image";
  const userData = hint?.userData
    ? ` Its user-data ${hint.userData} is applied at the first boot: check that it installs qemu-guest-agent AND starts it (runcmd: [[systemctl, start, qemu-guest-agent]]), and raise agentTimeoutSeconds if the install takes longer than ${seconds} s.`
    : " Nothing in its cloud-init data installs the agent (no cicustom.user).";
  return (
    `${label(o)}: the QEMU guest agent never answered in ${seconds} s (every call: "QEMU guest agent is not running"). ` +
    `agent: 1 only adds the channel; the guest must run qemu-guest-agent, and ${image} probably does not include it.${userData} ` +
    `To fix: ${AGENT_FIX}.`
  );
}

export async function waitForAgentIpv4(api: PveClient, o: AgentWaitOptions): Promise<AgentAddresses> {
  const clock = o.clock ?? api.clock;
  const nic: NicSelector = { macAddress: o.macAddress, interfaceName: o.interfaceName };
  const started = clock.now();
  const elapsed = () => clock.now() - started;
  // a fresh start learns with its fleet (a fleet of one without a key); a VM already running is
  // asked at once, and on the plain schedule
  const fleet = o.justStarted ? (o.fleetKey !== undefined ? fleetOf(api, o.fleetKey) : new FleetBoot()) : undefined;
  const token = {};
  fleet?.waiting.set(token, started);
  const initialDelay = o.initialDelayMs ?? 2_000;
  const maxDelay = o.maxDelayMs ?? 5_000;
  const interval = (e: number) => Math.min(maxDelay, Math.max(o.pollIntervalMs ?? 1_000, e * 0.1));
  // siblings that never answer do not hold this VM back for longer than this
  const alone = Math.min(120_000, o.timeoutMs / 2);
  let lastProblem = "the agent has not answered yet";
  let answered = false;
  let seen: string[] = [];
  /** Elapsed when this VM's last call went out, and whether one went out at or after the fleet's target. */
  let lastSent: number | undefined;
  let triedTarget = false;
  /** A testing call (see FleetBoot) that got the answer. */
  let found: AgentAddresses | undefined;
  const woken = new AbortController();

  /** Looks at one answer; returns the addresses when the awaited NIC has an IPv4. */
  const take = (r: Awaited<ReturnType<PveClient["qemu"]["agentNetworkInterfaces"]>>): AgentAddresses | undefined => {
    answered = true;
    if (r.ok) {
      seen = r.interfaces.filter((i) => i.name !== "lo").map((i) => `${i.name} ${(i["hardware-address"] ?? "").toUpperCase()}${ipv4Of([i]).length ? ` ${ipv4Of([i]).join(",")}` : ""}`);
      const primary = ipv4Of(r.interfaces, nic);
      if (primary.length) return { primary, all: ipv4Of(r.interfaces), interfaces: r.interfaces };
      lastProblem = r.interfaces.some((i) => selects(i, nic)) ? `${nicLabel(nic)} has no IPv4 address yet` : `the agent reports no ${nicLabel(nic)}`;
    } else {
      lastProblem = `the agent answered ${r.errorClass}: ${r.description}`;
    }
    return undefined;
  };

  /** One call; tells the fleet what it showed. Throws what ends the wait. */
  const ask = async (): Promise<AgentAddresses | undefined> => {
    let sentAt = elapsed();
    try {
      const r = await agentCall(api, o.node, o.vmid, started, () => {
        sentAt = elapsed();
      });
      fleet?.answeredAt(elapsed());
      return take(r);
    } catch (err) {
      if (!(err instanceof PveApiError)) throw err;
      const msg = err.pveMessage;
      if (isAgentNotConfigured(err)) {
        throw new AgentWaitError(
          `${label(o)} has no QEMU guest agent configured, so its IP address cannot be learned. Enable the agent in the template (agent: 1, with qemu-guest-agent installed in the guest), or set waitForIp: false.`,
        );
      }
      if (isGuestNotRunning(err)) {
        throw new AgentWaitError(`${label(o)} stopped while waiting for its guest agent (${msg}). Check the VM's console and task log.`);
      }
      if (err.status === undefined || err.status < 500) throw err;
      if (isAgentNotRunning(err)) fleet?.notReadyAt(sentAt);
      else answered = true;
      lastProblem = msg;
      return undefined;
    }
  };

  /** A testing call at `at` (ms elapsed), beside this VM's own schedule. */
  const probe = (at: number): void => {
    fleet!.probing = true;
    void (async () => {
      try {
        await nap(clock, at - elapsed(), woken.signal);
        if (woken.signal.aborted) return;
        const r = await ask();
        if (r && !found) {
          found = r;
          woken.abort();
        }
      } catch {
        /* the wait's own calls report errors */
      } finally {
        fleet!.probing = false;
        fleet!.notify();
      }
    })();
  };

  try {
    for (;;) {
      const e = elapsed();
      // when this VM asks next (ms elapsed)
      let at: number;
      const target = fleet?.target();
      if (!fleet) at = lastSent === undefined ? 0 : lastSent + interval(e);
      else if (target !== undefined && !triedTarget && !answered) at = target;
      // a scout asks for the whole fleet: it does not back off while others wait on it
      else if (lastSent !== undefined) at = lastSent + (target === undefined && fleet.waiting.size > 1 ? Math.min(interval(e), o.pollIntervalMs ?? 1_000) : interval(e));
      else if (fleet.isScout(token) || e >= alone) at = initialDelay;
      else at = alone; // until a sibling answers, or a scout leaves
      at = Math.min(Math.max(at, e), o.timeoutMs);
      const test = fleet?.testAt(e);
      if (test !== undefined && test < at - 10 && !answered) probe(test);
      await nap(clock, at - e, woken.signal, ...(fleet ? [fleet.changed] : []));
      if (found) return found;
      if (elapsed() + 1 < at && elapsed() < o.timeoutMs) continue; // woken: plan again
      const sent = elapsed();
      const r = await ask();
      if (found) return found;
      if (r) return r;
      lastSent = sent;
      if (target !== undefined && sent >= target - 1) triedTarget = true;
      const done = elapsed();
      if (done >= o.timeoutMs) {
        const seconds = Math.round(done / 1000);
        if (!answered) throw new AgentWaitError(await neverAnswered(o, seconds));
        let network = "";
        if (nic.interfaceName === undefined) {
          const hint = await o.describeGuest?.().catch(() => undefined);
          if (hint && !hint.networkConfigured) {
            network = " net0 has no ipconfig: PVE's cloud-init network config lists only NICs with an ipconfigN, and cloud-init then configures no other, so set ipConfigs: [{ ip: \"dhcp\" }] (or a static address).";
          }
        }
        throw new AgentWaitError(
          `${label(o)}: no IPv4 address on ${nicLabel(nic)} after ${seconds} s (${lastProblem}${seen.length ? `; interfaces seen: ${seen.join("; ")}` : ""}).${network} ` +
            `Check that the NIC gets an address (DHCP on its bridge, or ipConfigs). Raise agentTimeoutSeconds for slow boots, or set waitForIp: false.`,
        );
      }
    }
  } finally {
    woken.abort();
    if (fleet) {
      fleet.waiting.delete(token);
      fleet.notify(); // a scout leaving hands the role on
    }
  }
}
