// The guest-agent wait against a scripted agent and a virtual clock: the NIC found by MAC (the
// guest's name for it is cloud-init's business), the name override, the schedule (an already
// running VM is asked at once; a fresh start waits; a fleet learns its boot time), the bound on
// calls per node, and the errors at the timeout.
import { PveApiError, type GuestNetworkInterface, type PveClient } from "../../../../provider/proxmox";
import { AGENT_CALLS_PER_NODE, waitForAgentIpv4, type AgentWaitOptions } from "../../../../provider/resources/vm/agent-wait";
import { OrderedSlots } from "../../../../provider/util/ordered-slots";
import type { Clock } from "../../../../provider/util/clock";

const MAC0 = "BC:24:11:00:00:01";

function nic(name: string, mac: string, ipv4?: string): GuestNetworkInterface {
  return {
    name,
    "hardware-address": mac.toLowerCase(),
    "ip-addresses": [...(ipv4 ? [{ "ip-address-type": "ipv4" as const, "ip-address": ipv4, prefix: 24 }] : []), { "ip-address-type": "ipv6" as const, "ip-address": "fe80::1", prefix: 64 }],
  } as GuestNetworkInterface;
}

const silent = () => new PveApiError({ method: "GET", path: "/nodes/pve1/qemu/100/agent/network-get-interfaces", endpoint: "https://h:8006", status: 500, reason: "QEMU guest agent is not running" });

/** A clock whose sleeps move time at once. */
function virtualClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: async (ms: number) => {
      c.t += Math.max(0, ms);
    },
  };
  return c;
}

/** A client whose agent answers with `script(callIndex, now)`; records when each call came. */
function scriptedClient(clock: Clock, script: (call: number, now: number) => GuestNetworkInterface[] | Error): { api: PveClient; calls: number[] } {
  const calls: number[] = [];
  const api = {
    clock,
    qemu: {
      agentNetworkInterfaces: async () => {
        calls.push(clock.now());
        const r = script(calls.length - 1, clock.now());
        if (r instanceof Error) throw r;
        return { ok: true as const, interfaces: r };
      },
    },
  } as unknown as PveClient;
  return { api, calls };
}

const base = (o: Partial<AgentWaitOptions> = {}): AgentWaitOptions => ({ node: "pve1", vmid: 100, name: "web", macAddress: MAC0, timeoutMs: 60_000, ...o });

describe("waitForAgentIpv4", () => {
  test("the address of the NIC with net0's MAC, whatever the guest calls it; a name overrides", async () => {
    const clock = virtualClock();
    const guest = [nic("lo", "00:00:00:00:00:00", "127.0.0.1"), nic("ens19", "BC:24:11:00:00:02", "10.9.9.9"), nic("eth0", MAC0, "10.0.0.5")];
    const { api } = scriptedClient(clock, () => guest);
    expect((await waitForAgentIpv4(api, base())).primary).toEqual(["10.0.0.5"]);
    const byName = await waitForAgentIpv4(api, base({ interfaceName: "ens19" }));
    expect(byName.primary).toEqual(["10.9.9.9"]);
    expect(byName.all).toEqual(["10.9.9.9", "10.0.0.5"]);
  });

  test("a VM already running is asked at once; a fresh start first waits; a fleet's later VMs wait for the learned boot time", async () => {
    const clock = virtualClock();
    const up = [nic("eth0", MAC0, "10.0.0.5")];
    let readyAt = 0;
    const { api, calls } = scriptedClient(clock, (_i, now) => (now >= readyAt ? up : silent()));
    await waitForAgentIpv4(api, base());
    expect(calls).toEqual([0]);

    // the first VM of a fleet: its agent answers 50 s after the start
    calls.length = 0;
    clock.t = 1_000_000;
    readyAt = clock.t + 50_000;
    await waitForAgentIpv4(api, base({ justStarted: true, fleetKey: "pve1/9000" }));
    expect(calls[0] - 1_000_000).toBe(2_000);
    const learned = clock.t - 1_000_000;
    expect(learned).toBeGreaterThanOrEqual(50_000);
    // the next one of the same fleet does not ask before 90% of that
    calls.length = 0;
    clock.t = 2_000_000;
    readyAt = clock.t + 50_000;
    await waitForAgentIpv4(api, base({ vmid: 101, justStarted: true, fleetKey: "pve1/9000" }));
    expect(calls[0] - 2_000_000).toBeCloseTo(learned * 0.9, 3);
    expect(calls.length).toBeLessThanOrEqual(3);
    // another template learns nothing from it
    calls.length = 0;
    clock.t = 3_000_000;
    readyAt = clock.t;
    await waitForAgentIpv4(api, base({ vmid: 102, justStarted: true, fleetKey: "pve1/9001" }));
    expect(calls[0] - 3_000_000).toBe(2_000);
  });

  test("an agent that never answered: the error names the image, the user-data situation and the fix", async () => {
    const clock = virtualClock();
    const { api } = scriptedClient(clock, () => silent());
    const err = await waitForAgentIpv4(api, base({ timeoutMs: 20_000, describeGuest: async () => ({ image: "debian-12-genericcloud-amd64.qcow2", networkConfigured: true }) })).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err).toMatch(/^VM 100 \(web\) on node 'pve1': the QEMU guest agent never answered in 2\d s/);
    expect(err).toContain("its image (debian-12-genericcloud-amd64.qcow2) probably does not include it");
    expect(err).toContain("Nothing in its cloud-init data installs the agent (no cicustom.user)");
    expect(err).toContain("runcmd: [[systemctl, start, qemu-guest-agent]]");
    const withUserData = await waitForAgentIpv4(api, base({ timeoutMs: 5_000, describeGuest: async () => ({ userData: "local:snippets/u.yaml", networkConfigured: true }) })).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(withUserData).toContain("Its user-data local:snippets/u.yaml is applied at the first boot: check that it installs qemu-guest-agent AND starts it");
  });

  test("an agent that answers without an address on net0: the error says net0 has no ipconfig when it has none", async () => {
    const clock = virtualClock();
    const { api } = scriptedClient(clock, () => [nic("ens18", MAC0)]);
    const err = await waitForAgentIpv4(api, base({ timeoutMs: 10_000, describeGuest: async () => ({ networkConfigured: false }) })).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err).toMatch(/no IPv4 address on the NIC with MAC BC:24:11:00:00:01 \(net0\) after \d+ s \(the NIC with MAC BC:24:11:00:00:01 \(net0\) has no IPv4 address yet; interfaces seen: ens18 BC:24:11:00:00:01\)/);
    expect(err).toContain('set ipConfigs: [{ ip: "dhcp" }]');
  });

  test(`at most ${AGENT_CALLS_PER_NODE} agent calls in flight per node, whatever the number of VMs waiting`, async () => {
    let inFlight = 0;
    let peak = 0;
    const realClock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 5))) };
    const api = {
      clock: realClock,
      qemu: {
        agentNetworkInterfaces: async () => {
          inFlight++;
          peak = Math.max(peak, inFlight);
          await new Promise((r) => setTimeout(r, 10));
          inFlight--;
          return { ok: true as const, interfaces: [nic("eth0", MAC0, "10.0.0.5")] };
        },
      },
    } as unknown as PveClient;
    await Promise.all(Array.from({ length: 12 }, (_, i) => waitForAgentIpv4(api, base({ vmid: 100 + i }))));
    expect(peak).toBe(AGENT_CALLS_PER_NODE);
  });
});

describe("OrderedSlots", () => {
  test("serves the lowest key first once a slot frees, ties in arrival order", async () => {
    const slots = new OrderedSlots(1);
    const first = await slots.acquire(5);
    const order: string[] = [];
    const wait = (key: number, name: string) => slots.acquire(key).then((release) => {
      order.push(name);
      release();
    });
    const all = [wait(30, "c"), wait(10, "a"), wait(20, "b1"), wait(20, "b2")];
    expect(slots.inFlight).toBe(1);
    first();
    await Promise.all(all);
    expect(order).toEqual(["a", "b1", "b2", "c"]);
    expect(slots.inFlight).toBe(0);
    expect(() => new OrderedSlots(0)).toThrow(RangeError);
  });
});
