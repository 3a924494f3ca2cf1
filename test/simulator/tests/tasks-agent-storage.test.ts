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
      expect(data.result[1]).toMatchObject({ name: "ens18", "hardware-address": mac });
      expect(data.result[1]["ip-addresses"][0]).toEqual({ "ip-address-type": "ipv4", "ip-address": "10.16.0.100", prefix: 16 });
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
    expect(r.reason).toBe("storage 'local-lvm' is not configured for content-type 'iso'");
    let st = await api.task("POST", "/nodes/pve1/storage/local/download-url", { url: "https://x/404/a.iso", content: "iso", filename: "a.iso" });
    expect(st.exitstatus).toBe("download failed: 404 Not Found");
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
