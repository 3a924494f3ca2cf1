// The guest agent endpoints (qemu-server API2/Qemu/Agent.pm `register_command`, file-read,
// file-write; QemuServer/Agent.pm `assert_agent_available`, `agent_cmd`, `check_agent_error`;
// QMPClient.pm `cmd`): a generic command returns QGA's answer as `{result}`, a QGA error too
// (200, `result.error`), while the agent_cmd endpoints die `Agent error: <desc>`.
import { Api, createVm, startApi, tokenWith } from "./cluster-helpers";

const A = (vmid: number, cmd: string) => `/nodes/pve1/qemu/${vmid}/agent/${cmd}`;

describe("guest agent commands", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 71 });
    // a blank disk stands for a prepared Debian 12 image with cloud-init and the agent
    await createVm(api, 100, { name: "web" });
    expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
  });
  afterAll(() => api.stop());

  test("ping, info, get-osinfo, get-host-name, get-fsinfo, get-vcpus: QGA's answer wrapped as {result}", async () => {
    expect(await api.ok("POST", A(100, "ping"))).toEqual({ result: {} });
    const info = (await api.ok("GET", A(100, "info"))).result;
    expect(info.supported_command).toEqual(expect.arrayContaining([
      { name: "guest-ping", enabled: true, "success-response": true },
      { name: "guest-shutdown", enabled: true, "success-response": false },
    ]));
    expect((await api.ok("GET", A(100, "get-osinfo"))).result).toMatchObject({
      id: "debian", name: "Debian GNU/Linux", "pretty-name": "Debian GNU/Linux 12 (bookworm)", "version-id": "12", machine: "x86_64",
    });
    // cloud-init set the host name from the user-data PVE generated (the VM's name)
    expect(await api.ok("GET", A(100, "get-host-name"))).toEqual({ result: { "host-name": "web" } });
    const fs = (await api.ok("GET", A(100, "get-fsinfo"))).result;
    expect(fs).toEqual([expect.objectContaining({ mountpoint: "/", type: "ext4", name: "sda1", disk: [expect.objectContaining({ "bus-type": "scsi", dev: "/dev/sda1" })] })]);
    expect(fs[0]["total-bytes"]).toBeLessThanOrEqual(10 * 1024 ** 3);
    expect((await api.ok("GET", A(100, "get-vcpus"))).result).toHaveLength(2);
    expect(await api.ok("POST", A(100, "fsfreeze-status"))).toEqual({ result: "thawed" });
    // the old POST {vmid}/agent endpoint takes the command as a parameter
    expect(await api.ok("POST", "/nodes/pve1/qemu/100/agent", { command: "get-host-name" })).toEqual({ result: { "host-name": "web" } });
    expect((await api.ok("GET", "/nodes/pve1/qemu/100/agent")).map((e: { name: string }) => e.name)).toEqual(expect.arrayContaining(["exec", "file-read", "get-osinfo", "ping", "set-user-password"]));
  });

  test("frozen file systems: other commands answer 200 with result.error (CommandNotFound, `the agent is in frozen state`); agent_cmd endpoints die `Agent error: …`", async () => {
    expect(await api.ok("POST", A(100, "fsfreeze-freeze"))).toEqual({ result: 1 });
    expect(await api.ok("POST", A(100, "fsfreeze-status"))).toEqual({ result: "frozen" });
    const r = await api.req("GET", A(100, "get-osinfo"));
    expect([r.status, r.body.data]).toEqual([200, { result: { error: { class: "CommandNotFound", desc: "Command guest-get-osinfo has been disabled: the agent is in frozen state" } } }]);
    expect((await api.ok("GET", A(100, "network-get-interfaces"))).result.error.desc).toBe("Command guest-network-get-interfaces has been disabled: the agent is in frozen state");
    // a second freeze is not in qemu-ga's freeze allowlist either
    expect((await api.ok("POST", A(100, "fsfreeze-freeze"))).result.error.class).toBe("CommandNotFound");
    expect(await api.ok("POST", A(100, "ping"))).toEqual({ result: {} });
    expect((await api.ok("GET", A(100, "info"))).result.supported_command).toEqual(expect.arrayContaining([{ name: "guest-get-osinfo", enabled: false, "success-response": true }]));
    const f = await api.req("GET", A(100, "file-read"), { file: "/etc/hostname" });
    expect([f.status, f.reason]).toEqual([500, "Agent error: Command guest-file-open has been disabled: the agent is in frozen state"]);
    expect(await api.ok("POST", A(100, "fsfreeze-thaw"))).toEqual({ result: 1 });
    expect(await api.ok("POST", A(100, "fsfreeze-thaw"))).toEqual({ result: 0 });
    expect((await api.ok("GET", A(100, "get-osinfo"))).result.id).toBe("debian");
  });

  test("file-read/file-write (agent_cmd): a missing file is `Agent error: failed to open file '<f>' (mode: 'r'): No such file or directory`", async () => {
    let r = await api.req("GET", A(100, "file-read"), { file: "/etc/nope" });
    expect([r.status, r.reason]).toEqual([500, "Agent error: failed to open file '/etc/nope' (mode: 'r'): No such file or directory"]);
    expect(await api.ok("GET", A(100, "file-read"), { file: "/etc/hostname" })).toEqual({ content: "web\n", "bytes-read": 4 });
    expect(await api.ok("POST", A(100, "file-write"), { file: "/root/note.txt", content: "hello" })).toBeNull();
    expect(await api.ok("GET", A(100, "file-read"), { file: "/root/note.txt", offset: 1, count: 3 })).toEqual({ content: "ell", "bytes-read": 3, truncated: 1 });
    r = await api.req("POST", A(100, "file-write"), { file: "/no/such/dir/x", content: "x" });
    expect([r.status, r.reason]).toEqual([500, "Agent error: failed to open file '/no/such/dir/x' (mode: 'wb'): No such file or directory"]);
  });

  test("the checks before any command: no agent key (`No QEMU guest agent configured`), then `VM <id> is not running`", async () => {
    await api.task("POST", "/nodes/pve1/qemu", { vmid: 102, scsi0: "local-lvm:1" });
    let r = await api.req("GET", A(102, "get-osinfo"));
    expect([r.status, r.reason]).toEqual([500, "No QEMU guest agent configured"]);
    await createVm(api, 103);
    r = await api.req("POST", A(103, "ping"));
    expect([r.status, r.reason]).toEqual([500, "VM 103 is not running"]);
    r = await api.req("GET", A(103, "file-read"), { file: "/etc/hostname" });
    expect([r.status, r.reason]).toEqual([500, "VM 103 is not running"]);
  });

  test("shutdown through the agent: result null, the guest powers off", async () => {
    await createVm(api, 104);
    expect((await api.task("POST", "/nodes/pve1/qemu/104/status/start")).exitstatus).toBe("OK");
    expect(await api.ok("POST", A(104, "shutdown"))).toEqual({ result: null });
    for (let i = 0; i < 100 && (await api.ok("GET", "/nodes/pve1/qemu/104/status/current")).status === "running"; i++) await new Promise((res) => setTimeout(res, 10));
    expect((await api.ok("GET", "/nodes/pve1/qemu/104/status/current")).status).toBe("stopped");
  });

  test("privileges (9.x): Audit reads, FileSystemMgmt freezes, FileRead reads files, PowerMgmt shuts down; Unrestricted does all", async () => {
    const audit = await tokenWith(api, { "/vms/100": "VM.GuestAgent.Audit" });
    expect((await api.req("GET", A(100, "get-osinfo"), {}, audit)).status).toBe(200);
    expect((await api.req("POST", A(100, "fsfreeze-status"), {}, audit)).status).toBe(200);
    let r = await api.req("POST", A(100, "fsfreeze-freeze"), {}, audit);
    expect([r.status, r.reason]).toEqual([403, "Permission check failed (/vms/100, VM.GuestAgent.FileSystemMgmt|VM.GuestAgent.Unrestricted)"]);
    r = await api.req("GET", A(100, "file-read"), { file: "/etc/hostname" }, audit);
    expect(r.status).toBe(403);
    r = await api.req("POST", A(100, "shutdown"), {}, audit);
    expect(r.status).toBe(403);
    const fsm = await tokenWith(api, { "/vms/100": "VM.GuestAgent.FileSystemMgmt" });
    expect((await api.req("POST", A(100, "fstrim"), {}, fsm)).body.data).toEqual({ result: { paths: [{ path: "/", trimmed: 0, minimum: 0 }] } });
    expect((await api.req("GET", A(100, "get-osinfo"), {}, fsm)).status).toBe(403);
    const unrestricted = await tokenWith(api, { "/vms/100": "VM.GuestAgent.Unrestricted" });
    expect((await api.req("GET", A(100, "file-read"), { file: "/etc/hostname" }, unrestricted)).status).toBe(200);
    expect((await api.req("POST", "/nodes/pve1/qemu/100/agent", { command: "ping" }, unrestricted)).status).toBe(200);
    expect((await api.req("POST", "/nodes/pve1/qemu/100/agent", { command: "ping" }, audit)).status).toBe(403);
  });
});

describe("guest agent commands on PVE 8.4", () => {
  test("every agent endpoint needs VM.Monitor; file-read takes only `file`", async () => {
    const api = await startApi({ seed: 72, pveVersion: "8.4", cluster: { ssh: false } });
    try {
      await createVm(api, 100, { name: "old" });
      expect((await api.task("POST", "/nodes/pve1/qemu/100/status/start")).exitstatus).toBe("OK");
      const mon = await tokenWith(api, { "/vms/100": "VM.Monitor" });
      const audit = await tokenWith(api, { "/vms/100": "VM.Audit" });
      expect((await api.req("POST", A(100, "fsfreeze-freeze"), {}, mon)).body.data).toEqual({ result: 1 });
      expect((await api.req("POST", A(100, "fsfreeze-thaw"), {}, mon)).body.data).toEqual({ result: 1 });
      expect((await api.req("GET", A(100, "file-read"), { file: "/etc/hostname" }, mon)).body.data).toMatchObject({ content: "old\n" });
      const r = await api.req("GET", A(100, "get-osinfo"), {}, audit);
      expect([r.status, r.reason]).toEqual([403, "Permission check failed (/vms/100, VM.Monitor)"]);
      expect((await api.req("GET", A(100, "file-read"), { file: "/etc/hostname", count: 2 })).status).toBe(400);
    } finally {
      await api.stop();
    }
  });
});
