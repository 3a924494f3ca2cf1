// Config update on a running VM, per key (REALISM.md §2): what `vmconfig_hotplug_pending`
// (QEMU QemuServer.pm) applies at once, what stays `[PENDING]`, what fails with
// `hotplug problem - <msg>`; and the checks of `update_vm_api` (QEMU API2/Qemu.pm).
import * as fs from "fs";
import * as path from "path";
import { Api, createVm, startApi } from "./cluster-helpers";

let api: Api;
let nextId = 200;
beforeAll(async () => {
  api = await startApi({ seed: 7 });
  const c = api.s.sim.ext.cluster;
  const iso = c.hostPath("pve1", "/var/lib/vz/template/iso/a.iso");
  fs.mkdirSync(path.dirname(iso), { recursive: true });
  fs.writeFileSync(iso, "iso");
});
afterAll(() => api.stop());

const cfg = (vmid: number) => `/nodes/pve1/qemu/${vmid}/config`;
const current = (vmid: number) => api.ok("GET", cfg(vmid), { current: 1 });
const pendingOf = async (vmid: number, key: string) => (await api.ok("GET", `/nodes/pve1/qemu/${vmid}/pending`)).find((e: any) => e.key === key);

/** A new VM (createVm's: scsi0 in the boot order, ide2 cloud-init, net0), set up while stopped
 *  with `setup`, then started. */
async function runningVm(setup: Record<string, string | number> = {}): Promise<number> {
  const vmid = nextId++;
  await createVm(api, vmid);
  if (Object.keys(setup).length) await api.ok("PUT", cfg(vmid), setup);
  expect((await api.task("POST", `/nodes/pve1/qemu/${vmid}/status/start`)).exitstatus).toBe("OK");
  return vmid;
}

describe("hotplug option", () => {
  test("features network disk cpu memory usb cloudinit, 0 and 1; anything else is invalid", async () => {
    const vmid = nextId++;
    await createVm(api, vmid);
    for (const v of ["network,disk,cpu,memory,usb,cloudinit", "0", "1", "cloudinit"]) {
      await api.ok("PUT", cfg(vmid), { hotplug: v });
      expect((await current(vmid)).hotplug).toBe(v);
    }
    const r = await api.req("PUT", cfg(vmid), { hotplug: "network,floppy" });
    expect([r.status, r.body.errors]).toEqual([400, { hotplug: "invalid format - invalid hotplug feature 'floppy'" }]);
  });

  test("hotplug itself is applied live unless the old or the new value has cpu or memory", async () => {
    const vmid = await runningVm();
    await api.ok("PUT", cfg(vmid), { hotplug: "network" });
    expect((await current(vmid)).hotplug).toBe("network");
    await api.ok("PUT", cfg(vmid), { hotplug: "network,cpu" });
    expect(await pendingOf(vmid, "hotplug")).toEqual({ key: "hotplug", value: "network", pending: "network,cpu" });

    const vm2 = await runningVm({ hotplug: "network,memory" });
    await api.ok("PUT", cfg(vm2), { hotplug: "network" });
    expect(await pendingOf(vm2, "hotplug")).toEqual({ key: "hotplug", value: "network,memory", pending: "network" });
    await api.ok("PUT", cfg(vm2), { delete: "hotplug" });
    expect(await pendingOf(vm2, "hotplug")).toEqual({ key: "hotplug", value: "network,memory", delete: 1 });
  });
});

describe("netN (vmconfig_update_net)", () => {
  test("bridge/tag/firewall/rate/link_down change live without the network feature; model, MAC, queues, mtu need it", async () => {
    const vmid = await runningVm({ hotplug: "0" });
    const net0 = (await current(vmid)).net0 as string;
    const mac = net0.split(",")[0];
    await api.ok("PUT", cfg(vmid), { net0: `${mac},bridge=vmbr0,tag=10,firewall=1,rate=50,link_down=1` });
    expect((await current(vmid)).net0).toBe(`${mac},bridge=vmbr0,tag=10,firewall=1,rate=50,link_down=1`);
    await api.ok("PUT", cfg(vmid), { net0: `${mac},bridge=vmbr0,queues=4` });
    expect(await pendingOf(vmid, "net0")).toEqual({ key: "net0", value: `${mac},bridge=vmbr0,tag=10,firewall=1,rate=50,link_down=1`, pending: `${mac},bridge=vmbr0,queues=4` });
    await api.ok("PUT", cfg(vmid), { net0: `e1000=${mac.split("=")[1]},bridge=vmbr0` });
    expect((await pendingOf(vmid, "net0")).pending).toBe(`e1000=${mac.split("=")[1]},bridge=vmbr0`);
    // a new NIC needs the feature too
    await api.ok("PUT", cfg(vmid), { net1: "virtio=BC:24:11:00:00:01,bridge=vmbr0" });
    expect(await pendingOf(vmid, "net1")).toEqual({ key: "net1", pending: "virtio=BC:24:11:00:00:01,bridge=vmbr0" });
  });

  test("with the network feature a model change and a new NIC apply at once", async () => {
    const vmid = await runningVm({ hotplug: "network" });
    await api.ok("PUT", cfg(vmid), { net0: "e1000=BC:24:11:00:00:02,bridge=vmbr0", net1: "virtio=BC:24:11:00:00:03,bridge=vmbr0" });
    const cur = await current(vmid);
    expect([cur.net0, cur.net1]).toEqual(["e1000=BC:24:11:00:00:02,bridge=vmbr0", "virtio=BC:24:11:00:00:03,bridge=vmbr0"]);
  });
});

describe("drives (vmconfig_update_disk)", () => {
  test("a new scsi/virtio disk is hot-plugged with the disk feature; ide/sata, efidisk0, tpmstate0 never", async () => {
    const vmid = await runningVm();
    await api.ok("PUT", cfg(vmid), { scsi1: "local-lvm:1", virtio0: "local-lvm:1", sata0: "local-lvm:1", ide1: "local-lvm:1", efidisk0: "local-lvm:1" });
    const cur = await current(vmid);
    expect(cur.scsi1).toMatch(/^local-lvm:vm-\d+-disk-\d,size=1G$/);
    expect(cur.virtio0).toMatch(/^local-lvm:vm-\d+-disk-\d,size=1G$/);
    for (const k of ["sata0", "ide1", "efidisk0"]) {
      expect(cur[k]).toBeUndefined();
      expect((await pendingOf(vmid, k)).pending).toBeDefined();
    }
    const vm2 = await runningVm({ hotplug: "network" });
    await api.ok("PUT", cfg(vm2), { scsi1: "local-lvm:1" });
    expect((await current(vm2)).scsi1).toBeUndefined();
    expect((await pendingOf(vm2, "scsi1")).pending).toBe("local-lvm:1");
  });

  test("same volume: throttling live even without the feature and on ide; aio/cache/ssd… stay pending; media change fails", async () => {
    const vmid = await runningVm({ hotplug: "0", ide0: "local-lvm:1" });
    const before = await current(vmid);
    await api.ok("PUT", cfg(vmid), { scsi0: `${before.scsi0},iops_rd=100,mbps_wr=20`, ide0: `${before.ide0},mbps=5` });
    const cur = await current(vmid);
    expect(cur.scsi0).toBe(`${before.scsi0},iops_rd=100,mbps_wr=20`);
    expect(cur.ide0).toBe(`${before.ide0},mbps=5`);
    for (const extra of ["cache=writeback", "ssd=1", "discard=on", "iothread=1", "aio=native", "ro=1"]) {
      await api.ok("PUT", cfg(vmid), { scsi0: `${cur.scsi0},${extra}` });
      expect(await pendingOf(vmid, "scsi0")).toEqual({ key: "scsi0", value: cur.scsi0, pending: `${cur.scsi0},${extra}` });
      await api.ok("PUT", cfg(vmid), { revert: "scsi0" });
    }
    const r = await api.req("PUT", cfg(vmid), { scsi0: "local:iso/a.iso,media=cdrom" });
    expect([r.status, r.body.errors]).toEqual([400, { scsi0: "hotplug problem - unable to change media type" }]);
    // the change was written to [PENDING] before the hot-plug failed
    expect((await pendingOf(vmid, "scsi0")).pending).toBe("local:iso/a.iso,media=cdrom");
  });

  test("another volume needs the disk feature (old one → unusedN); a boot disk cannot be unplugged", async () => {
    const vmid = await runningVm({ hotplug: "0", scsi1: "local-lvm:1", scsi2: "local-lvm:1" });
    const before = await current(vmid);
    const vol2 = before.scsi2.split(",")[0];
    await api.ok("PUT", cfg(vmid), { scsi1: `${vol2},size=1G` });
    expect((await pendingOf(vmid, "scsi1")).pending).toBe(`${vol2},size=1G`);
    await api.ok("PUT", cfg(vmid), { revert: "scsi1" });

    const vm2 = await runningVm({ scsi1: "local-lvm:1" });
    const b2 = await current(vm2);
    await api.ok("PUT", cfg(vm2), { scsi1: "local-lvm:2" });
    const cur = await current(vm2);
    expect(cur.scsi1).toMatch(/size=2G$/);
    expect(cur.unused0).toBe(b2.scsi1.split(",")[0]);
    const r = await api.req("PUT", cfg(vm2), { scsi0: "local-lvm:2" });
    expect([r.status, r.body.errors]).toEqual([400, { scsi0: "hotplug problem - can't unplug bootdisk 'scsi0'" }]);
  });

  test("CD-ROM media change is applied live on any bus whatever hotplug says", async () => {
    const vmid = await runningVm({ hotplug: "0", ide3: "none,media=cdrom", sata1: "none,media=cdrom" });
    await api.ok("PUT", cfg(vmid), { ide3: "local:iso/a.iso,media=cdrom", sata1: "local:iso/a.iso,media=cdrom" });
    let cur = await current(vmid);
    expect([cur.ide3, cur.sata1]).toEqual(["local:iso/a.iso,media=cdrom", "local:iso/a.iso,media=cdrom"]);
    await api.ok("PUT", cfg(vmid), { cdrom: "none" });
    cur = await current(vmid);
    expect(cur.ide2).toBe("none,media=cdrom");
    // the replaced cloud-init drive is freed (vmconfig_register_unused_drive), not made unusedN
    expect(Object.keys(cur).filter((k) => k.startsWith("unused"))).toEqual([]);
    const vols = (await api.ok("GET", "/nodes/pve1/storage/local-lvm/content")).map((e: any) => e.volid);
    expect(vols).not.toContain(`local-lvm:vm-${vmid}-cloudinit`);
  });

  test("deleting a drive: scsi/virtio unplugged with the disk feature (unusedN, or freed with force); ide/sata/efidisk pending", async () => {
    const vmid = await runningVm({ scsi1: "local-lvm:1", scsi2: "local-lvm:1", sata1: "local-lvm:1", efidisk0: "local-lvm:1" });
    const before = await current(vmid);
    await api.ok("PUT", cfg(vmid), { delete: "scsi1,sata1,efidisk0" });
    let cur = await current(vmid);
    expect(cur.scsi1).toBeUndefined();
    expect(cur.unused0).toBe(before.scsi1.split(",")[0]);
    expect(await pendingOf(vmid, "sata1")).toEqual({ key: "sata1", value: before.sata1, delete: 1 });
    expect(await pendingOf(vmid, "efidisk0")).toEqual({ key: "efidisk0", value: before.efidisk0, delete: 1 });
    await api.ok("PUT", cfg(vmid), { delete: "scsi2", force: 1 });
    cur = await current(vmid);
    expect([cur.scsi2, cur.unused1]).toEqual([undefined, undefined]);
    const vols = (await api.ok("GET", "/nodes/pve1/storage/local-lvm/content")).map((e: any) => e.volid);
    expect(vols).not.toContain(before.scsi2.split(",")[0]);
    // without the feature it stays a pending delete
    const vm2 = await runningVm({ hotplug: "network", scsi1: "local-lvm:1" });
    await api.ok("PUT", cfg(vm2), { delete: "scsi1" });
    expect((await pendingOf(vm2, "scsi1")).delete).toBe(1);
  });
});

describe("other keys", () => {
  test("cpuunits and cpulimit apply live (cgroup) even with hotplug 0, their deletion too", async () => {
    const vmid = await runningVm({ hotplug: "0" });
    await api.ok("PUT", cfg(vmid), { cpuunits: 200, cpulimit: 1.5 });
    let cur = await current(vmid);
    expect([cur.cpuunits, cur.cpulimit]).toEqual([200, 1.5]);
    await api.ok("PUT", cfg(vmid), { delete: "cpuunits,cpulimit" });
    cur = await current(vmid);
    expect([cur.cpuunits, cur.cpulimit]).toEqual([undefined, undefined]);
  });

  test("balloon applies live unless it switches ballooning on or off", async () => {
    const vmid = await runningVm();
    await api.ok("PUT", cfg(vmid), { balloon: 1024 });
    expect((await current(vmid)).balloon).toBe(1024);
    await api.ok("PUT", cfg(vmid), { balloon: 0 });
    expect(await pendingOf(vmid, "balloon")).toEqual({ key: "balloon", value: 1024, pending: 0 });
    const vm2 = await runningVm({ balloon: 0 });
    await api.ok("PUT", cfg(vm2), { balloon: 512 });
    expect(await pendingOf(vm2, "balloon")).toEqual({ key: "balloon", value: 0, pending: 512 });
    await api.ok("PUT", cfg(vm2), { delete: "balloon" });
    expect(await pendingOf(vm2, "balloon")).toEqual({ key: "balloon", value: 0, delete: 1 });
  });

  test("balloon larger than memory is refused", async () => {
    const vmid = nextId++;
    await createVm(api, vmid);
    let r = await api.req("PUT", cfg(vmid), { balloon: 4096 });
    expect([r.status, r.reason]).toEqual([500, "balloon value too large (must be smaller than assigned memory)"]);
    r = await api.req("PUT", cfg(vmid), { memory: 1024, balloon: 2048 });
    expect([r.status, r.reason]).toEqual([500, "balloon value too large (must be smaller than assigned memory)"]);
    await api.ok("PUT", cfg(vmid), { memory: 8192, balloon: 4096 });
    expect((await current(vmid)).balloon).toBe(4096);
  });

  test("tablet live with the usb feature; usbN also needs ostype l26/Windows > 7 and machine >= 7.1", async () => {
    // a SPICE USB port: a real host device is root@pam's alone (check_usb_perm), not the root token's
    const vmid = await runningVm({ ostype: "l26" });
    await api.ok("PUT", cfg(vmid), { tablet: 0, usb0: "host=spice" });
    let cur = await current(vmid);
    expect([cur.tablet, cur.usb0]).toEqual([0, "host=spice"]);
    await api.ok("PUT", cfg(vmid), { delete: "usb0" });
    expect((await current(vmid)).usb0).toBeUndefined();

    const noOs = await runningVm();
    await api.ok("PUT", cfg(noOs), { usb0: "host=spice" });
    expect((await pendingOf(noOs, "usb0")).pending).toBe("host=spice");
    const win7 = await runningVm({ ostype: "win7" });
    await api.ok("PUT", cfg(win7), { usb0: "host=spice" });
    expect((await pendingOf(win7, "usb0")).pending).toBe("host=spice");
    const win10 = await runningVm({ ostype: "win10" });
    await api.ok("PUT", cfg(win10), { usb0: "host=spice" });
    expect((await current(win10)).usb0).toBe("host=spice");
    const oldMachine = await runningVm({ ostype: "l26", machine: "pc-i440fx-6.2" });
    await api.ok("PUT", cfg(oldMachine), { usb0: "host=spice" });
    expect((await pendingOf(oldMachine, "usb0")).pending).toBe("host=spice");
    const noUsb = await runningVm({ ostype: "l26", hotplug: "network,disk" });
    await api.ok("PUT", cfg(noUsb), { usb0: "host=spice", tablet: 0 });
    cur = await current(noUsb);
    expect([cur.usb0, cur.tablet]).toEqual([undefined, undefined]);
  });

  test("agent: live only when nothing but fstrim_cloned_disks changes", async () => {
    const vmid = await runningVm();
    await api.ok("PUT", cfg(vmid), { agent: "enabled=1,fstrim_cloned_disks=1" });
    expect((await current(vmid)).agent).toBe("enabled=1,fstrim_cloned_disks=1");
    await api.ok("PUT", cfg(vmid), { agent: "1,fstrim_cloned_disks=1,type=isa" });
    expect((await pendingOf(vmid, "agent")).pending).toBe("1,fstrim_cloned_disks=1,type=isa");
  });

  test("only the keys of this update are hot-plugged (`$modified`)", async () => {
    const vmid = await runningVm({ hotplug: "network" });
    // scsi1 stays pending: no disk feature
    await api.ok("PUT", cfg(vmid), { scsi1: "local-lvm:1" });
    // hotplug gains disk live, but scsi1 is not part of that update
    await api.ok("PUT", cfg(vmid), { hotplug: "network,disk" });
    expect((await current(vmid)).hotplug).toBe("network,disk");
    expect((await pendingOf(vmid, "scsi1")).pending).toBe("local-lvm:1");
  });
});

describe("update_vm_api checks", () => {
  test("delete/revert of a non-option: unknown option", async () => {
    const vmid = nextId++;
    await createVm(api, vmid);
    let r = await api.req("PUT", cfg(vmid), { delete: "foo" });
    expect([r.status, r.body.errors]).toEqual([400, { delete: "unknown option 'foo'" }]);
    r = await api.req("PUT", cfg(vmid), { revert: "bar" });
    expect([r.status, r.body.errors]).toEqual([400, { revert: "unknown option 'bar'" }]);
  });

  test("delete of a key that is not set: a warning in the task", async () => {
    const vmid = nextId++;
    await createVm(api, vmid);
    const st = await api.task("POST", cfg(vmid), { delete: "serial0", description: "x" });
    expect(st.exitstatus).toBe("WARNINGS: 1");
    expect(await api.log("pve1", st.upid)).toContain("WARN: cannot delete 'serial0' - not set in current configuration!");
    // sync PUT: the warning goes to the API daemon's log, the call succeeds
    const r = await api.req("PUT", cfg(vmid), { delete: "serial0" });
    expect([r.status, r.body]).toEqual([200, { data: null }]);
  });

  test("a hot-plug failure fails the qmconfig task with the stringified parameter exception", async () => {
    const vmid = await runningVm();
    const st = await api.task("POST", cfg(vmid), { scsi0: "local:iso/a.iso,media=cdrom" });
    expect(st.exitstatus).toBe("400 Parameter verification failed. scsi0: hotplug problem - unable to change media type");
  });
});

describe("cloud-init on a running VM", () => {
  test("name and netN changes are recorded in [special:cloudinit] when applied; with the cloudinit feature the image is regenerated at once", async () => {
    const vmid = await runningVm({ hotplug: "network" });
    await api.ok("PUT", cfg(vmid), { name: "renamed" });
    let text = (await api.admin("GET", `/vms/${vmid}`)).config as string;
    expect(text).toMatch(/\[special:cloudinit\]\nname: vm\d+\n/);
    // GET .../cloudinit lists only $cloudinitoptions for changed values: a changed name is not shown
    expect((await api.ok("GET", `/nodes/pve1/qemu/${vmid}/cloudinit`)).map((e: any) => e.key)).not.toContain("name");
    await api.ok("PUT", `/nodes/pve1/qemu/${vmid}/cloudinit`);
    const net0 = (await current(vmid)).net0 as string;
    await api.ok("PUT", cfg(vmid), { net0: net0.replace(/^virtio=[^,]+/, "virtio=BC:24:11:00:00:09") });
    text = (await api.admin("GET", `/vms/${vmid}`)).config as string;
    expect(text).toContain(`[special:cloudinit]\nnet0: ${net0}\n`);

    const vm2 = await runningVm({ hotplug: "network,cloudinit" });
    await api.ok("PUT", cfg(vm2), { ciuser: "carol" });
    expect((await api.admin("GET", `/vms/${vm2}`)).config).not.toContain("[special:cloudinit]");
    expect(await api.ok("GET", `/nodes/pve1/qemu/${vm2}/cloudinit`)).toContainEqual({ key: "ciuser", value: "carol" });
  });
});
