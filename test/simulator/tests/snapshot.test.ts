import { startSimulator } from "../index";
import { diffSnapshots, snapshotState } from "../snapshot";

describe("state snapshots", () => {
  it("see a VM, a pool, a user, an ACL and a file that appear, and nothing when they are gone again", async () => {
    const s = await startSimulator({ seed: 3 });
    try {
      const before = snapshotState(s.sim);
      expect(diffSnapshots(before, snapshotState(s.sim))).toEqual([]);
      const c = s.sim.ext.cluster;
      await s.sim.invoke("POST", "/nodes/{node}/qemu", { node: "pve1", vmid: 150, name: "snap" });
      await s.sim.invoke("POST", "/pools", { poolid: "snap" });
      await s.sim.invoke("POST", "/access/users", { userid: "snap@pve" });
      s.sim.access.setAcl("/pool/snap", "user", "snap@pve", "PVEAuditor", 1);
      require("fs").mkdirSync(require("path").dirname(c.hostPath("pve2", "/var/lib/vz/snippets/x.yaml")), { recursive: true });
      require("fs").writeFileSync(c.hostPath("pve2", "/var/lib/vz/snippets/x.yaml"), "#cloud-config\n");
      const during = diffSnapshots(before, snapshotState(s.sim));
      const text = during.join("\n");
      expect(text).toContain("snap@pve");
      expect(text).toContain('"poolid":"snap"');
      expect(text).toContain("/pool/snap");
      expect(text).toContain("pve2:/var/lib/vz/snippets/x.yaml");
      expect(text).toContain('"vmid":150');
      expect(during.every((l) => l.startsWith("+ "))).toBe(true);

      s.sim.access.removeAcl("/pool/snap", "user", "snap@pve", "PVEAuditor");
      s.sim.access.deleteUser("snap@pve");
      s.sim.pools.delete("snap");
      c.vms.delete(150);
      require("fs").rmSync(c.hostPath("pve2", "/var/lib/vz/snippets/x.yaml"));
      expect(diffSnapshots(before, snapshotState(s.sim))).toEqual([]);
    } finally {
      await s.stop();
    }
  });
});
