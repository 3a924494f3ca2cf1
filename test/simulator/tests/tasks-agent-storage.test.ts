// Tasks (UPID, status fields, log, unknown upid, stop), guest agent (delay, errors) and
// storage (status, download-url failures, content listing, storage full).
import { Api, UPID_RE, createVm, startApi } from "./cluster-helpers";

describe("tasks", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 4 });
    await createVm(api, 100);
  });
  afterAll(() => api.stop());

  test("status fields, log, list, unknown upid", async () => {
    const upid = await api.ok("POST", "/nodes/pve1/qemu/100/status/start");
    expect(upid).toMatch(UPID_RE);
    const st = await api.waitTask("pve1", upid);
    expect(Object.keys(st).sort()).toEqual(["exitstatus", "id", "node", "pid", "pstart", "starttime", "status", "tokenid", "type", "upid", "user"]);
    expect(st).toMatchObject({ upid, node: "pve1", type: "qmstart", id: "100", user: "root@pam", status: "stopped", exitstatus: "OK" });
    const log = await api.req("GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`, { start: 0, limit: 50 });
    expect(log.body.total).toBeGreaterThan(0);
    expect(log.body.data[log.body.data.length - 1]).toEqual({ n: log.body.total, t: "TASK OK" });
    const list = await api.req("GET", "/nodes/pve1/tasks", { typefilter: "qmstart" });
    expect(list.body.data[0]).toMatchObject({ upid, status: "OK", type: "qmstart" });
    const bogus = upid.replace(/:qmstart:/, ":qmstop:");
    const r = await api.req("GET", `/nodes/pve1/tasks/${encodeURIComponent(bogus)}/status`);
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ upid: "no such task" });
  });

  test("a token's task carries the token id in the UPID and tokenid in status", async () => {
    const upid = await api.ok("POST", "/nodes/pve1/qemu/100/status/stop");
    const tokenUser = api.s.rootToken.split("=")[0];
    expect(upid.endsWith(`:${tokenUser}:`)).toBe(true);
    const st = await api.waitTask("pve1", upid);
    expect(st.user).toBe("root@pam");
    expect(st.tokenid).toBe(tokenUser.split("!")[1]);
  });
});

describe("guest agent", () => {
  test("errors before the boot delay, interfaces after", async () => {
    const api = await startApi({ seed: 8, timeFactor: 0.01 });
    try {
      await createVm(api, 100);
      await createVm(api, 101, { agent: "0" });
      await api.ok("PUT", "/nodes/pve1/qemu/101/config", { delete: "agent" });
      let r = await api.req("GET", "/nodes/pve1/qemu/101/agent/network-get-interfaces");
      expect(r.reason).toBe("No QEMU guest agent configured");
      r = await api.req("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces");
      expect(r.reason).toBe("VM 100 is not running");
      expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
      r = await api.req("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces");
      expect([r.status, r.reason]).toEqual([500, "QEMU guest agent is not running"]);
      expect((await api.ok("GET", "/nodes/pve1/qemu/100/status/current")).agent).toBe(1);
      await new Promise((res) => setTimeout(res, 120)); // 8000 ms * 0.01
      const data = await api.ok("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces");
      const mac = (await api.ok("GET", "/nodes/pve1/qemu/100/config")).net0.split(",")[0].split("=")[1].toLowerCase();
      expect(data.result[0].name).toBe("lo");
      // no ipconfig0: PVE's network-config lists no NIC, cloud-init neither renames nor configures it
      expect(data.result[1]).toMatchObject({ name: "ens18", "hardware-address": mac });
      expect(data.result[1]["ip-addresses"].map((a: any) => a["ip-address-type"])).toEqual(["ipv6"]);
    } finally {
      await api.stop();
    }
  });
});

describe("the guest sees cloud-init data at boot (guest.ts)", () => {
  const ifaces = async (api: Api, vmid: number) => (await api.ok("GET", `/nodes/pve1/qemu/${vmid}/agent/network-get-interfaces`)).result.slice(1);
  const v4 = (i: any) => i["ip-addresses"].filter((a: any) => a["ip-address-type"] === "ipv4").map((a: any) => a["ip-address"]);

  test("a NIC cloud-init configures is renamed eth<N> (found by MAC); a change while running is seen only after the next start", async () => {
    const api = await startApi({ seed: 9 });
    try {
      await createVm(api, 100, { ipconfig0: "ip=dhcp", net1: "virtio,bridge=vmbr0" });
      expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
      await api.admin("POST", "/vms/100/power", { action: "start", agentReady: true }); // skip the boot delay
      let nics = await ifaces(api, 100);
      const conf = await api.ok("GET", "/nodes/pve1/qemu/100/config");
      const mac = (k: string) => conf[k].split(",")[0].split("=")[1].toLowerCase();
      // net0 is listed (ipconfig0) and renamed; net1 is not listed: udev name, no address
      expect(nics.map((i: any) => [i.name, i["hardware-address"]])).toEqual([["eth0", mac("net0")], ["ens19", mac("net1")]]);
      expect(v4(nics[0])).toEqual(["10.16.0.100"]);
      expect(v4(nics[1])).toEqual([]);
      // cloud-init keys are fast-plug: written at once, never pending, but the guest read its data at boot
      await api.ok("PUT", "/nodes/pve1/qemu/100/config", { ipconfig0: "ip=192.0.2.10/24,gw=192.0.2.1" });
      expect(await api.ok("GET", "/nodes/pve1/qemu/100/pending")).toContainEqual({ key: "ipconfig0", value: "ip=192.0.2.10/24,gw=192.0.2.1" });
      expect(v4((await ifaces(api, 100))[0])).toEqual(["10.16.0.100"]);
      expect((await api.task("POST", "/nodes/pve1/qemu/100/status/stop")).exitstatus).toBe("OK");
      expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
      await api.admin("POST", "/vms/100/power", { action: "start", agentReady: true }); // skip the boot delay
      nics = await ifaces(api, 100);
      expect(nics[0].name).toBe("eth0");
      expect(v4(nics[0])).toEqual(["192.0.2.10"]);
    } finally {
      await api.stop();
    }
  });

  test("the agent answers only if the guest has it: image, or cloud-init installs and starts it", async () => {
    const api = await startApi({ seed: 10, timeFactor: 0.001 });
    try {
      const agentOf = async (vmid: number) => (await api.admin("GET", `/vms/${vmid}`)).guest.agent as string;
      const image = async (file: string) => {
        await api.admin("PUT", "/nodes/pve1/files", { path: `/var/lib/vz/import/${file}`, content: "qcow2" });
        return `local-lvm:0,import-from=local:import/${file}`;
      };
      // an image that ships no agent (Debian genericcloud): never answers
      await createVm(api, 100, { ipconfig0: "ip=dhcp", scsi0: await image("debian-12-genericcloud-amd64.qcow2") });
      expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
      expect(await agentOf(100)).toBe("image debian-12-genericcloud-amd64.qcow2 ships no qemu-guest-agent");
      await new Promise((res) => setTimeout(res, 100));
      const r = await api.req("GET", "/nodes/pve1/qemu/100/agent/network-get-interfaces");
      expect([r.status, r.reason]).toEqual([500, "QEMU guest agent is not running"]);
      // an image that ships it (Fedora Cloud)
      await createVm(api, 101, { ipconfig0: "ip=dhcp", scsi0: await image("Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2") });
      expect((await api.task("POST", "/nodes/pve1/qemu/101/status/start")).exitstatus).toBe("OK");
      expect(await agentOf(101)).toMatch(/ships qemu-guest-agent$/);
      // a clone inherits its template's image; user-data that installs and starts the agent
      await createVm(api, 9000, { scsi0: await image("debian-12-genericcloud-amd64.qcow2") }, true);
      const snippet = async (name: string, text: string) => {
        await api.admin("PUT", "/nodes/pve1/files", { path: `/var/lib/vz/snippets/${name}`, content: text });
        return `user=local:snippets/${name}`;
      };
      const installs = await snippet("installs.yaml", "#cloud-config\npackages: [qemu-guest-agent]\n");
      const starts = await snippet("starts.yaml", "#cloud-config\npackages:\n  - qemu-guest-agent\nruncmd:\n  - [systemctl, start, qemu-guest-agent]\n");
      for (const [vmid, cicustom] of [[102, starts], [103, installs]] as const) {
        expect((await api.task("POST", "/nodes/pve1/qemu/9000/clone", { newid: vmid })).exitstatus).toBe("OK");
        await api.ok("PUT", `/nodes/pve1/qemu/${vmid}/config`, { cicustom, ipconfig0: "ip=dhcp" });
        expect((await api.task("POST", `/nodes/pve1/qemu/${vmid}/status/start`)).exitstatus).toBe("OK");
      }
      expect(await agentOf(102)).toBe("cloud-init installs and starts qemu-guest-agent (user-data)");
      // Debian's unit is static and udev-started: installed at runtime, it runs from the next boot on
      expect(await agentOf(103)).toBe("cloud-init installs qemu-guest-agent but nothing starts it: it runs from the next boot");
      expect((await api.task("POST", "/nodes/pve1/qemu/103/status/stop")).exitstatus).toBe("OK");
      expect((await api.task("POST", "/nodes/pve1/qemu/103/status/start")).exitstatus).toBe("OK");
      expect(await agentOf(103)).toBe("qemu-guest-agent installed at an earlier boot");
    } finally {
      await api.stop();
    }
  });
});

describe("storage", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 6, cluster: { sharedStorage: true } });
  });
  afterAll(() => api.stop());

  test("node storage list and status", async () => {
    const list = await api.ok("GET", "/nodes/pve1/storage", { content: "images" });
    expect(list.map((s: any) => s.storage).sort()).toEqual(["local-lvm", "shared-nfs"]);
    const st = await api.ok("GET", "/nodes/pve1/storage/local/status");
    expect(st).toMatchObject({ type: "dir", active: 1, enabled: 1, shared: 0, content: "backup,import,iso,snippets,vztmpl" });
  });

  test("download-url: schema rejects snippets, 404 and checksum mismatch fail the task", async () => {
    let r = await api.req("POST", "/nodes/pve1/storage/local/download-url", { url: "https://x/a.yaml", content: "snippets", filename: "a.yaml" });
    expect(r.status).toBe(400);
    expect(r.body.errors.content).toBe("value 'snippets' does not have a value in the enumeration 'iso, vztmpl, import'");
    r = await api.req("POST", "/nodes/pve1/storage/local/download-url", { url: "https://x/a.txt", content: "iso", filename: "a.txt" });
    expect(r.body.errors).toEqual({ filename: "wrong file extension" });
    r = await api.req("POST", "/nodes/pve1/storage/local-lvm/download-url", { url: "https://x/a.iso", content: "iso", filename: "a.iso" });
    expect(r.reason).toBe("can't upload to storage type 'lvmthin', not a file based storage!");
    let st = await api.task("POST", "/nodes/pve1/storage/local/download-url", { url: "https://x/404/a.iso", content: "iso", filename: "a.iso" });
    // wget ends with `ERROR 404: Not Found.` and a blank line: run_command reports the exit code
    expect(st.exitstatus).toBe("download failed: exit code 8");
    st = await api.task("POST", "/nodes/pve1/storage/local/download-url", { url: "https://x/a.iso", content: "iso", filename: "a.iso", checksum: "00", "checksum-algorithm": "sha256" });
    expect(st.exitstatus).toMatch(/^checksum mismatch: got '[0-9a-f]{64}' != expect '00'$/);
    st = await api.task("POST", "/nodes/pve1/storage/local/download-url", { url: "https://x/a.iso", content: "iso", filename: "a.iso" });
    expect(st.type).toBe("download");
    expect(await api.ok("GET", "/nodes/pve1/storage/local/content", { content: "iso" })).toEqual([expect.objectContaining({ volid: "local:iso/a.iso", format: "iso", content: "iso" })]);
  });

  test("a full storage fails disk allocation in the task", async () => {
    api.s.sim.ext.cluster.setStorageFull("local-lvm", true);
    const st = await api.task("POST", "/nodes/pve1/qemu", { vmid: 100, scsi0: "local-lvm:10" });
    expect(st.exitstatus).toMatch(/^unable to create VM 100 - lvcreate .* Insufficient free space/);
  });
});
