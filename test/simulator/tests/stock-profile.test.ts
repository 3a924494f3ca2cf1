// A simulator starts as a fresh install of its PVE version does (pve-installer
// Proxmox/Install/StorageConfig.pm): `local` without snippets content (on every layout), with
// `import` only on 9.x (proxmox-installer 9.0.7); `local-lvm` for images and containers.
import { startSimulator } from "../index";
import { call } from "./core-http";

describe.each([
  ["8.4", "backup,iso,vztmpl"],
  ["9.1", "backup,import,iso,vztmpl"],
] as const)("stock storages of PVE %s", (pveVersion, localContent) => {
  test("local holds no snippets; a snippet volume cannot be listed there until an admin enables it", async () => {
    const s = await startSimulator({ seed: 4, pveVersion, cluster: { ssh: false } });
    try {
      const get = async (p: string, query: Record<string, string> = {}) => (await call(s, "GET", p, { token: s.rootToken, query })).body.data;
      expect((await get("/storage/local")).content.split(",").sort().join(",")).toBe(localContent);
      expect((await get("/storage/local-lvm")).content.split(",").sort().join(",")).toBe("images,rootdir");
      // a file placed in the directory by hand is not listed as a snippet while the content is off
      const put = await call(s, "PUT", "/nodes/pve1/files", { prefix: "/_sim", token: s.rootToken, json: { path: "/var/lib/vz/snippets/u.yaml", content: "#cloud-config\n" } });
      expect(put.status).toBe(200);
      const listed = async () => ((await get("/nodes/pve1/storage/local/content")) as Array<{ volid: string }>).map((v) => v.volid);
      expect(await listed()).not.toContain("local:snippets/u.yaml");
      // what `pvesm set local --content ...,snippets` does, through the API
      const set = await call(s, "PUT", "/storage/local", { token: s.rootToken, form: { content: `${localContent},snippets` } });
      expect(set.status).toBe(200);
      expect((await get("/storage/local")).content.split(",")).toContain("snippets");
      expect(await listed()).toContain("local:snippets/u.yaml");
    } finally {
      await s.stop();
    }
  });
});
