// REALISM.md rows closed in the second pass: tags on create with a pool, value-dependent device
// privileges, cipassword (SHA-256 crypt, masked), sshkeys validation, the boot order on config
// updates, [special:cloudinit] only for running VMs, the configdrive2 format, `stop timeout=N` and
// `overrule-shutdown`. Each test cites the PVE source it was read from (QEMU = qemu-server
// src/PVE/API2/Qemu.pm unless said otherwise).
import { createHash } from "crypto";
import { Api, asToken, createVm, startApi, statusAndReason, tokenWith, waitUpid as waitUpidOf } from "./cluster-helpers";
import { call } from "./core-http";
import { encryptPw, isCryptHash, sha256Crypt } from "../sha-crypt";
import { sshPublicKeyLineValid } from "../ssh-pubkey";
import { generateEd25519KeyPair } from "../../helpers/ssh-keys";

let api: Api;

const userWith = (acls: Record<string, string>) => tokenWith(api, acls);

const as = (token: string) => asToken(api, token);
const refused = statusAndReason;
const waitUpid = (r: { status: number; body: any }) => waitUpidOf(api, r);
const cfg = (vmid: number) => `/nodes/pve1/qemu/${vmid}/config`;
const state = (vmid: number) => api.s.sim.ext.cluster.vms.get(vmid).config;

beforeAll(async () => {
  api = await startApi({ seed: 91, cluster: { ssh: false } });
  await api.ok("POST", "/pools", { poolid: "P" });
});
afterAll(() => api.stop());

describe("§1 permissions", () => {
  test("tags on create with pool=: VM.Config.Options on /vms/{vmid} in the worker, never the pool (create_vm, GUEST assert_tag_permissions)", async () => {
    const poolOnly = as(await userWith({ "/pool/P": "VM.Allocate,VM.Config.Options", "/storage/local-lvm": "Datastore.AllocateSpace" }));
    // no synchronous refusal: the create worker checks, after the disks are made
    const st = await waitUpid(await poolOnly("POST", "/nodes/pve1/qemu", { vmid: 400, pool: "P", tags: "web", scsi0: "local-lvm:1" }));
    expect(st.exitstatus).toBe("unable to create VM 400 - Permission check failed (/vms/400, VM.Config.Options)");
    expect(api.s.sim.ext.cluster.vms.has(400)).toBe(false);
    expect((await api.ok("GET", "/nodes/pve1/storage/local-lvm/content")).map((v: any) => v.volid)).not.toContain("local-lvm:vm-400-disk-0");
    // without tags the pool's VM.Allocate suffices; with Options on /vms/401 the tags pass too
    expect((await waitUpid(await poolOnly("POST", "/nodes/pve1/qemu", { vmid: 402, pool: "P" }))).exitstatus).toBe("OK");
    const vmOpts = as(await userWith({ "/pool/P": "VM.Allocate", "/vms/401": "VM.Config.Options" }));
    expect((await waitUpid(await vmOpts("POST", "/nodes/pve1/qemu", { vmid: 401, pool: "P", tags: "web" }))).exitstatus).toBe("OK");
    expect((await api.ok("GET", cfg(401))).tags).toBe("web");
  });

  test("serialN: a socket is HWType, a real device root@pam's alone: `set` on create, `modify`/`delete` on update (create_vm $check_vm_create_serial_perm, update_vm_api)", async () => {
    const hw = as(await userWith({ "/vms/410": "VM.Allocate,VM.Config.HWType" }));
    expect(await refused(hw("POST", "/nodes/pve1/qemu", { vmid: 410, serial0: "/dev/ttyS0" }))).toEqual([500, "only root can set 'serial0' config for real devices"]);
    expect((await waitUpid(await hw("POST", "/nodes/pve1/qemu", { vmid: 410, serial0: "socket" }))).exitstatus).toBe("OK");
    expect(await refused(hw("PUT", cfg(410), { serial1: "/dev/ttyS1" }))).toEqual([500, "only root can modify 'serial1' config for real devices"]);
    // not even the root token: it is not root@pam
    expect(await refused(api.req("PUT", cfg(410), { serial1: "/dev/ttyS1" }))).toEqual([500, "only root can modify 'serial1' config for real devices"]);
    state(410).current.serial1 = "/dev/ttyS1"; // as root@pam set it
    expect(await refused(hw("PUT", cfg(410), { delete: "serial1" }))).toEqual([500, "only root can delete 'serial1' config for real devices"]);
    // replacing the real device by a socket is a modification of a real device
    expect(await refused(hw("PUT", cfg(410), { serial1: "socket" }))).toEqual([500, "only root can modify 'serial1' config for real devices"]);
    expect((await hw("PUT", cfg(410), { delete: "serial0" })).status).toBe(200);
    const opts = as(await userWith({ "/vms/410": "VM.Config.Options" }));
    expect(await refused(opts("PUT", cfg(410), { serial2: "socket" }))).toEqual([403, "Permission check failed (/vms/410, VM.Config.HWType)"]);
  });

  test("usbN, hostpciN, virtiofsN by value; mappings need Mapping.Use on /mapping/<type>/<id> (check_usb_perm, check_hostpci_perm, check_dir_perm)", async () => {
    await createVm(api, 420);
    const hw = as(await userWith({ "/vms/420": "VM.Config.HWType" }));
    expect(await refused(hw("PUT", cfg(420), { usb0: "host=1234:5678" }))).toEqual([500, "only root can set 'usb0' config for real devices"]);
    expect(await refused(hw("PUT", cfg(420), { usb0: "usb3=1" }))).toEqual([500, "either 'host' or 'mapping' must be set."]);
    expect(await refused(hw("PUT", cfg(420), { usb0: "mapping=stick" }))).toEqual([403, "Permission check failed (/mapping/usb/stick, Mapping.Use)"]);
    expect((await hw("PUT", cfg(420), { usb1: "spice" })).status).toBe(200);
    expect(await refused(hw("PUT", cfg(420), { hostpci0: "0000:01:00.0" }))).toEqual([500, "only root can set 'hostpci0' config for non-mapped devices"]);
    expect(await refused(hw("PUT", cfg(420), { hostpci0: "mapping=gpu" }))).toEqual([403, "Permission check failed (/mapping/pci/gpu, Mapping.Use)"]);
    expect(await refused(hw("PUT", cfg(420), { virtiofs0: "share" }))).toEqual([403, "Permission check failed (/vms/420, VM.Config.Disk)"]);

    const mapped = as(await userWith({ "/vms/420": "VM.Config.HWType,VM.Config.Disk", "/mapping": "Mapping.Use" }));
    expect((await mapped("PUT", cfg(420), { usb0: "mapping=stick", hostpci0: "mapping=gpu", virtiofs0: "share" })).status).toBe(200);
    const r = await mapped("PUT", cfg(420), { hostpci1: "mapping=gpu,romfile=x.rom" });
    expect([r.status, r.body.errors]).toEqual([400, { hostpci1: "only root@pam can set 'romfile' option" }]);
    // the mapping alone is not enough for hostpci: HWType on the VM too
    const mapOnly = as(await userWith({ "/mapping/pci/gpu": "Mapping.Use", "/vms/420": "VM.Config.Options" }));
    expect(await refused(mapOnly("PUT", cfg(420), { hostpci2: "mapping=gpu" }))).toEqual([403, "Permission check failed (/vms/420, VM.Config.HWType)"]);
    // deleting a mapped device needs the same; on create the pool's HWType counts
    const noMap = as(await userWith({ "/vms/420": "VM.Config.HWType,VM.Config.Disk" }));
    expect(await refused(noMap("PUT", cfg(420), { delete: "usb0" }))).toEqual([403, "Permission check failed (/mapping/usb/stick, Mapping.Use)"]);
    const poolHw = as(await userWith({ "/pool/P": "VM.Allocate,VM.Config.HWType" }));
    expect(await refused(poolHw("POST", "/nodes/pve1/qemu", { vmid: 421, pool: "P", usb0: "mapping=stick" }))).toEqual([403, "Permission check failed (/mapping/usb/stick, Mapping.Use)"]);
    expect((await waitUpid(await poolHw("POST", "/nodes/pve1/qemu", { vmid: 421, pool: "P", usb0: "spice" }))).exitstatus).toBe("OK");
  });
});

describe("§2 config updates", () => {
  test("SHA-256 crypt matches glibc's test vectors (COMMON encrypt_pw uses crypt with `$5$`)", () => {
    expect(sha256Crypt("Hello world!", "$5$saltstring")).toBe("$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5");
    expect(sha256Crypt("Hello world!", "$5$rounds=10000$saltstringsaltstring")).toBe("$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA");
    expect(sha256Crypt("This is just a test", "$5$rounds=5000$toolongsaltstring")).toBe("$5$rounds=5000$toolongsaltstrin$Un/5jzAHMgOGZ5.mWJpuVolil07guHPvOW8mGRcvxa5");
    const h = encryptPw("pw");
    expect(h).toMatch(/^\$5\$[A-Za-z0-9/]{8}\$[./0-9A-Za-z]{43}$/);
    expect(sha256Crypt("pw", h)).toBe(h);
    expect(isCryptHash(h)).toBe(true);
    expect(isCryptHash("plain")).toBe(false);
  });

  test("cipassword is not pending: hashed into the current config at once, masked in GET config/pending (update_vm_api, vm_config, vm_pending)", async () => {
    await createVm(api, 430, { ciuser: "u" });
    await api.task("POST", `/nodes/pve1/qemu/430/status/start`);
    await api.ok("PUT", cfg(430), { cipassword: "s3cret" });
    const stored = state(430).current.cipassword;
    expect(stored).toMatch(/^\$5\$[^$]{8}\$[./0-9A-Za-z]{43}$/);
    expect(sha256Crypt("s3cret", stored)).toBe(stored);
    expect(state(430).pending.cipassword).toBeUndefined();
    expect((await api.ok("GET", cfg(430))).cipassword).toBe("**********");
    expect((await api.ok("GET", cfg(430), { current: 1 })).cipassword).toBe("**********");
    expect((await api.ok("GET", `/nodes/pve1/qemu/430/pending`)).find((e: any) => e.key === "cipassword")).toEqual({ key: "cipassword", value: "**********" });
    // the dump shows the hash to a caller with VM.Config.Cloudinit (the root token)
    expect(await api.ok("GET", "/nodes/pve1/qemu/430/cloudinit/dump", { type: "user" })).toContain(`password: ${stored}\n`);
    // a crypt hash is stored as given; a Windows guest gets the clear text (cloudbase-init)
    const given = "$6$abc$defghijklmnop";
    await api.ok("PUT", cfg(430), { cipassword: given });
    expect(state(430).current.cipassword).toBe(given);
    await createVm(api, 431, { ostype: "win10" });
    await api.ok("PUT", cfg(431), { cipassword: "Clear1" });
    expect(state(431).current.cipassword).toBe("Clear1");
  });

  test("sshkeys: each line must pass `ssh-keygen -l`, on create and update: 500 SSH public key validation error (COMMON validate_ssh_public_keys)", async () => {
    await createVm(api, 440);
    const real = generateEd25519KeyPair({ comment: "me@host" }).public;
    const other = generateEd25519KeyPair().public;
    const enc = (s: string) => encodeURIComponent(s);
    for (const bad of ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0 ops@example.org", "ssh-ed25519 AAAA", `ssh-rsa ${real.split(" ")[1]} x`, "not a key", `${real}\nssh-ed25519 garbage`]) {
      expect([bad, ...(await refused(api.req("PUT", cfg(440), { sshkeys: enc(bad) })))]).toEqual([bad, 500, "SSH public key validation error"]);
    }
    expect(await refused(api.req("POST", "/nodes/pve1/qemu", { vmid: 441, sshkeys: enc("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5") }))).toEqual([500, "SSH public key validation error"]);
    expect(api.s.sim.ext.cluster.vms.has(441)).toBe(false);
    // real keys, blank lines and authorized_keys options pass
    await api.ok("PUT", cfg(440), { sshkeys: enc(`${real}\n\n${other}\nrestrict,command="true" ${other}\n`) });
    expect(decodeURIComponent((await api.ok("GET", cfg(440))).sshkeys)).toContain(real);
    expect(sshPublicKeyLineValid(real)).toBe(true);
  });

  test("boot order: unknown device refused, deleted devices leave it, new CD-ROMs join it, a new order drops bootdisk (update_vm_api)", async () => {
    await createVm(api, 450);
    expect((await api.ok("GET", cfg(450))).boot).toBe("order=scsi0;net0");
    expect(await refused(api.req("PUT", cfg(450), { boot: "order=scsi0;virtio3" }))).toEqual([500, "invalid bootorder: device 'virtio3' does not exist'"]);
    expect(await refused(api.req("PUT", cfg(450), { boot: "order=scsi0;net0", delete: "net0" }))).toEqual([500, "invalid bootorder: device 'net0' does not exist'"]);
    // PVE writes the config per key: the delete before the failure stays, with its boot change
    expect(state(450).pendingDelete).toEqual({ net0: false });
    expect(state(450).pending.boot).toBe("order=scsi0");
    await api.ok("PUT", cfg(450), { revert: "net0,boot" });
    // a device given in the same call exists
    await api.ok("PUT", cfg(450), { scsi1: "local-lvm:1", boot: "order=scsi1;scsi0;net0" });
    expect((await api.ok("GET", cfg(450))).boot).toBe("order=scsi1;scsi0;net0");
    // a new CD-ROM is appended, a new disk is not
    await api.ok("PUT", cfg(450), { ide0: "none,media=cdrom", scsi2: "local-lvm:1" });
    expect((await api.ok("GET", cfg(450))).boot).toBe("order=scsi1;scsi0;net0;ide0");
    await api.ok("PUT", cfg(450), { delete: "scsi1" });
    expect((await api.ok("GET", cfg(450))).boot).toBe("order=scsi0;net0;ide0");
    // running: net0 is unplugged at once, the new boot order stays pending (not hot-pluggable)
    await api.task("POST", "/nodes/pve1/qemu/450/status/start");
    await api.ok("PUT", cfg(450), { delete: "net0" });
    expect((await api.ok("GET", `/nodes/pve1/qemu/450/pending`)).find((e: any) => e.key === "boot")).toEqual({ key: "boot", value: "order=scsi0;net0;ide0", pending: "order=scsi0;ide0" });
    await api.task("POST", "/nodes/pve1/qemu/450/status/stop");
    // legacy bootdisk goes when an order is set
    state(450).current.bootdisk = "scsi0";
    await api.ok("PUT", cfg(450), { boot: "order=scsi0" });
    const conf = await api.ok("GET", cfg(450));
    expect([conf.boot, conf.bootdisk]).toEqual(["order=scsi0", undefined]);
  });

  test("cloud-init changes: a stopped VM records nothing in [special:cloudinit], a running one does (vmconfig_apply_pending vs vmconfig_hotplug_pending)", async () => {
    await createVm(api, 460, { ciuser: "alice" });
    await api.ok("PUT", cfg(460), { ciuser: "bob", searchdomain: "lab" });
    expect(state(460).cloudinit).toBeUndefined();
    expect(await api.ok("GET", "/nodes/pve1/qemu/460/cloudinit")).toEqual([{ key: "ciuser", value: "bob" }, { key: "searchdomain", value: "lab" }]);
    await api.task("POST", "/nodes/pve1/qemu/460/status/start");
    await api.ok("PUT", cfg(460), { ciuser: "carol" });
    expect(state(460).cloudinit).toEqual({ ciuser: "bob" });
    expect(await api.ok("GET", "/nodes/pve1/qemu/460/cloudinit")).toEqual([{ key: "ciuser", value: "bob", pending: "carol" }, { key: "searchdomain", value: "lab" }]);
    // stopped again: what was recorded stays until the drive is generated (start, PUT cloudinit)
    await api.task("POST", "/nodes/pve1/qemu/460/status/stop");
    await api.ok("PUT", cfg(460), { searchdomain: "corp" });
    expect(state(460).cloudinit).toEqual({ ciuser: "bob" });
    await api.ok("PUT", "/nodes/pve1/qemu/460/cloudinit");
    expect(state(460).cloudinit).toBeUndefined();
  });
});

describe("§7 cloud-init format", () => {
  test("citype, else configdrive2 for a Windows ostype, else nocloud: ENI network data and JSON metadata (Cloudinit.pm get_cloudinit_format, configdrive2_network, dump_cloudinit_config)", async () => {
    await createVm(api, 470, { ostype: "win10", ipconfig0: "ip=10.0.0.7/24,gw=10.0.0.1", nameserver: "10.0.0.53", searchdomain: "lab" });
    const dump = (vmid: number, type: string) => api.ok("GET", `/nodes/pve1/qemu/${vmid}/cloudinit/dump`, { type });
    const net = await dump(470, "network");
    expect(net).toBe(
      "auto lo\niface lo inet loopback\n\n        dns_nameservers 10.0.0.53\n        dns_search lab\n"
      + "auto eth0\niface eth0 inet static\n        address 10.0.0.7\n        netmask 255.255.255.0\n        gateway 10.0.0.1\n",
    );
    const user = await dump(470, "user");
    const uuid = createHash("sha1").update(user + net).digest("hex");
    expect(await dump(470, "meta")).toBe(`{\n     "uuid": "${uuid}",\n     "network_config": { "content_path": "/content/0000" }\n}\n`);
    // citype wins over ostype; linux defaults to nocloud
    await createVm(api, 471, { citype: "configdrive2", ipconfig0: "ip=dhcp,ip6=auto" });
    expect(await dump(471, "network")).toMatch(/auto eth0\niface eth0 inet dhcp\niface eth0 inet6 auto\n$/);
    await createVm(api, 472, { ostype: "win10", citype: "nocloud", ipconfig0: "ip=dhcp" });
    expect(await dump(472, "network")).toMatch(/^version: 1\n/);
    expect(await dump(472, "meta")).toMatch(/^instance-id: [0-9a-f]{40}\n$/);
  });

  test("a configdrive2 guest takes its addresses from the ENI data at boot (guest model)", async () => {
    await createVm(api, 473, { ostype: "win10", ipconfig0: "ip=10.0.0.8/24,gw=10.0.0.1" });
    const power = await call(api.s, "POST", "/vms/473/power", { prefix: "/_sim", token: api.s.rootToken, json: { action: "start", agentReady: true } });
    expect(power.status).toBe(200);
    const ifs = (await api.ok("GET", "/nodes/pve1/qemu/473/agent/network-get-interfaces")).result;
    const v4 = ifs.flatMap((i: any) => (i["ip-addresses"] ?? []).filter((a: any) => a["ip-address-type"] === "ipv4").map((a: any) => `${a["ip-address"]}/${a.prefix}`));
    expect(v4).toContain("10.0.0.8/24");
  });
});

describe("§8 stop", () => {
  let vt: Api;
  beforeAll(async () => {
    vt = await startApi({ seed: 92, virtualTime: true, cluster: { ssh: false } });
    await createVm(vt, 480, { acpi: 0, agent: "0" });
  });
  afterAll(() => vt.stop());

  test("stop timeout=N: after N one-second polls (default 60) a warning and SIGTERM; timeout 0 always warns (QemuServer.pm _do_vm_stop)", async () => {
    await vt.task("POST", "/nodes/pve1/qemu/480/status/start");
    const quick = await vt.task("POST", "/nodes/pve1/qemu/480/status/stop");
    expect(quick.exitstatus).toBe("OK");
    await vt.task("POST", "/nodes/pve1/qemu/480/status/start");
    const zero = await vt.task("POST", "/nodes/pve1/qemu/480/status/stop", { timeout: 0 });
    expect(zero.exitstatus).toBe("WARNINGS: 1");
    expect(await vt.log("pve1", zero.upid)).toContain("WARN: VM still running - terminating now with SIGTERM");
    expect((await vt.ok("GET", "/nodes/pve1/qemu/480/status/current")).status).toBe("stopped");
  });

  test("overrule-shutdown=1 aborts the VM's running qmshutdown tasks and logs them (vm_stop, GUEST abort_guest_tasks)", async () => {
    await vt.task("POST", "/nodes/pve1/qemu/480/status/start");
    // a guest without ACPI ignores the shutdown: the task waits its 600 s holding the config lock
    const shutdown = await vt.ok("POST", "/nodes/pve1/qemu/480/status/shutdown", { timeout: 600 });
    await vt.s.sim.virtualClock().advance(5_000);
    const stop = await vt.task("POST", "/nodes/pve1/qemu/480/status/stop", { "overrule-shutdown": 1 });
    expect(stop.exitstatus).toBe("OK");
    expect(await vt.log("pve1", stop.upid)).toContain(`overruled qmshutdown tasks: ${shutdown}`);
    const sd = await vt.waitTask("pve1", shutdown);
    expect(sd.exitstatus).toBe("received interrupt");
    expect((await vt.ok("GET", "/nodes/pve1/qemu/480/status/current")).status).toBe("stopped");
    // nothing to overrule: no line
    await vt.task("POST", "/nodes/pve1/qemu/480/status/start");
    const plain = await vt.task("POST", "/nodes/pve1/qemu/480/status/stop", { "overrule-shutdown": 1 });
    expect((await vt.log("pve1", plain.upid)).join("\n")).not.toContain("overruled");
  });
});
