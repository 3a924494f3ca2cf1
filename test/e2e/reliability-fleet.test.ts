/**
 * Reliability through the real engine (Automation API, inline program) against the simulator:
 *
 * 1. A 30-VM fleet while 5% of API calls fail (500s and connection resets), 15% of clone POSTs
 *    lose their answer after PVE carried them out, config flocks are contended and 10% of tasks
 *    run slow converges in ONE `pulumi up`; afterwards the cluster holds exactly the VMs in the
 *    state (none extra, no duplicate VMID or name). Destroy under the same faults leaves nothing.
 * 2. `pulumi up` SIGKILLed (the CLI and the dynamic-provider process) while creating the fleet,
 *    then `pulumi refresh --clear-pending-creates` and `pulumi up` again: converges with no
 *    orphaned and no duplicated VM (VMs created but never recorded are found by their marker
 *    and adopted).
 * After each: the encrypted stack export, every engine/provider output and every error text
 * hold no secret (the API token's secret).
 *
 * Fails (does not skip) when the Pulumi CLI cannot be obtained: see scripts/ensure-pulumi.sh.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { compileToDist, createTestStack, disposePulumiEnv, exportStackEncrypted, removeStack, REPO_ROOT, type TestStack } from "./harness";
import { assertNoSecrets, OutputCollector } from "./secret-scan";
import { makeTemplate, startVmSim, type VmSim } from "../unit/resources/vm/sim-setup";
import { countFaults, FLEET_FAULTS } from "../unit/reliability/fault-profile";
import { snapshotState } from "../simulator/snapshot";

jest.setTimeout(20 * 60 * 1000);
afterAll(disposePulumiEnv);

const FIXTURE = path.join(__dirname, "fixtures", "reliability-fleet");
const FLEET = 30;

function providerSources(dir = path.join(REPO_ROOT, "provider")): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) return providerSources(p);
        return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
    });
}

/** Every process below `root` (the Pulumi CLI this test's Automation API started, and its plugins). */
function descendants(root: number): number[] {
    const rows = execFileSync("ps", ["-e", "-o", "pid=,ppid="], { encoding: "utf8" })
        .trim()
        .split("\n")
        .map((l) => l.trim().split(/\s+/).map(Number));
    const out: number[] = [];
    const walk = (p: number): void => {
        for (const [pid, ppid] of rows) if (ppid === p) {
            out.push(pid);
            walk(pid);
        }
    };
    walk(root);
    return out;
}

/**
 * A SIGKILL can land while the file backend rewrites the checkpoint. The checkpoint itself is
 * written to a temp file and renamed, but gocloud's fileblob writes its `<stack>.json.attrs`
 * sidecar in place (attrs.go `setAttrs`: os.Create, then encode), so a kill there leaves an empty
 * sidecar and every command fails with `failed to load checkpoint: EOF` although the checkpoint is
 * whole. Deleting the torn sidecar is the recovery (fileblob treats a missing one as defaults); a
 * torn checkpoint, should one appear, is replaced by `<stack>.json.bak`. VMs a lost checkpoint had
 * recorded are then unrecorded, which is what the marker adoption is for. Returns what it repaired.
 */
function repairTornCheckpoint(ts: TestStack): "none" | "attrs" | "bak" {
    const find = (dir: string): string[] =>
        fs.existsSync(dir)
            ? fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? find(path.join(dir, e.name)) : e.name === `${ts.stack.name}.json` ? [path.join(dir, e.name)] : []))
            : [];
    const [file] = find(path.join(ts.env.backendDir, ".pulumi", "stacks"));
    if (!file) return "none";
    const parses = (f: string) => {
        try {
            JSON.parse(fs.readFileSync(f, "utf8"));
            return true;
        } catch {
            return false;
        }
    };
    let repaired: "none" | "attrs" | "bak" = "none";
    if (fs.existsSync(`${file}.attrs`) && !parses(`${file}.attrs`)) {
        fs.rmSync(`${file}.attrs`);
        repaired = "attrs";
    }
    if (!parses(file)) {
        fs.copyFileSync(`${file}.bak`, file);
        fs.rmSync(`${file}.attrs`, { force: true });
        repaired = "bak";
    }
    return repaired;
}

/** VMIDs of VmClones recorded in the state (from the encrypted export). */
function recordedVms(exported: string): Array<{ vmid: number; name: string }> {
    const d = JSON.parse(exported);
    return (d.deployment.resources ?? [])
        .filter((r: any) => String(r.type).includes("VmClone") || (r.type === "pulumi-nodejs:dynamic:Resource" && r.outputs?.templateVmid !== undefined))
        .map((r: any) => ({ vmid: r.outputs.vmid, name: r.outputs.name }));
}

/** The template's (and its linked clones') storage: each type names linked clones its own way
 *  (pve-storage: LVM-thin `vm-<id>-disk-<n>`, dir/nfs `<tpl>/base-…qcow2/<id>/vm-…qcow2`). */
type FleetStorage = "local-lvm" | "dir-images" | "shared-nfs";

async function startFleetSim(seed: number, storage: FleetStorage = "local-lvm"): Promise<VmSim> {
    const v = await startVmSim({ seed, timeFactor: 0.01, cluster: { sharedStorage: storage === "shared-nfs" } });
    if (storage === "dir-images") v.cluster.addStorage({ storage, type: "dir", path: "/var/lib/dir-images", content: ["images"], shared: false, extra: {} });
    await makeTemplate(v.api, 9000, storage === "local-lvm" ? {} : { scsi0: `${storage}:8`, ide2: `${storage}:cloudinit` });
    return v;
}

function fleetConfig(v: VmSim): Record<string, { value: string; secret?: boolean }> {
    return {
        "proxmox:endpoint": { value: v.s.url },
        "proxmox:apiToken": { value: v.s.rootToken, secret: true },
        "proxmox:caCert": { value: v.s.caCert },
        "fleet:size": { value: String(FLEET) },
    };
}

const vmsOf = (v: VmSim) =>
    [...v.cluster.vms.values()].filter((vm: any) => vm.vmid !== 9000).map((vm: any) => ({ vmid: vm.vmid as number, name: vm.config.current.name as string }));

function assertExactly(v: VmSim, recorded: Array<{ vmid: number; name: string }>): void {
    const onCluster = vmsOf(v).sort((a, b) => a.vmid - b.vmid);
    expect(onCluster).toEqual([...recorded].sort((a, b) => a.vmid - b.vmid));
    expect(new Set(onCluster.map((x) => x.vmid)).size).toBe(FLEET);
    expect(new Set(onCluster.map((x) => x.name)).size).toBe(FLEET);
}

describe("reliability: a fleet under faults converges in one up", () => {
    let v: VmSim;
    let ts: TestStack | undefined;
    const out = new OutputCollector();
    const tokenSecret = () => v.s.rootToken.split("=")[1];

    beforeAll(async () => {
        compileToDist(providerSources());
        v = await startFleetSim(31);
        ts = await createTestStack({ programDir: FIXTURE, stackName: `relfaults${process.pid}`, simulator: v.s, config: fleetConfig(v) });
    });
    afterAll(async () => {
        await removeStack(ts);
        await v?.stop();
    });

    it("creates 30 VMs in one up; the cluster holds exactly the recorded VMs; destroy leaves nothing", async () => {
        const before = snapshotState(v.s.sim);
        const log0 = v.s.sim.requestLog.length;
        v.s.sim.faults.configure(FLEET_FAULTS);
        const started = Date.now();
        const up = await ts!.stack.up(out.opts);
        const wallMs = Date.now() - started;
        expect(up.summary.result).toBe("succeeded");
        expect(up.summary.resourceChanges).toMatchObject({ create: FLEET + 1 });
        const counts = countFaults(v.s.sim.requestLog.slice(log0), v.s.sim.faults.injected);
        v.s.sim.faults.clear();

        const exported = await exportStackEncrypted(ts!);
        const recorded = recordedVms(exported);
        expect(recorded.length).toBe(FLEET);
        assertExactly(v, recorded);
        // every fault kind was really injected during the up
        expect(counts.error500).toBeGreaterThan(0);
        expect(counts.reset).toBeGreaterThan(0);
        expect(counts.lostResponse).toBeGreaterThan(0);
        expect(counts.slowTasks).toBeGreaterThan(0);
        expect(counts.lockContention).toBeGreaterThan(0);
        process.stderr.write(`RELIABILITY fleet-under-faults: ${JSON.stringify({ ...counts, vmsCreated: FLEET, orphans: 0, duplicates: 0, wallMs })}\n`);

        const preview = await ts!.stack.preview(out.opts);
        expect(preview.changeSummary).toEqual({ same: FLEET + 1 });

        v.s.sim.faults.configure(FLEET_FAULTS);
        const destroy = await ts!.stack.destroy(out.opts);
        v.s.sim.faults.clear();
        expect(destroy.summary.result).toBe("succeeded");
        await v.cluster.tasks.idle?.();
        const diff = (await import("../simulator/snapshot")).diffSnapshots(before, snapshotState(v.s.sim));
        expect(diff).toEqual([]);

        assertNoSecrets([exported, await exportStackEncrypted(ts!), ...out.texts], [tokenSecret()]);
    });
});

const LINKED_DISK: Record<FleetStorage, (vmid: number) => RegExp> = {
    "local-lvm": (vmid) => new RegExp(`^local-lvm:vm-${vmid}-disk-0,`),
    "dir-images": (vmid) => new RegExp(`^dir-images:9000/base-9000-disk-0\\.raw/${vmid}/vm-${vmid}-disk-0\\.qcow2,`),
    "shared-nfs": (vmid) => new RegExp(`^shared-nfs:9000/base-9000-disk-0\\.raw/${vmid}/vm-${vmid}-disk-0\\.qcow2,`),
};

describe.each([
    ["lvmthin", "local-lvm", 32],
    ["dir (raw base, qcow2 clones)", "dir-images", 33],
    ["shared nfs", "shared-nfs", 34],
] as Array<[string, FleetStorage, number]>)("reliability: pulumi up killed with SIGKILL mid-fleet, then run again, linked clones on %s", (label, storage, seed) => {
    let v: VmSim;
    let ts: TestStack | undefined;
    const out = new OutputCollector();
    const tokenSecret = () => v.s.rootToken.split("=")[1];

    beforeAll(async () => {
        compileToDist(providerSources());
        v = await startFleetSim(seed, storage);
        ts = await createTestStack({ programDir: FIXTURE, stackName: `relkill${seed}x${process.pid}`, simulator: v.s, config: fleetConfig(v) });
    });
    afterAll(async () => {
        await removeStack(ts);
        await v?.stop();
    });

    it("converges after the kill with no orphaned and no duplicated VM", async () => {
        const KILL_AT = 10;
        const upPromise = ts!.stack.up(out.opts).then(
            () => "finished",
            (e) => {
                out.addError(e);
                return "failed";
            },
        );
        // wait for N VMs to exist, then kill the CLI and the dynamic-provider process at once
        const deadline = Date.now() + 5 * 60 * 1000;
        while (vmsOf(v).length < KILL_AT && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        const victims = descendants(process.pid).filter((pid) => {
            try {
                return /pulumi|dynamic-provider/.test(fs.readFileSync(`/proc/${pid}/cmdline`, "utf8"));
            } catch {
                return false;
            }
        });
        expect(victims.length).toBeGreaterThanOrEqual(2); // the CLI and the provider (via its shell launcher)
        for (const pid of victims) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                /* already gone */
            }
        }
        expect(await upPromise).toBe("failed");
        const atKill = vmsOf(v).length;
        expect(atKill).toBeGreaterThanOrEqual(KILL_AT);
        expect(atKill).toBeLessThan(FLEET);
        // let the clones the killed run started finish on the node, as PVE's workers would
        await v.cluster.tasks.idle?.();

        const repaired = repairTornCheckpoint(ts!);
        const interrupted = await exportStackEncrypted(ts!);
        const pending = JSON.parse(interrupted).deployment.pending_operations ?? [];
        const recordedBefore = recordedVms(interrupted).length;
        // the engine knows about creates it never saw finish
        expect(pending.length + recordedBefore).toBeGreaterThan(0);

        // The killed CLI left its stack lock behind (the file backend locks stacks): `pulumi cancel`
        // is how a user releases it after making sure no update runs.
        await ts!.stack.cancel();
        // `pulumi refresh --clear-pending-creates`: forget the pending creates (the VMs they made
        // are found again by their marker on the next up)
        const refresh = await ts!.stack.refresh({ ...out.opts, clearPendingCreates: true });
        expect(refresh.summary.result).toBe("succeeded");
        const afterRefresh = await exportStackEncrypted(ts!);
        expect(JSON.parse(afterRefresh).deployment.pending_operations ?? []).toEqual([]);
        const unrecorded = vmsOf(v).length - recordedVms(afterRefresh).length;

        // Counted now, not at the kill: a clone request the provider had already sent when it was
        // killed can still be served after `atKill` was read (the simulator shares this process's
        // event loop), and that VM, too, must be adopted rather than cloned again.
        const existing = vmsOf(v).length;
        expect(existing).toBeGreaterThanOrEqual(atKill);
        const log0 = v.s.sim.requestLog.length;
        const up = await ts!.stack.up(out.opts);
        expect(up.summary.result).toBe("succeeded");
        const exported = await exportStackEncrypted(ts!);
        const recorded = recordedVms(exported);
        expect(recorded.length).toBe(FLEET);
        assertExactly(v, recorded);
        const clonesAfter = v.s.sim.requestLog.slice(log0).filter((e) => e.method === "POST" && e.template === "/nodes/{node}/qemu/{vmid}/clone").length;
        expect(clonesAfter).toBe(FLEET - existing); // the rest were adopted, not cloned again
        // the disks are named as this storage type names linked clones (no template in the name on LVM-thin)
        for (const r of recorded) expect(String(v.cluster.vms.get(r.vmid).config.current.scsi0)).toMatch(LINKED_DISK[storage](r.vmid));
        process.stderr.write(`RELIABILITY sigkill ${label}: ${JSON.stringify({ checkpointRepaired: repaired, vmsAtKill: atKill, vmsBeforeRerun: existing, recordedAtKill: recordedBefore, pendingCreates: pending.length, unrecordedAdopted: unrecorded, clonedAfter: clonesAfter, orphans: 0, duplicates: 0 })}\n`);

        const destroy = await ts!.stack.destroy(out.opts);
        expect(destroy.summary.result).toBe("succeeded");
        expect(vmsOf(v)).toEqual([]);
        assertNoSecrets([interrupted, exported, ...out.texts], [tokenSecret()]);
    });

    it("recovers from a kill that tore the checkpoint's metadata sidecar, as the README says", async () => {
        // what a SIGKILL inside fileblob's setAttrs leaves: an empty `<stack>.json.attrs`
        const sidecar = (dir: string): string[] =>
            fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sidecar(path.join(dir, e.name)) : e.name === `${ts!.stack.name}.json.attrs` ? [path.join(dir, e.name)] : []));
        const [attrs] = sidecar(path.join(ts!.env.backendDir, ".pulumi", "stacks"));
        expect(attrs).toBeDefined();
        fs.writeFileSync(attrs, "");
        await expect(exportStackEncrypted(ts!)).rejects.toThrow(/failed to load checkpoint: EOF/);
        expect(repairTornCheckpoint(ts!)).toBe("attrs");
        expect(JSON.parse(await exportStackEncrypted(ts!)).deployment).toBeDefined();
    });
});
