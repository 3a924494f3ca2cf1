/**
 * Storage against the simulator: check() with the property named, create/read/update/replace/
 * delete of dir, lvmthin and nfs definitions, drift, import, the refusal to delete a storage
 * that still holds volumes, and a CloudInitSnippet written into a storage this resource made.
 */
import * as fs from "fs";
import { generateEd25519KeyPair } from "../../../helpers/ssh-keys";
import { startSimulator } from "../../../simulator";
import { clusterOf } from "../../../simulator/state/cluster";
import { client, configureForTests } from "../../../../provider/resources/context";
import { storageLifecycle as life, type StorageInputs, type StorageState } from "../../../../provider/resources/storage";
import { cloudInitSnippetLifecycle as snippets, type CloudInitSnippetInputs } from "../../../../provider/resources/cloud-init-snippet";
import { errorOf, replaceLikeEngine } from "../access/sim-helpers";

jest.setTimeout(60_000);

describe("Storage", () => {
  const key = generateEd25519KeyPair({ comment: "storage-test" });
  let sim: Awaited<ReturnType<typeof startSimulator>>;

  beforeAll(async () => {
    sim = await startSimulator({ seed: 31, cluster: { sshUsers: { root: { keys: [key.public] } } } });
    configureForTests({
      endpoint: sim.url,
      apiToken: sim.rootToken,
      caCert: sim.caCert,
      sshUsername: "root",
      sshPrivateKey: key.private,
      sshNodes: JSON.stringify(Object.fromEntries(sim.nodes.map((n) => [n.name, { host: "127.0.0.1", port: n.sshPort }]))),
      sshHostKeys: JSON.stringify(Object.fromEntries(sim.nodes.map((n) => [n.name, n.hostKeyFingerprint]))),
    });
  });
  afterAll(async () => {
    await sim?.stop();
  });

  async function checked(news: Partial<StorageInputs>, olds: Partial<StorageState> = {}): Promise<StorageInputs> {
    const r = await life.check(olds, news as StorageInputs);
    expect(r.failures ?? []).toEqual([]);
    return r.inputs as StorageInputs;
  }
  const failures = async (news: Record<string, unknown>) => ((await life.check({}, news as unknown as StorageInputs)).failures ?? []).map((f) => `${f.property}: ${f.reason}`);

  it("check() names the property for invalid inputs", async () => {
    expect(await failures({ storage: "data", type: "dir", path: "var/data", content: ["images"] })).toEqual(["path: path 'var/data' is not valid: it must be an absolute path"]);
    expect(await failures({ storage: "data", type: "dir", path: "/srv/data", content: ["images", "pictures"] })).toEqual([
      "content[1]: unknown content type 'pictures'; known: images, rootdir, iso, vztmpl, snippets, import, backup",
    ]);
    expect(await failures({ storage: "thin", type: "lvmthin", vgname: "pve", thinpool: "data", content: ["snippets"] })).toEqual([
      "content: a lvmthin storage cannot hold snippets; it holds images, rootdir",
    ]);
    expect((await failures({ storage: "1data", type: "dir", path: "/srv", content: [] }))[0]).toMatch(/^storage: storage '1data' is not valid/);
    expect((await failures({ storage: "data-", type: "dir", path: "/srv", content: [] }))[0]).toMatch(/^storage: /);
    expect(await failures({ storage: "data", type: "zfs", content: [] })).toEqual(["type: type must be one of dir, lvmthin, nfs; got 'zfs'."]);
    expect(await failures({ storage: "data", type: "dir", content: ["iso"], vgname: "pve" })).toEqual(["path: path is required for a dir storage.", "vgname: vgname does not apply to a dir storage."]);
    expect(await failures({ storage: "nas", type: "nfs", content: ["iso"] })).toEqual(["server: server is required for a nfs storage.", "export: export is required for a nfs storage."]);
    expect(await failures({ storage: "data", type: "dir", path: "/srv/data", content: ["iso"], nodes: ["pve1", "pve7"] })).toEqual([
      "nodes[1]: node 'pve7' is not in the cluster (nodes: pve1, pve2, pve3).",
    ]);
  });

  it("creates a dir storage with snippets content that CloudInitSnippet writes to, on the nodes it is on", async () => {
    const inputs = await checked({ storage: "team-data", type: "dir", path: "/srv/team-data", content: ["snippets", "images", "iso"], nodes: ["pve2", "pve1"] });
    const { id, outs } = await life.create(inputs);
    expect(id).toBe("team-data");
    expect(outs).toEqual({ storage: "team-data", type: "dir", path: "/srv/team-data", shared: false, content: ["images", "iso", "snippets"], nodes: ["pve1", "pve2"], enabled: true });
    expect(await life.diff(id, outs, inputs)).toMatchObject({ changes: false });

    const sn = (await snippets.check({}, { storage: "team-data", content: "#cloud-config\n", fileName: "team.yaml" } as CloudInitSnippetInputs)).inputs as CloudInitSnippetInputs;
    const written = await snippets.create(sn);
    expect(written.outs).toMatchObject({ volumeId: "team-data:snippets/team.yaml", nodes: ["pve1", "pve2"], path: "/srv/team-data/snippets/team.yaml" });
    const cluster = clusterOf(sim.sim);
    expect(fs.readFileSync(cluster.hostPath("pve2", "/srv/team-data/snippets/team.yaml"), "utf8")).toBe("#cloud-config\n");
    // PVE lists it as the storage's content
    const listed = await client().storage.content("pve1", "team-data", { content: "snippets" });
    expect(listed.map((e) => e.volid)).toEqual(["team-data:snippets/team.yaml"]);

    // delete refuses while the snippet lives on it, naming it
    await expect(life.delete(id, outs)).rejects.toThrow(
      "storage 'team-data' still holds 2 volumes: team-data:snippets/team.yaml (on pve1), team-data:snippets/team.yaml (on pve2). Remove them first",
    );
    await snippets.delete(written.id, written.outs);
    await life.delete(id, outs);
    expect(await life.read(id, outs)).toMatchObject({ id: "" });
  });

  it("updates content, nodes and enabled in place; path or type changes replace (deleting first when the id stays)", async () => {
    const inputs = await checked({ storage: "upd", type: "dir", path: "/srv/upd", content: ["iso"] });
    const { id, outs } = await life.create(inputs);
    const next = await checked({ storage: "upd", type: "dir", path: "/srv/upd", content: ["iso", "snippets"], nodes: ["pve3"], enabled: false }, outs);
    expect(await life.diff(id, outs, next)).toMatchObject({ changes: true, replaces: [] });
    const { outs: updated } = await life.update(id, outs, next);
    expect(updated).toMatchObject({ content: ["iso", "snippets"], nodes: ["pve3"], enabled: false });
    expect(await client().storage.get("upd")).toMatchObject({ content: "iso,snippets", nodes: "pve3", disable: 1 });
    const back = await checked({ storage: "upd", type: "dir", path: "/srv/upd", content: ["iso"] }, updated);
    const { outs: reverted } = await life.update(id, updated, back);
    expect(reverted.nodes).toBeUndefined();
    expect(reverted.enabled).toBe(true);
    expect(await client().storage.get("upd")).not.toHaveProperty("nodes");

    expect(await life.diff(id, reverted, await checked({ ...back, path: "/srv/other" }))).toMatchObject({ replaces: ["path"], deleteBeforeReplace: true });
    expect(await life.diff(id, reverted, await checked({ storage: "upd", type: "nfs", server: "10.0.0.9", export: "/x", content: ["iso"] }))).toMatchObject({ replaces: expect.arrayContaining(["type", "path", "server", "export"]) });
    expect(await life.diff(id, reverted, await checked({ ...back, storage: "upd2" }))).toMatchObject({ replaces: ["storage"], deleteBeforeReplace: false });
    await life.delete(id, reverted);
  });

  it("reads drift made outside Pulumi, and imports by storage id", async () => {
    const inputs = await checked({ storage: "drifty", type: "dir", path: "/srv/drifty", content: ["iso"] });
    const { id, outs } = await life.create(inputs);
    await client().storage.update("drifty", { content: "iso,backup", disable: 1 });
    const r = await life.read(id, outs);
    expect(r.props).toMatchObject({ content: ["backup", "iso"], enabled: false });
    expect(await life.diff(id, r.props!, inputs)).toMatchObject({ changes: true, replaces: [] });
    const imported = await life.read(id);
    expect(imported.inputs).toEqual({ storage: "drifty", type: "dir", path: "/srv/drifty", shared: false, content: ["backup", "iso"], enabled: false });
    await life.delete(id, outs);
  });

  it("creates lvmthin and nfs storages; removeVolumesOnDelete deletes the volumes it holds", async () => {
    const thin = await life.create(await checked({ storage: "thin2", type: "lvmthin", vgname: "vg2", thinpool: "tp", content: ["images"], removeVolumesOnDelete: true }));
    expect(thin.outs).toEqual({ storage: "thin2", type: "lvmthin", vgname: "vg2", thinpool: "tp", content: ["images"], enabled: true, removeVolumesOnDelete: true });
    const nfsIn = await checked({ storage: "nas", type: "nfs", server: "10.0.0.7", export: "/export/pve", options: "vers=4.2", content: ["images", "snippets"] });
    const nfs = await life.create(nfsIn);
    expect(nfs.outs).toMatchObject({ type: "nfs", path: "/mnt/pve/nas", server: "10.0.0.7", export: "/export/pve", options: "vers=4.2" });
    expect(await life.diff(nfs.id, nfs.outs, nfsIn)).toMatchObject({ changes: false });

    const volid = await client().post<string>("/nodes/pve1/storage/thin2/content", { vmid: 4242, filename: "vm-4242-disk-0", size: "1G" });
    await expect(life.delete(thin.id, { ...thin.outs, removeVolumesOnDelete: false })).rejects.toThrow(`storage 'thin2' still holds 1 volume: ${volid} (on pve1)`);
    await life.delete(thin.id, thin.outs);
    expect((await client().storage.list()).map((s) => s.storage)).not.toContain("thin2");
    await life.delete(nfs.id, nfs.outs);
    await expect(life.delete(nfs.id, nfs.outs)).resolves.toBeUndefined();
  });

  it("shared: true holds one copy that every node sees, listed as one volume, and changes in place", async () => {
    const inputs = await checked({ storage: "shared-dir", type: "dir", path: "/srv/shared", shared: true, content: ["snippets"] });
    const { id, outs } = await life.create(inputs);
    expect(outs).toMatchObject({ shared: true });
    expect(await client().storage.get("shared-dir")).toMatchObject({ shared: 1 });
    expect(await life.diff(id, outs, inputs)).toMatchObject({ changes: false });

    const sn = (await snippets.check({}, { storage: "shared-dir", content: "shared: 1\n", fileName: "s.yaml" } as CloudInitSnippetInputs)).inputs as CloudInitSnippetInputs;
    const written = await snippets.create(sn);
    expect(written.outs.nodes).toEqual(["pve1", "pve2", "pve3"]);
    const cluster = clusterOf(sim.sim);
    for (const n of ["pve1", "pve2", "pve3"]) expect(fs.readFileSync(cluster.hostPath(n, "/srv/shared/snippets/s.yaml"), "utf8")).toBe("shared: 1\n");
    // one volume, not one per node
    await expect(life.delete(id, outs)).rejects.toThrow("storage 'shared-dir' still holds 1 volume: shared-dir:snippets/s.yaml. Remove them first");
    await snippets.delete(written.id, written.outs);

    const local = await checked({ ...inputs, shared: false }, outs);
    expect(await life.diff(id, outs, local)).toMatchObject({ changes: true, replaces: [] });
    const { outs: updated } = await life.update(id, outs, local);
    expect(updated.shared).toBe(false);
    expect((await client().storage.get("shared-dir")).shared ?? 0).toBe(0);
    await life.delete(id, updated);
  });

  it("a change of backing alone (vgname, thinpool, export) replaces, deleting first", async () => {
    const thinIn = await checked({ storage: "thin3", type: "lvmthin", vgname: "vg3", thinpool: "tp", content: ["images"] });
    const thin = await life.create(thinIn);
    for (const change of [{ vgname: "vg4" }, { thinpool: "tp2" }]) {
      expect(await life.diff(thin.id, thin.outs, await checked({ ...thinIn, ...change }, thin.outs))).toMatchObject({ changes: true, replaces: Object.keys(change), deleteBeforeReplace: true });
    }
    const r = await replaceLikeEngine(life, thin.id, thin.outs, { ...thinIn, vgname: "vg4" });
    expect(r.order).toEqual(["delete old", "create new"]);
    expect(await client().storage.get("thin3")).toMatchObject({ type: "lvmthin", vgname: "vg4", thinpool: "tp" });
    await life.delete(r.id, r.outs);

    const nfsIn = await checked({ storage: "nas2", type: "nfs", server: "10.0.0.7", export: "/export/a", content: ["images"] });
    const nfs = await life.create(nfsIn);
    const moved = await replaceLikeEngine(life, nfs.id, nfs.outs, { ...nfsIn, export: "/export/b" });
    expect(moved.diff).toMatchObject({ replaces: ["export"], deleteBeforeReplace: true });
    expect(moved.order).toEqual(["delete old", "create new"]);
    expect(await client().storage.get("nas2")).toMatchObject({ export: "/export/b", server: "10.0.0.7" });
    await life.delete(moved.id, moved.outs);
  });

  it("replaces for real on a path or type change (deleting first) and on an id change (creating first)", async () => {
    const first = await life.create(await checked({ storage: "moving", type: "dir", path: "/srv/a", content: ["iso"] }));
    const moved = await replaceLikeEngine(life, first.id, first.outs, { storage: "moving", type: "dir", path: "/srv/b", content: ["iso"] });
    expect(moved.order).toEqual(["delete old", "create new"]);
    expect(await client().storage.get("moving")).toMatchObject({ path: "/srv/b" });
    const retyped = await replaceLikeEngine(life, moved.id, moved.outs, { storage: "moving", type: "lvmthin", vgname: "pve", thinpool: "data", content: ["images"] });
    expect(retyped.order).toEqual(["delete old", "create new"]);
    expect(await client().storage.get("moving")).toMatchObject({ type: "lvmthin", vgname: "pve" });
    const renamed = await replaceLikeEngine(life, retyped.id, retyped.outs, { storage: "moved", type: "lvmthin", vgname: "pve", thinpool: "data", content: ["images"] });
    expect(renamed.order).toEqual(["create new", "delete old"]);
    const ids = (await client().storage.list()).map((x) => x.storage);
    expect(ids).toContain("moved");
    expect(ids).not.toContain("moving");
    await life.delete(renamed.id, renamed.outs);
  });

  it("rejects a storage id that already exists, saying to set adopt: true, and changes nothing", async () => {
    const before = await client().storage.get("local");
    const msg = await errorOf(life.create(await checked({ storage: "local", type: "dir", path: "/srv/elsewhere", content: ["images"] })));
    expect(msg).toContain("storage 'local' already exists");
    expect(msg).toContain("set adopt: true on the Storage");
    expect(msg).toContain("already defined");
    expect(await client().storage.get("local")).toEqual(before);
  });

  describe("adopt", () => {
    let state: StorageState;
    beforeAll(async () => {
      await client().storage.create({ storage: "legacy", type: "dir", path: "/srv/legacy", content: "iso,backup", nodes: "pve1,pve2" });
    });

    it("adopts an existing storage: declared content applied, undeclared path and nodes kept", async () => {
      const inputs = await checked({ storage: "legacy", type: "dir", adopt: true, content: ["iso", "snippets"] });
      const { id, outs } = await life.create(inputs);
      expect(id).toBe("legacy");
      expect(outs).toEqual({ storage: "legacy", type: "dir", path: "/srv/legacy", shared: false, content: ["iso", "snippets"], nodes: ["pve1", "pve2"], enabled: true, adopt: true });
      expect(await client().storage.get("legacy")).toMatchObject({ content: "iso,snippets", nodes: "pve1,pve2", path: "/srv/legacy" });
      state = outs;
    });

    it("shows no change for the same program, before and after a refresh, even when an undeclared setting drifts", async () => {
      const same = await checked({ storage: "legacy", type: "dir", adopt: true, content: ["snippets", "iso"] }, state);
      expect(await life.diff("legacy", state, same)).toMatchObject({ changes: false });
      await client().storage.update("legacy", { nodes: "pve1" });
      const read = await life.read("legacy", state);
      expect(read.props).toMatchObject({ nodes: ["pve1"], adopt: true });
      expect(await life.diff("legacy", read.props!, same)).toMatchObject({ changes: false });
      state = read.props!;
    });

    it("updates declared settings in place, leaving the undeclared ones", async () => {
      const next = await checked({ storage: "legacy", type: "dir", adopt: true, content: ["iso", "snippets"], enabled: false }, state);
      expect(await life.diff("legacy", state, next)).toMatchObject({ changes: true, replaces: [] });
      const { outs } = await life.update("legacy", state, next);
      expect(outs).toMatchObject({ enabled: false, nodes: ["pve1"], content: ["iso", "snippets"] });
      expect(await client().storage.get("legacy")).toMatchObject({ disable: 1, nodes: "pve1" });
      state = outs;
    });

    it("releases an adopted storage on delete; destroyOnDelete: true deletes it", async () => {
      await life.delete("legacy", state);
      expect(await client().storage.get("legacy")).toMatchObject({ path: "/srv/legacy", disable: 1 });
      const again = await life.create(await checked({ storage: "legacy", type: "dir", adopt: true, destroyOnDelete: true, enabled: true }));
      expect(again.outs).toMatchObject({ destroyOnDelete: true, enabled: true, content: ["iso", "snippets"] });
      await life.delete("legacy", again.outs);
      expect(await life.read("legacy", again.outs)).toMatchObject({ id: "" });
    });

    it("fails clearly when there is nothing to adopt, or the declared type or backing differ, changing nothing", async () => {
      // check() looks first, so a preview fails as the create would (issue 16)
      expect(await failures({ storage: "ghost", type: "dir", adopt: true })).toEqual([
        "storage: cannot adopt storage 'ghost': it does not exist on the cluster. Fix storage, or remove adopt: true to have the Storage create it.",
      ]);
      expect(await errorOf(life.create({ storage: "ghost", type: "dir", adopt: true } as StorageInputs))).toBe(
        "cannot adopt storage 'ghost': it does not exist on the cluster. Fix storage, or remove adopt: true to have the Storage create it.",
      );
      expect((await client().storage.list()).map((x) => x.storage)).not.toContain("ghost");
      const before = await client().storage.get("local-lvm");
      expect(await errorOf(life.create(await checked({ storage: "local-lvm", type: "dir", adopt: true, content: ["iso"] })))).toBe(
        `cannot adopt storage 'local-lvm': type: it has "lvmthin", the program declares "dir". A storage's type cannot change: declare type: "lvmthin".`,
      );
      expect(await errorOf(life.create(await checked({ storage: "local-lvm", type: "lvmthin", adopt: true, vgname: "other", content: ["images"] })))).toBe(
        `cannot adopt storage 'local-lvm': vgname: it has "pve", the program declares "other". vgname cannot change in place: declare vgname: "pve", or leave vgname out to keep it.`,
      );
      expect(await client().storage.get("local-lvm")).toEqual(before);
    });
  });
});
