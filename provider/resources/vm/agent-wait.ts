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
//   has waited longest first; a fleet's VMs (same template, same node) do not ask before the
//   time the first of them took to answer (less 10%), and polls back off while it is silent;
// - at the timeout the error says what was seen and what to do: an agent that never answered
//   is an image without qemu-guest-agent (and user-data that does not install and start it); an
//   agent that answered without an IPv4 on the NIC is a network configuration matter.

import { PveApiError, type GuestNetworkInterface, type PveClient } from "../../proxmox";
import type { Clock } from "../../util/clock";
import { OrderedSlots } from "../../util/ordered-slots";

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
   * First poll after this long (default 2 s: no guest answers sooner after a start); then every
   * `pollIntervalMs` (default 1 s) or 10% of the time waited so far, whichever is longer, up to
   * maxDelayMs (default 5 s): a guest that answers after 10 s is seen within 1 s, one that takes
   * minutes costs few polls.
   */
  initialDelayMs?: number;
  pollIntervalMs?: number;
  maxDelayMs?: number;
  clock?: Clock;
  /** VMs that boot alike (the template and node): the first answer's boot time is learned. */
  fleetKey?: string;
  /** The VM was started just now: no guest answers at once (the first poll waits
   *  `initialDelayMs`, or the learned boot time). Otherwise the first poll is immediate. */
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
/** Per client and fleet key: the shortest time from the start of a wait to the agent's answer. */
const learnedBoot = new WeakMap<PveClient, Map<string, number>>();

/** One agent call, in the node's bounded agent slots; `waitingSince` orders the waiters. */
async function agentCall(api: PveClient, node: string, vmid: number, waitingSince = 0): ReturnType<PveClient["qemu"]["agentNetworkInterfaces"]> {
  let perNode = slots.get(api);
  if (!perNode) slots.set(api, (perNode = new Map()));
  let s = perNode.get(node);
  if (!s) perNode.set(node, (s = new OrderedSlots(AGENT_CALLS_PER_NODE)));
  const release = await s.acquire(waitingSince);
  try {
    return await api.qemu.agentNetworkInterfaces(node, vmid, { noRetry: true });
  } finally {
    release();
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
  const learned = o.fleetKey !== undefined ? learnedBoot.get(api)?.get(o.fleetKey) : undefined;
  let delay = o.justStarted ? Math.max(o.initialDelayMs ?? 2_000, learned !== undefined ? learned * 0.9 : 0) : 0;
  const maxDelay = o.maxDelayMs ?? 5_000;
  let lastProblem = "the agent has not answered yet";
  let answered = false;
  let seen: string[] = [];
  for (;;) {
    await clock.sleep(Math.max(0, Math.min(delay, o.timeoutMs - (clock.now() - started))));
    try {
      const r = await agentCall(api, o.node, o.vmid, started);
      answered = true;
      if (o.fleetKey !== undefined && o.justStarted) {
        let perFleet = learnedBoot.get(api);
        if (!perFleet) learnedBoot.set(api, (perFleet = new Map()));
        const took = clock.now() - started;
        perFleet.set(o.fleetKey, Math.min(perFleet.get(o.fleetKey) ?? took, took));
      }
      if (r.ok) {
        seen = r.interfaces.filter((i) => i.name !== "lo").map((i) => `${i.name} ${(i["hardware-address"] ?? "").toUpperCase()}${ipv4Of([i]).length ? ` ${ipv4Of([i]).join(",")}` : ""}`);
        const primary = ipv4Of(r.interfaces, nic);
        if (primary.length) return { primary, all: ipv4Of(r.interfaces), interfaces: r.interfaces };
        lastProblem = r.interfaces.some((i) => selects(i, nic)) ? `${nicLabel(nic)} has no IPv4 address yet` : `the agent reports no ${nicLabel(nic)}`;
      } else {
        lastProblem = `the agent answered ${r.errorClass}: ${r.description}`;
      }
    } catch (err) {
      if (!(err instanceof PveApiError)) throw err;
      const msg = err.pveMessage;
      if (/No QEMU guest agent configured/i.test(msg)) {
        throw new AgentWaitError(
          `${label(o)} has no QEMU guest agent configured, so its IP address cannot be learned. Enable the agent in the template (agent: 1, with qemu-guest-agent installed in the guest), or set waitForIp: false.`,
        );
      }
      if (/is not running/i.test(msg) && !/guest agent is not running/i.test(msg)) {
        throw new AgentWaitError(`${label(o)} stopped while waiting for its guest agent (${msg}). Check the VM's console and task log.`);
      }
      if (err.status === undefined || err.status < 500) throw err;
      if (!/guest agent is not running/i.test(msg)) answered = true;
      lastProblem = msg;
    }
    const elapsed = clock.now() - started;
    if (elapsed >= o.timeoutMs) {
      const seconds = Math.round(elapsed / 1000);
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
    delay = Math.min(maxDelay, Math.max(o.pollIntervalMs ?? 1_000, (clock.now() - started) * 0.1));
  }
}
