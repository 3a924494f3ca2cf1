// The guest-agent wait against a scripted agent and a virtual clock: the NIC found by MAC (the
// guest's name for it is cloud-init's business), the name override, the schedule (an already
// running VM is asked at once; a fresh start waits; a fleet learns its boot time), the bound on
// calls per node, and the errors at the timeout.
import { PveApiError, type GuestNetworkInterface, type PveClient } from "../../../../provider/proxmox";
import { AGENT_CALLS_PER_NODE, waitForAgentIpv4, type AgentWaitOptions } from "../../../../provider/resources/vm/agent-wait";
import { OrderedSlots } from "../../../../provider/util/ordered-slots";
import type { Clock } from "../../../../provider/util/clock";
import { EventClock } from "../../helpers/event-clock";

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


/**
 * A client whose agent answers with `script(callIndex, now, vmid)`; records when each call came
 * (and for which VM). With `durations`, a call takes `answerMs` to answer and `silentMs` (PVE's
 * guest-ping) to fail, on the given clock.
 */
function scriptedClient(
  clock: Clock,
  script: (call: number, now: number, vmid: number) => GuestNetworkInterface[] | Error,
  durations?: { answerMs: number; silentMs: number },
): { api: PveClient; calls: number[]; byVm: Map<number, number[]> } {
  const calls: number[] = [];
  const byVm = new Map<number, number[]>();
  const api = {
    clock,
    qemu: {
      agentNetworkInterfaces: async (_node: string, vmid: number) => {
        calls.push(clock.now());
        byVm.set(vmid, [...(byVm.get(vmid) ?? []), clock.now()]);
        const r = script(calls.length - 1, clock.now(), vmid);
        if (durations) await clock.sleep(r instanceof Error ? durations.silentMs : durations.answerMs);
        if (r instanceof Error) throw r;
        return { ok: true as const, interfaces: r };
      },
    },
  } as unknown as PveClient;
  return { api, calls, byVm };
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

  test("a VM already running is asked at once; a fresh start first waits; a fleet's later VMs ask first when a sibling answered", async () => {
    const clock = new EventClock();
    const up = [nic("eth0", MAC0, "10.0.0.5")];
    let readyAt = 0;
    const { api, calls } = scriptedClient(clock, (_i, now) => (now >= readyAt ? up : silent()));
    await clock.run(waitForAgentIpv4(api, base()));
    expect(calls).toEqual([0]);

    // the first VM of a fleet: its agent answers 50 s after the start; it first asks after 2 s
    calls.length = 0;
    clock.t = 1_000_000;
    readyAt = clock.t + 50_000;
    await clock.run(waitForAgentIpv4(api, base({ justStarted: true, fleetKey: "pve1/9000" })));
    expect(calls[0] - 1_000_000).toBe(2_000);
    const learned = clock.t - 1_000_000;
    expect(learned).toBeGreaterThanOrEqual(50_000);
    // the next one of the same fleet asks first at that time (and once before, halfway between
    // the last "not running" and that answer, to tighten what the fleet knows)
    calls.length = 0;
    clock.t = 2_000_000;
    readyAt = clock.t + 50_000;
    await clock.run(waitForAgentIpv4(api, base({ vmid: 101, justStarted: true, fleetKey: "pve1/9000" })));
    expect(calls[0] - 2_000_000).toBeGreaterThan(45_000);
    expect(calls.length).toBeLessThanOrEqual(2);
    expect(clock.t - 2_000_000).toBeLessThanOrEqual(learned);
    // another template learns nothing from it
    calls.length = 0;
    clock.t = 3_000_000;
    readyAt = clock.t;
    await clock.run(waitForAgentIpv4(api, base({ vmid: 102, justStarted: true, fleetKey: "pve1/9001" })));
    expect(calls[0] - 3_000_000).toBe(2_000);
  });

  test("a fleet learns its boot time: one scout asks until an agent answers, the others then ask once; later VMs tighten the estimate", async () => {
    const clock = new EventClock();
    const up = [nic("eth0", MAC0, "10.0.0.5")];
    // each guest's agent answers 10 s after its start, give or take (50 ms steps)
    const startOf = new Map<number, number>();
    const readyAt = (vmid: number) => startOf.get(vmid)! + 10_000 + (vmid % 4) * 50;
    const { api, calls, byVm } = scriptedClient(clock, (_i, now, vmid) => (now >= readyAt(vmid) ? up : silent()), { answerMs: 5, silentMs: 3_000 });
    const wave = async (at: number, vmids: number[]) => {
      clock.t = Math.max(clock.t, at);
      for (const v of vmids) startOf.set(v, clock.t);
      await clock.run(Promise.all(vmids.map((vmid) => waitForAgentIpv4(api, base({ vmid, justStarted: true, fleetKey: "pve1/9100", timeoutMs: 600_000 })))));
    };
    const answered = (vmid: number) => byVm.get(vmid)!.find((t) => t >= readyAt(vmid))!;

    await wave(0, [200, 201, 202, 203]);
    const firstAnswer = answered(200);
    // until the scout's agent answered, only the scout asked (every 3 s: each "not running" takes PVE's guest-ping)
    expect(calls.filter((t) => t < firstAnswer)).toEqual(byVm.get(200)!.slice(0, -1));
    expect(byVm.get(200)!.slice(0, -1)).toEqual([2_000, 5_000, 8_000]);
    for (const v of [201, 202, 203]) expect(byVm.get(v)!.length).toBe(1);

    await wave(100_000, [204, 205, 206, 207]);
    await wave(200_000, [208, 209]);
    // 10 VMs: 10 answers, 3 silent calls of the scout, one of the second wave testing the middle
    expect(calls.length).toBeLessThanOrEqual(15);
    // the last VMs are seen within a few hundred ms of their agent, not within the scout's 3 s grid
    for (const v of [208, 209]) expect(answered(v) - readyAt(v)).toBeLessThan(400);
  });

  test("VMs that started a little later test their own time against what the scout learned", async () => {
    const clock = new EventClock();
    const up = [nic("eth0", MAC0, "10.0.0.5")];
    const startOf = new Map<number, number>();
    const readyAt = (vmid: number) => startOf.get(vmid)! + 10_000;
    const { api, byVm } = scriptedClient(clock, (_i, now, vmid) => (now >= readyAt(vmid) ? up : silent()), { answerMs: 5, silentMs: 3_000 });
    // six VMs started 300 ms apart, as a linked-clone fleet comes up
    const waits: Array<Promise<unknown>> = [];
    for (let i = 0; i < 6; i++) {
      const vmid = 400 + i;
      waits.push(
        clock.sleep(i * 300).then(() => {
          startOf.set(vmid, clock.now());
          return waitForAgentIpv4(api, base({ vmid, justStarted: true, fleetKey: "pve1/9300", timeoutMs: 600_000 }));
        }),
      );
    }
    await clock.run(Promise.all(waits));
    const late = (vmid: number) => byVm.get(vmid)!.find((t) => t >= readyAt(vmid))! - readyAt(vmid);
    // the scout asked on its 3 s grid (2, 5, 8, 11 s): 1 s late; a later VM asking at its own
    // elapsed time past the middle of (8 s, 11 s] brings the others in sooner
    expect(late(400)).toBe(1_000);
    expect(Math.max(...[402, 403, 404, 405].map(late))).toBeLessThan(1_000);
  });

  test("a VM whose siblings never answer asks on its own after min(2 min, half its timeout)", async () => {
    const clock = new EventClock();
    const up = [nic("eth0", MAC0, "10.0.0.5")];
    const { api, byVm } = scriptedClient(clock, (_i, now, vmid) => (vmid === 301 && now >= 5_000 ? up : silent()), { answerMs: 5, silentMs: 3_000 });
    const scout = waitForAgentIpv4(api, base({ vmid: 300, justStarted: true, fleetKey: "pve1/9200", timeoutMs: 60_000 }));
    const other = waitForAgentIpv4(api, base({ vmid: 301, justStarted: true, fleetKey: "pve1/9200", timeoutMs: 60_000 }));
    const [a, b] = await clock.run(Promise.allSettled([scout, other]));
    expect(a.status).toBe("rejected");
    expect(String((a as PromiseRejectedResult).reason.message)).toMatch(/never answered/);
    expect(b.status).toBe("fulfilled");
    expect(byVm.get(301)).toEqual([30_000]);
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
