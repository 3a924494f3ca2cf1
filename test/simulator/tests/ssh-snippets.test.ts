// Per-node SSH/SFTP (real ssh2 client) and snippets: write/rename/stat/remove, host key
// stability, wrong key rejected, storage content listing, start failing on a missing snippet.
import { Client } from "ssh2";
import { generateEd25519KeyPair } from "../../helpers/ssh-keys";
import { Api, createVm, startApi } from "./cluster-helpers";
import { hostKeyFor } from "../ssh";
import * as crypto from "crypto";

const good = generateEd25519KeyPair();
const bad = generateEd25519KeyPair();

function connect(port: number, privateKey: string, username = "root"): Promise<{ client: Client; fp: string }> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let fp = "";
    client.on("ready", () => resolve({ client, fp }));
    client.on("error", reject);
    client.connect({
      host: "127.0.0.1", port, username, privateKey,
      hostVerifier: (key: Buffer) => {
        fp = "SHA256:" + crypto.createHash("sha256").update(key).digest("base64").replace(/=+$/, "");
        return true;
      },
    });
  });
}

function sftpOf(client: Client): Promise<any> {
  return new Promise((res, rej) => client.sftp((e, s) => (e ? rej(e) : res(s))));
}
const p = <T>(fn: (cb: (e: any, r?: T) => void) => void) => new Promise<T>((res, rej) => fn((e, r) => (e ? rej(e) : res(r as T))));

let api: Api;
beforeAll(async () => {
  api = await startApi({ seed: 9, cluster: { sshUsers: { root: { keys: [good.public] }, deploy: { keys: [good.public] } } } });
});
afterAll(() => api.stop());

test("host key fingerprint is stable per seed and reported by startSimulator", async () => {
  const n = api.s.nodes[0];
  expect(n.hostKeyFingerprint).toBe(hostKeyFor(9, "pve1").fingerprint);
  expect(n.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  expect(api.s.nodes[1].hostKeyFingerprint).not.toBe(n.hostKeyFingerprint);
  const { client, fp } = await connect(n.sshPort, good.private);
  expect(fp).toBe(n.hostKeyFingerprint);
  client.end();
});

test("a wrong key is rejected", async () => {
  await expect(connect(api.s.nodes[0].sshPort, bad.private)).rejects.toThrow(/authentication/i);
});

test("SFTP write, posix-rename over an existing file, stat, chmod, readdir, remove; listed as a snippet", async () => {
  const { client } = await connect(api.s.nodes[0].sshPort, good.private);
  const sftp = await sftpOf(client);
  const dir = "/var/lib/vz/snippets";
  await p((cb) => sftp.writeFile(`${dir}/.u.yaml.tmp`, "#cloud-config\nhostname: a\n", cb));
  await p((cb) => sftp.writeFile(`${dir}/user.yaml`, "old", cb));
  await expect(p((cb) => sftp.rename(`${dir}/.u.yaml.tmp`, `${dir}/user.yaml`, cb))).rejects.toThrow();
  await p((cb) => sftp.ext_openssh_rename(`${dir}/.u.yaml.tmp`, `${dir}/user.yaml`, cb));
  await p((cb) => sftp.chmod(`${dir}/user.yaml`, 0o640, cb));
  const st: any = await p((cb) => sftp.stat(`${dir}/user.yaml`, cb));
  expect(st.mode & 0o777).toBe(0o640);
  expect(st.size).toBe(26);
  const names: any = await p((cb) => sftp.readdir(dir, cb));
  expect(names.map((x: any) => x.filename)).toEqual(["user.yaml"]);
  const content = await api.ok("GET", "/nodes/pve1/storage/local/content", { content: "snippets" });
  expect(content).toEqual([expect.objectContaining({ volid: "local:snippets/user.yaml", content: "snippets", format: "snippet", size: 26 })]);
  expect(await api.ok("GET", "/nodes/pve2/storage/local/content", { content: "snippets" })).toEqual([]);
  await expect(p((cb) => sftp.stat("/../../../etc/passwd", cb))).rejects.toThrow();
  const buf: any = await p((cb) => sftp.readFile(`${dir}/user.yaml`, cb));
  expect(buf.toString()).toContain("hostname: a");
  client.end();
});

test("a non-root user cannot write to the snippets dir", async () => {
  const { client } = await connect(api.s.nodes[0].sshPort, good.private, "deploy");
  const sftp = await sftpOf(client);
  await expect(p((cb) => sftp.writeFile("/var/lib/vz/snippets/x.yaml", "x", cb))).rejects.toThrow(/Permission denied/);
  await p((cb) => sftp.writeFile("/tmp/x.yaml", "x", cb));
  client.end();
});

test("start fails when cicustom names a snippet missing on the node; works once present", async () => {
  await createVm(api, 100, { cicustom: "user=local:snippets/user.yaml" });
  expect((await api.task("POST", "/nodes/pve1/qemu/100/migrate", { target: "pve2" })).exitstatus).toBe("OK");
  const st = await api.task("POST", "/nodes/pve2/qemu/100/status/start");
  expect(st.exitstatus).toBe("volume 'local:snippets/user.yaml' does not exist");
  const { client } = await connect(api.s.nodes[1].sshPort, good.private);
  const sftp = await sftpOf(client);
  await p((cb) => sftp.writeFile("/var/lib/vz/snippets/user.yaml", "#cloud-config\n", cb));
  client.end();
  expect((await api.task("POST", "/nodes/pve2/qemu/100/status/start")).exitstatus).toBe("OK");
  // the booted guest read the snippet; the dump shows PVE's own user-data, cicustom or not (dump_cloudinit_config)
  const dump = await api.ok("GET", "/nodes/pve2/qemu/100/cloudinit/dump", { type: "user" });
  expect(dump).toMatch(/^#cloud-config\nhostname: vm100\n/);
});
