// Waiting for the QEMU guest agent to report an IPv4 address, bounded and explained.
//
// - agent not configured in the VM: fails at once (no wait can help);
// - agent configured but not answering yet (`QEMU guest agent is not running`), or answering
//   without an IPv4 on the interface: polls with backoff until `timeoutMs`, then fails with the
//   VM, node, interface, elapsed time and what to check.

import { PveApiError, type GuestNetworkInterface, type PveClient } from "../../proxmox";
import type { Clock } from "../../util/clock";

export interface AgentWaitOptions {
  node: string;
  vmid: number;
  name?: string;
  /** Interface whose IPv4 is awaited (`ens18` for the first virtio NIC of most cloud images). */
  interfaceName: string;
  timeoutMs: number;
  /**
   * First poll after this long (default 250 ms); then every `pollIntervalMs` (default 500 ms) or
   * 10% of the time waited so far, whichever is longer, up to maxDelayMs (default 5 s): a guest
   * that answers after 10 s is seen within 1 s, one that takes minutes costs few polls.
   */
  initialDelayMs?: number;
  pollIntervalMs?: number;
  maxDelayMs?: number;
  clock?: Clock;
}

export interface AgentAddresses {
  /** IPv4 addresses of the awaited interface. */
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

export function ipv4Of(interfaces: GuestNetworkInterface[], name?: string): string[] {
  return interfaces
    .filter((i) => (name === undefined ? i.name !== "lo" : i.name === name))
    .flatMap((i) => i["ip-addresses"] ?? [])
    .filter((a) => a["ip-address-type"] === "ipv4" && !a["ip-address"].startsWith("127.") && !a["ip-address"].startsWith("169.254."))
    .map((a) => a["ip-address"]);
}

function label(o: AgentWaitOptions): string {
  return `VM ${o.vmid}${o.name ? ` (${o.name})` : ""} on node '${o.node}'`;
}

/** One look at the agent (refresh): addresses, or undefined when it does not answer (yet), or
 *  when the principal may not ask it. A read-only principal (PVEAuditor) may on PVE 9
 *  (VM.GuestAgent.Audit) but not on PVE 8, which wants VM.Monitor: its refresh keeps the
 *  addresses in the state rather than failing (a CI drift check runs as such a principal). */
export async function agentAddresses(api: PveClient, node: string, vmid: number, interfaceName: string): Promise<AgentAddresses | undefined> {
  try {
    const r = await api.qemu.agentNetworkInterfaces(node, vmid, { noRetry: true });
    if (!r.ok) return undefined;
    return { primary: ipv4Of(r.interfaces, interfaceName), all: ipv4Of(r.interfaces), interfaces: r.interfaces };
  } catch (err) {
    if (err instanceof PveApiError && err.status !== undefined && err.status >= 500) return undefined;
    if (err instanceof PveApiError && err.status === 403) return undefined;
    throw err;
  }
}

export async function waitForAgentIpv4(api: PveClient, o: AgentWaitOptions): Promise<AgentAddresses> {
  const clock = o.clock ?? api.clock;
  const started = clock.now();
  let delay = o.initialDelayMs ?? 250;
  const maxDelay = o.maxDelayMs ?? 5_000;
  let lastProblem = "the agent has not answered yet";
  let seen: string[] = [];
  for (;;) {
    try {
      const r = await api.qemu.agentNetworkInterfaces(o.node, o.vmid, { noRetry: true });
      if (r.ok) {
        seen = r.interfaces.map((i) => `${i.name}${ipv4Of([i], i.name).length ? ` ${ipv4Of([i], i.name).join(",")}` : ""}`);
        const primary = ipv4Of(r.interfaces, o.interfaceName);
        if (primary.length) return { primary, all: ipv4Of(r.interfaces), interfaces: r.interfaces };
        lastProblem = r.interfaces.some((i) => i.name === o.interfaceName)
          ? `interface ${o.interfaceName} has no IPv4 address yet`
          : `the agent reports no interface named ${o.interfaceName}`;
      } else {
        lastProblem = `the agent answered ${r.errorClass}: ${r.description}`;
      }
    } catch (err) {
      if (!(err instanceof PveApiError)) throw err;
      const msg = err.pveMessage;
      if (/No QEMU guest agent configured/i.test(msg)) {
        throw new AgentWaitError(
          `${label(o)} has no QEMU guest agent configured, so its IP address cannot be learned. Enable the agent in the template (agent: 1, with qemu-guest-agent installed in the image), or set waitForIp: false.`,
        );
      }
      if (/is not running/i.test(msg) && !/guest agent is not running/i.test(msg)) {
        throw new AgentWaitError(`${label(o)} stopped while waiting for its guest agent (${msg}). Check the VM's console and task log.`);
      }
      if (err.status === undefined || err.status < 500) throw err;
      lastProblem = msg;
    }
    const elapsed = clock.now() - started;
    if (elapsed >= o.timeoutMs) {
      throw new AgentWaitError(
        `${label(o)}: no IPv4 address on interface ${o.interfaceName} after ${Math.round(elapsed / 1000)} s (${lastProblem}${seen.length ? `; interfaces seen: ${seen.join("; ")}` : ""}). ` +
          `Check that qemu-guest-agent is installed and running in the image, that the interface name is right (agentInterface), and that the NIC gets an address (DHCP on its bridge, or ipConfigs). Raise agentTimeoutSeconds for slow boots, or set waitForIp: false.`,
      );
    }
    await clock.sleep(Math.min(delay, o.timeoutMs - elapsed));
    delay = Math.min(maxDelay, Math.max(o.pollIntervalMs ?? 500, (clock.now() - started) * 0.1));
  }
}
