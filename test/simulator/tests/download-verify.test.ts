// download-url: wget's failures and the content checks of `assert_file_validity` (pve-storage
// API2/Storage/Status.pm download_url, Storage.pm assert_iso_content, Plugin.pm file_size_info;
// pve-common Tools.pm download_file_from_url, Cmd.pm run_command). What a URL serves is
// described by remote.ts (from its file name, or set through `PUT /_sim/remote`).
import { Api, startApi } from "./cluster-helpers";

const DL = "/nodes/pve1/storage/local/download-url";

describe("download-url content verification", () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ seed: 61 });
  });
  afterAll(() => api.stop());

  const imports = async () => (await api.ok("GET", "/nodes/pve1/storage/local/content", { content: "import" })).map((v: any) => v.volid);
  const tmp = (dir: string, name: string, st: { pid: number }) => `/var/lib/vz/${dir}/${name}.tmp_dwnl.${st.pid}`;

  test("an import .qcow2 that is not a qcow2 fails qemu-img: `failed to verify file: qemu-img: Could not open '<tmp>': Image is not in qcow2 format`", async () => {
    const st = await api.task("POST", DL, { url: "https://img.example/disk.raw", content: "import", filename: "d1.qcow2" });
    expect(st.exitstatus).toBe(`failed to verify file: qemu-img: Could not open '${tmp("import", "d1.qcow2", st)}': Image is not in qcow2 format`);
    // run_qemu_img_json warns the failed command before dying with qemu-img's stderr
    expect(await api.log("pve1", st.upid)).toContain(`command '/usr/bin/qemu-img info --output=json ${tmp("import", "d1.qcow2", st)} -f qcow2' failed: exit code 1`);
    expect(await imports()).not.toContain("local:import/d1.qcow2");
    // a cloud image named .img is a qcow2 (Ubuntu's *-cloudimg-*.img), and passes
    expect((await api.task("POST", DL, { url: "https://img.example/noble-server-cloudimg-amd64.img", content: "import", filename: "d1.qcow2" })).exitstatus).toBe("OK");
    expect(await imports()).toContain("local:import/d1.qcow2");
  });

  test("vmdk: `invalid VMDK image descriptor`; `.raw` opens anything (a qcow2 saved as .raw passes)", async () => {
    let st = await api.task("POST", DL, { url: "https://img.example/debian.iso", content: "import", filename: "d2.vmdk" });
    expect(st.exitstatus).toBe(`failed to verify file: qemu-img: Could not open '${tmp("import", "d2.vmdk", st)}': invalid VMDK image descriptor`);
    st = await api.task("POST", DL, { url: "https://img.example/debian-12-genericcloud-amd64.qcow2", content: "import", filename: "d2.raw" });
    expect(st.exitstatus).toBe("OK");
    st = await api.task("POST", DL, { url: "https://img.example/appliance.vmdk", content: "import", filename: "d2.vmdk" });
    expect(st.exitstatus).toBe("OK");
  });

  test("untrusted images: a backing file, an external data file, several vmdk extents are refused; an ISO with a backing file too", async () => {
    const url = "https://img.example/layered.qcow2";
    await api.admin("PUT", "/remote", { url, backingFile: "base.qcow2" });
    let st = await api.task("POST", DL, { url, content: "import", filename: "l.qcow2" });
    expect(st.exitstatus).toBe(`failed to verify file: backing file not allowed for untrusted image '${tmp("import", "l.qcow2", st)}'!`);
    // assert_iso_content: qemu-img auto-detects the qcow2 and sees the backing file
    st = await api.task("POST", DL, { url, content: "iso", filename: "l.img" });
    expect(st.exitstatus).toBe(`failed to verify file: backing file not allowed for untrusted image '${tmp("template/iso", "l.img", st)}'!`);
    // opened as raw, the same bytes have no backing file
    expect((await api.task("POST", DL, { url, content: "import", filename: "l.raw" })).exitstatus).toBe("OK");
    await api.admin("PUT", "/remote", { url: "https://img.example/df.qcow2", dataFile: "data.raw" });
    st = await api.task("POST", DL, { url: "https://img.example/df.qcow2", content: "import", filename: "df.qcow2" });
    expect(st.exitstatus).toBe(`failed to verify file: ${tmp("import", "df.qcow2", st)}: 'data-file' references are not allowed!`);
    await api.admin("PUT", "/remote", { url: "https://img.example/split.vmdk", extents: 2 });
    st = await api.task("POST", DL, { url: "https://img.example/split.vmdk", content: "import", filename: "split.vmdk" });
    expect(st.exitstatus).toBe(`failed to verify file: ${tmp("import", "split.vmdk", st)}: multiple children or extents are not allowed!`);
    // a plain qcow2 is fine as an ISO-content file (qemu-img only looks for backing files)
    expect((await api.task("POST", DL, { url: "https://img.example/plain.qcow2", content: "iso", filename: "plain.img" })).exitstatus).toBe("OK");
  });

  test("OVA: `tar -t` must list an .ovf: not a tar fails with tar's exit code, a tar without .ovf is refused", async () => {
    let st = await api.task("POST", DL, { url: "https://img.example/disk.qcow2", content: "import", filename: "a.ova" });
    expect(st.exitstatus).toBe(`failed to verify file: command 'tar -t -f ${tmp("import", "a.ova", st)}' failed: exit code 2`);
    expect(await api.log("pve1", st.upid)).toContain("tar: This does not look like a tar archive");
    st = await api.task("POST", DL, { url: "https://img.example/rootfs.tar.gz", content: "import", filename: "a.ova" });
    expect(st.exitstatus).toBe("failed to verify file: ova archive has no .ovf file inside");
    expect((await api.task("POST", DL, { url: "https://img.example/appliance.ova", content: "import", filename: "a.ova" })).exitstatus).toBe("OK");
    expect(await imports()).toContain("local:import/a.ova");
  });

  test("the checksum is checked before the content; the image's virtual size is what the import gets", async () => {
    let st = await api.task("POST", DL, { url: "https://img.example/x.raw", content: "import", filename: "c.qcow2", checksum: "00", "checksum-algorithm": "sha256" });
    expect(st.exitstatus).toMatch(/^checksum mismatch: got '[0-9a-f]{64}' != expect '00'$/);
    await api.admin("PUT", "/remote", { url: "https://img.example/big.qcow2", virtualSize: 3 * 1024 ** 3 });
    st = await api.task("POST", DL, { url: "https://img.example/big.qcow2", content: "import", filename: "big.qcow2" });
    expect(st.exitstatus).toBe("OK");
    expect((await api.task("POST", "/nodes/pve1/qemu", { vmid: 700, scsi0: "local-lvm:0,import-from=local:import/big.qcow2" })).exitstatus).toBe("OK");
    expect((await api.ok("GET", "/nodes/pve1/qemu/700/config")).scsi0).toBe("local-lvm:vm-700-disk-0,size=3G");
  });

  test("compression (iso only): the decompressed file is checked", async () => {
    const st = await api.task("POST", DL, { url: "https://img.example/installer.iso.zst", content: "iso", filename: "installer.iso", compression: "zst" });
    expect(st.exitstatus).toBe("OK");
    expect(await api.log("pve1", st.upid)).toContain(`decompressing ${tmp("template/iso", "installer.iso", st)} to /var/lib/vz/template/iso/installer.iso.tmp_dcom.${st.pid}`);
    // a compressed layered qcow2: raw to qemu-img as it is, refused once decompressed
    const url = "https://img.example/layered.img.zst";
    await api.admin("PUT", "/remote", { url, backingFile: "base.img" });
    expect((await api.task("POST", DL, { url, content: "iso", filename: "z1.img" })).exitstatus).toBe("OK");
    const z = await api.task("POST", DL, { url, content: "iso", filename: "z2.img", compression: "zst" });
    expect(z.exitstatus).toBe(`failed to verify file: backing file not allowed for untrusted image '/var/lib/vz/template/iso/z2.img.tmp_dcom.${z.pid}'!`);
  });

  test("wget: a 4xx/5xx answer is `download failed: exit code 8` (a 401 its last line); an untrusted certificate fails unless verify-certificates=0", async () => {
    let st = await api.task("POST", DL, { url: "https://img.example/503/a.iso", content: "iso", filename: "w.iso" });
    expect(st.exitstatus).toBe("download failed: exit code 8");
    expect(await api.log("pve1", st.upid)).toEqual(expect.arrayContaining(["HTTP request sent, awaiting response... 503 Service Unavailable"]));
    // a 401: wget's last line is not blank, so it is the error
    st = await api.task("POST", DL, { url: "https://img.example/401/a.iso", content: "iso", filename: "w.iso" });
    expect(st.exitstatus).toBe("download failed: Username/Password Authentication Failed.");

    const url = "https://mirror.lab/isos/w.iso";
    await api.admin("PUT", "/remote", { url, untrustedCertificate: true });
    st = await api.task("POST", DL, { url, content: "iso", filename: "w.iso" }); // verify-certificates defaults to 1
    expect(st.exitstatus).toBe("download failed: To connect to mirror.lab insecurely, use `--no-check-certificate'.");
    st = await api.task("POST", DL, { url, content: "iso", filename: "w.iso", "verify-certificates": 1 });
    expect(st.exitstatus).toBe("download failed: To connect to mirror.lab insecurely, use `--no-check-certificate'.");
    st = await api.task("POST", DL, { url, content: "iso", filename: "w.iso", "verify-certificates": 0 });
    expect(st.exitstatus).toBe("OK");
    // plain http has no certificate to verify
    await api.admin("PUT", "/remote", { url: "http://mirror.lab/isos/h.iso", untrustedCertificate: true });
    expect((await api.task("POST", DL, { url: "http://mirror.lab/isos/h.iso", content: "iso", filename: "h.iso" })).exitstatus).toBe("OK");
  });
});
