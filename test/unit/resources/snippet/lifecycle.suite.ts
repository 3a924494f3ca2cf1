/**
 * The CloudInitSnippet lifecycle, one body run against two SSH targets: the simulator's own
 * per-node SFTP, and real OpenSSH (one sshd per simulated node). The PVE API is always the
 * simulator's; only where the files land differs, so each target says how to look at a
 * node's file (`localPath`). Both targets share the simulator's node trees, so a VM started
 * through the simulator's API sees the files either target wrote.
 */
import * as fs from "fs";
import * as net from "net";
import { generateEd25519KeyPair } from "../../../helpers/ssh-keys";
import { PREPARED_LOCAL_CONTENT } from "../../../simulator/state/cluster";
import { startSimulator } from "../../../simulator";
import { configureForTests } from "../../../../provider/resources/context";
import {
  cloudInitSnippetLifecycle as life,
  type CloudInitSnippetInputs,
  type CloudInitSnippetState,
} from "../../../../provider/resources/cloud-init-snippet";
import { sha256Hex } from "../../../../provider/ssh";

export interface SshNodeTarget {
  name: string;
  host: string;
  port: number;
  hostKeyFingerprint: string;
}

export interface SnippetTarget {
  nodes: SshNodeTarget[];
  /** Local path of a node's absolute path (to look at and drift its files). */
  localPath(node: string, abs: string): string;
  stop(): Promise<void>;
}

export type Sim = Awaited<ReturnType<typeof startSimulator>>;
/** Starts the SSH side for this simulator with these client public keys authorised for root. */
export type StartSnippetTarget = (sim: Sim | undefined, authorizedKeys: string[]) => Promise<SnippetTarget>;

const DIR = "/var/lib/vz/snippets";

export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export function defineSnippetLifecycleSuite(label: string, start: StartSnippetTarget, opts: { simulatorSftp: boolean }): void {
  describe(`CloudInitSnippet lifecycle over ${label}`, () => {
    const key = generateEd25519KeyPair({ comment: "snippet-test" });
    const stranger = generateEd25519KeyPair({ comment: "stranger" });
    let sim: Sim;
    let target: SnippetTarget;
    let base: Record<string, string>;

    const fileOn = (node: string, name: string): string | undefined => {
      const p = target.localPath(node, `${DIR}/${name}`);
      return fs.existsSync(p) ? fs.readFileSync(p, "utf8") : undefined;
    };
    const modeOn = (node: string, name: string): number => fs.statSync(target.localPath(node, `${DIR}/${name}`)).mode & 0o777;
    const dirListing = (node: string): string[] => fs.readdirSync(target.localPath(node, DIR));
    const configure = (extra: Record<string, string | undefined> = {}) => configureForTests({ ...base, ...extra });

    async function checked(news: Partial<CloudInitSnippetInputs>, olds: Partial<CloudInitSnippetState> = {}): Promise<CloudInitSnippetInputs> {
      const r = await life.check(olds, news as CloudInitSnippetInputs);
      expect(r.failures ?? []).toEqual([]);
      return r.inputs as CloudInitSnippetInputs;
    }

    beforeAll(async () => {
      // snippets enabled on `local` by the admin (a fresh install has none)
      sim = await startSimulator({ seed: 21, cluster: { localContent: PREPARED_LOCAL_CONTENT, sshUsers: { root: { keys: [key.public] } } } });
      target = await start(sim, [key.public]);
      base = {
        endpoint: sim.url,
        apiToken: sim.rootToken,
        caCert: sim.caCert,
        sshUsername: "root",
        sshPrivateKey: key.private,
        sshNodes: JSON.stringify(Object.fromEntries(target.nodes.map((n) => [n.name, { host: n.host, port: n.port }]))),
        sshHostKeys: JSON.stringify(Object.fromEntries(target.nodes.map((n) => [n.name, n.hostKeyFingerprint]))),
      };
    }, 60_000);
    afterAll(async () => {
      await target?.stop();
      await sim?.stop();
    });
    beforeEach(() => configure());

    it("creates the file on every online node, mode 0644, and gives the volume id for cicustom", async () => {
      const inputs = await checked({ content: "#cloud-config\nhostname: web1\n", namePrefix: "web1" });
      const { id, outs } = await life.create(inputs);
      const sha = sha256Hex("#cloud-config\nhostname: web1\n");
      expect(outs.file).toBe(`web1-${sha.slice(0, 12)}.yaml`);
      expect(id).toBe(`local:snippets/${outs.file}`);
      expect(outs).toMatchObject({ volumeId: id, cicustom: `user=${id}`, sha256: sha, nodes: ["pve1", "pve2", "pve3"], targetNodes: ["pve1", "pve2", "pve3"], path: `${DIR}/${outs.file}`, size: 29 });
      for (const n of ["pve1", "pve2", "pve3"]) {
        expect(fileOn(n, outs.file)).toBe("#cloud-config\nhostname: web1\n");
        expect(modeOn(n, outs.file)).toBe(0o644);
        expect(dirListing(n).filter((f) => f.startsWith("."))).toEqual([]); // no temp file left
      }
      await life.delete(id, outs);
    });

    it("reads drift (missing on one node, altered on another) and an update repairs it; refresh then converges", async () => {
      const inputs = await checked({ cloudConfig: { packages: ["nginx"], hostname: "web2" }, namePrefix: "web2", nodes: ["pve3", "pve1", "pve2"] });
      const { id, outs } = await life.create(inputs);
      expect(fileOn("pve1", outs.file)).toBe("#cloud-config\nhostname: web2\npackages:\n  - nginx\n");
      const fresh = await life.read(id, outs);
      expect(fresh.props!.nodes).toEqual(["pve1", "pve2", "pve3"]);
      expect((await life.diff(id, fresh.props!, inputs)).changes).toBe(false);

      fs.rmSync(target.localPath("pve2", `${DIR}/${outs.file}`));
      fs.writeFileSync(target.localPath("pve3", `${DIR}/${outs.file}`), "#cloud-config\nhostname: evil\n");
      const drifted = await life.read(id, outs);
      expect(drifted.id).toBe(id);
      expect(drifted.props!.nodes).toEqual(["pve1"]);
      const d = await life.diff(id, drifted.props!, inputs);
      expect(d).toMatchObject({ changes: true, replaces: [] });

      const { outs: repaired } = await life.update(id, drifted.props!, inputs);
      expect(repaired.nodes).toEqual(["pve1", "pve2", "pve3"]);
      for (const n of ["pve2", "pve3"]) expect(fileOn(n, outs.file)).toBe(fileOn("pve1", outs.file));
      const again = await life.read(id, repaired);
      expect(again.props!.nodes).toEqual(["pve1", "pve2", "pve3"]);
      expect((await life.diff(id, again.props!, inputs)).changes).toBe(false);
      await life.delete(id, again.props!);
    });

    it("updates the node list in place: writes to added nodes, removes from dropped ones", async () => {
      const first = await checked({ content: "a: 1\n", fileName: "nodes-test.yaml", nodes: ["pve1", "pve2"] });
      const { id, outs } = await life.create(first);
      expect(fileOn("pve3", "nodes-test.yaml")).toBeUndefined();
      const second = await checked({ content: "a: 1\n", fileName: "nodes-test.yaml", nodes: ["pve3", "pve2"] }, outs);
      expect(await life.diff(id, outs, second)).toMatchObject({ changes: true, replaces: [] });
      const { outs: next } = await life.update(id, outs, second);
      expect(next.nodes).toEqual(["pve2", "pve3"]);
      expect(fileOn("pve1", "nodes-test.yaml")).toBeUndefined();
      expect(fileOn("pve2", "nodes-test.yaml")).toBe("a: 1\n");
      expect(fileOn("pve3", "nodes-test.yaml")).toBe("a: 1\n");
      await life.delete(id, next);
      for (const n of ["pve1", "pve2", "pve3"]) expect(fileOn(n, "nodes-test.yaml")).toBeUndefined();
    });

    it("replaces on new content with a content-addressed name (new file first), rewrites a fixed name in place", async () => {
      const v1 = await checked({ content: "v: 1\n", namePrefix: "app" });
      const a = await life.create(v1);
      const v2 = await checked({ content: "v: 2\n", namePrefix: "app" }, a.outs);
      const d = await life.diff(a.id, a.outs, v2);
      expect(d.replaces).toEqual(["file"]);
      expect(d.deleteBeforeReplace).toBe(false);
      const b = await life.create(v2); // the engine creates the replacement first...
      expect(b.id).not.toBe(a.id);
      expect(fileOn("pve1", a.outs.file)).toBe("v: 1\n"); // ...while VMs still find the old file
      await life.delete(a.id, a.outs);
      expect(fileOn("pve1", a.outs.file)).toBeUndefined();
      expect(fileOn("pve2", b.outs.file)).toBe("v: 2\n");
      await life.delete(b.id, b.outs);

      const f1 = await checked({ content: "v: 1\n", fileName: "fixed.yaml" });
      const c = await life.create(f1);
      const f2 = await checked({ content: "v: 2\n", fileName: "fixed.yaml" }, c.outs);
      const d2 = await life.diff(c.id, c.outs, f2);
      expect(d2).toMatchObject({ changes: true, replaces: [] });
      const { outs } = await life.update(c.id, c.outs, f2);
      expect(outs.sha256).toBe(sha256Hex("v: 2\n"));
      for (const n of ["pve1", "pve2", "pve3"]) expect(fileOn(n, "fixed.yaml")).toBe("v: 2\n");
      await life.delete(c.id, outs);
    });

    it("deletes from every node, an already-missing file being fine; read of a gone storage drops the resource", async () => {
      const inputs = await checked({ content: "x: 1\n", fileName: "gone.yaml" });
      const { id, outs } = await life.create(inputs);
      fs.rmSync(target.localPath("pve2", `${DIR}/gone.yaml`));
      await life.delete(id, outs);
      for (const n of ["pve1", "pve2", "pve3"]) expect(fileOn(n, "gone.yaml")).toBeUndefined();
      await expect(life.delete(id, outs)).resolves.toBeUndefined();
      const r = await life.read(id, { ...outs, nodes: [] });
      expect(r.props!.nodes).toEqual([]);
      expect((await life.read("nosuchstorage:snippets/gone.yaml", outs)).id).toBe("");
    });

    it("imports an existing file by volume id", async () => {
      const inputs = await checked({ content: "imported: true\n", fileName: "imp.yaml", nodes: ["pve1", "pve2"] });
      const { id, outs } = await life.create(inputs);
      const r = await life.read(id);
      expect(r.id).toBe(id);
      expect(r.props).toMatchObject({ nodes: ["pve1", "pve2"], sha256: sha256Hex("imported: true\n"), file: "imp.yaml" });
      expect(r.inputs).toMatchObject({ storage: "local", fileName: "imp.yaml", nodes: ["pve1", "pve2"] });
      await life.delete(id, outs);
      await expect(life.read("local:../etc/passwd")).rejects.toThrow(/not a snippet volume id/);
    });

    it("fails on a changed host key with the fingerprint to pin, leaving nothing on the other nodes", async () => {
      const pins = Object.fromEntries(target.nodes.map((n) => [n.name, n.hostKeyFingerprint]));
      const presented = pins.pve2;
      pins.pve2 = pins.pve1; // pin the wrong key for pve2
      configure({ sshHostKeys: JSON.stringify(pins) });
      const inputs = await checked({ content: "hk: 1\n", fileName: "hostkey.yaml" });
      const err = await life.create(inputs).then(() => undefined, (e: Error) => e);
      expect(err?.message).toContain("pve2");
      expect(err?.message).toContain(presented);
      expect(err?.message).toMatch(/removed again from pve1, pve3/);
      for (const n of ["pve1", "pve2", "pve3"]) expect(fileOn(n, "hostkey.yaml")).toBeUndefined();
    });

    it("fails on an unknown host key (nothing pinned) naming each node's fingerprint", async () => {
      configure({ sshHostKeys: undefined });
      const err = await life.create(await checked({ content: "hk: 2\n", fileName: "unknown.yaml" })).then(() => undefined, (e: Error) => e);
      for (const n of target.nodes) expect(err?.message).toContain(n.hostKeyFingerprint);
      for (const n of ["pve1", "pve2", "pve3"]) expect(fileOn(n, "unknown.yaml")).toBeUndefined();
    });

    it("fails with a rejected key as an authentication error that never shows the key", async () => {
      configure({ sshPrivateKey: stranger.private });
      const err = await life.create(await checked({ content: "k: 1\n", fileName: "wrongkey.yaml" })).then(() => undefined, (e: Error) => e);
      expect(err?.message).toMatch(/authentication as 'root' to pve\d .* failed/);
      for (const line of stranger.private.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"))) expect(err?.message).not.toContain(line);
      for (const n of ["pve1", "pve2", "pve3"]) expect(fileOn(n, "wrongkey.yaml")).toBeUndefined();
    });

    it("fails on an unreachable node, naming it and its address, and removes the file from the others", async () => {
      const port = await closedPort();
      const nodes = Object.fromEntries(target.nodes.map((n) => [n.name, { host: n.host, port: n.name === "pve3" ? port : n.port }]));
      configure({ sshNodes: JSON.stringify(nodes) });
      const err = await life.create(await checked({ content: "u: 1\n", fileName: "unreach.yaml" })).then(() => undefined, (e: Error) => e);
      expect(err?.message).toContain(`cannot reach node 'pve3' at 127.0.0.1:${port}`);
      expect(err?.message).toContain("proxmox:sshNodes");
      for (const n of ["pve1", "pve2", "pve3"]) expect(fileOn(n, "unreach.yaml")).toBeUndefined();
    });

    it("refuses a storage without snippets content, naming its content types and the fix", async () => {
      const { client } = await import("../../../../provider/resources/context");
      await client().storage.create({ storage: "isos", type: "dir", path: "/srv/isos", content: "iso,vztmpl" });
      const noSnippets =
        "storage 'isos' (dir) does not have 'snippets' content (its content types: iso, vztmpl); enable it with `pvesm set isos --content iso,vztmpl,snippets`, or declare the storage with the Storage resource and add 'snippets' to its content";
      // check() validates a storage new to the resource (read-only), and create() still refuses it
      const isos = await life.check({}, { storage: "isos", content: "s: 1\n", fileName: "s.yaml" } as CloudInitSnippetInputs);
      expect(isos.failures).toEqual([{ property: "storage", reason: noSnippets }]);
      const err = await life.create(isos.inputs as CloudInitSnippetInputs).then(() => undefined, (e: Error) => e);
      expect(err?.message).toBe(noSnippets);
      const lvmChecked = await life.check({}, { storage: "local-lvm", content: "s: 1\n", fileName: "s.yaml" } as CloudInitSnippetInputs);
      expect(lvmChecked.failures?.map((f) => f.property)).toEqual(["storage"]);
      const lvm = await life.create(lvmChecked.inputs as CloudInitSnippetInputs).then(() => undefined, (e: Error) => e);
      expect(lvm?.message).toContain("storage 'local-lvm' (lvmthin) does not have 'snippets' content");
      const unknownNode = await life.create(await checked({ content: "s: 1\n", fileName: "s.yaml", nodes: ["pve9"] })).then(() => undefined, (e: Error) => e);
      expect(unknownNode?.message).toBe("node pve9 is not in the cluster (nodes: pve1, pve2, pve3)");
    });

    it("by default places the file on the online nodes only, never dialling an offline one", async () => {
      // PVE lists a node that left the quorum (powered off, unreachable) as status "offline".
      const route = sim.sim.routes.find((r) => r.method === "GET" && r.path === "/nodes")!;
      const original = route.handler;
      route.handler = async (req) =>
        ((await original(req)) as Array<Record<string, unknown>>).map((n) => (n.node === "pve3" ? { node: n.node, id: n.id, type: n.type, level: n.level, status: "offline" } : n));
      try {
        // were pve3 dialled, this closed port would fail the step
        const port = await closedPort();
        const nodes = Object.fromEntries(target.nodes.map((n) => [n.name, { host: n.host, port: n.name === "pve3" ? port : n.port }]));
        configure({ sshNodes: JSON.stringify(nodes) });
        const inputs = await checked({ content: "online: only\n", fileName: "online.yaml" });
        const { id, outs } = await life.create(inputs);
        expect(outs).toMatchObject({ nodes: ["pve1", "pve2"], targetNodes: ["pve1", "pve2"] });
        expect(fileOn("pve1", "online.yaml")).toBe("online: only\n");
        expect(fileOn("pve2", "online.yaml")).toBe("online: only\n");
        expect(fileOn("pve3", "online.yaml")).toBeUndefined();
        const read = await life.read(id, outs);
        expect(read.props!.nodes).toEqual(["pve1", "pve2"]);
        expect((await life.diff(id, read.props!, inputs)).changes).toBe(false);
        await life.delete(id, read.props!);
        for (const n of ["pve1", "pve2"]) expect(fileOn(n, "online.yaml")).toBeUndefined();
      } finally {
        route.handler = original;
      }
    });

    it("a VM referencing the snippet starts; once the file is removed from its node, start fails with PVE's error", async () => {
      const { client } = await import("../../../../provider/resources/context");
      const api = client();
      const { id, outs } = await life.create(await checked({ cloudConfig: { runcmd: ["echo hi"] }, namePrefix: "vm" }));
      for (const vmid of [700, 701]) {
        await api.tasks.wait(await api.post<string>("/nodes/pve1/qemu", { vmid, ide2: "local-lvm:cloudinit", cicustom: outs.cicustom, memory: 512 }));
      }
      await api.tasks.wait(await api.post<string>("/nodes/pve1/qemu/700/status/start", {}));
      expect((await api.get<{ status: string }>("/nodes/pve1/qemu/700/status/current")).status).toBe("running");
      fs.rmSync(target.localPath("pve1", `${DIR}/${outs.file}`));
      const upid = await api.post<string>("/nodes/pve1/qemu/701/status/start", {});
      const err = await api.tasks.wait(upid).then(() => undefined, (e: Error) => e);
      expect(err?.message).toContain(`volume '${id}' does not exist`);
      await life.delete(id, outs);
    });

    if (opts.simulatorSftp) {
      // Needs a file that does not read back as written: made here by having the simulator's
      // in-process SFTP server store one byte less than it acknowledged for one node. An
      // OpenSSH server writes what it is sent, so this case has no real-sshd twin.
      it("fails when the file does not read back as written on a node, leaving nothing on any node", async () => {
        const pve2Temp = /[/\\]pve2[/\\]var[/\\]lib[/\\]vz[/\\]snippets[/\\]\.verify\.yaml\.tmp-/;
        const shortFds = new Set<number>();
        // the module object itself (the `import * as` namespace has read-only bindings)
        const fsModule: typeof fs = jest.requireActual("fs");
        const realOpen = fsModule.openSync;
        const realWrite = fsModule.writeSync;
        const open = jest.spyOn(fsModule, "openSync").mockImplementation(((file: fs.PathLike, ...rest: unknown[]) => {
          const fd = (realOpen as (...a: unknown[]) => number)(file, ...rest);
          if (pve2Temp.test(String(file))) shortFds.add(fd);
          return fd;
        }) as typeof fs.openSync);
        const write = jest.spyOn(fsModule, "writeSync").mockImplementation(((fd: number, data: Buffer, offset: number, length: number, position: number) =>
          shortFds.has(fd) && length > 0 ? realWrite(fd, data, offset, length - 1, position) : realWrite(fd, data, offset, length, position)) as typeof fs.writeSync);
        try {
          const err = await life.create(await checked({ content: "verify: me\n", fileName: "verify.yaml" })).then(() => undefined, (e: Error) => e);
          expect(shortFds.size).toBe(1);
          expect(err?.message).toContain("snippet written to /var/lib/vz/snippets/.verify.yaml.tmp-");
          expect(err?.message).toMatch(/on node 'pve2' \(127\.0\.0\.1:\d+\) does not read back as written \(expected 11 bytes sha256 [0-9a-f]{64}, read 10 bytes/);
          expect(err?.message).toContain("it was not put in place");
          expect(err?.message).toMatch(/removed again from pve1, pve3/);
        } finally {
          open.mockRestore();
          write.mockRestore();
        }
        for (const n of ["pve1", "pve2", "pve3"]) {
          expect(fileOn(n, "verify.yaml")).toBeUndefined();
          expect(dirListing(n).filter((f) => f.startsWith("."))).toEqual([]);
        }
      });
    }
  });
}
