/**
 * The real Pulumi engine creates a 30-VM fleet at full parallelism against the simulator
 * (nonzero latency), with zero VMID collisions; a preview right after shows no change; a
 * refresh finds no drift; an update changes them in place; destroy removes every VM.
 *
 * Fails (does not skip) when the Pulumi CLI cannot be obtained: see scripts/ensure-pulumi.sh.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
import { compileToDist, createTestStack, disposePulumiEnv, removeStack, REPO_ROOT, type TestStack } from "./harness";
import { startVmSim, makeTemplate, type VmSim } from "../unit/resources/vm/sim-setup";

jest.setTimeout(30 * 60 * 1000);
afterAll(disposePulumiEnv);

const FIXTURE = path.join(__dirname, "fixtures", "vm-fleet");
const FLEET = 30;

function providerSources(dir = path.join(REPO_ROOT, "provider")): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) return providerSources(p);
        return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
    });
}

describe("a VmClone fleet through the Pulumi engine", () => {
    let v: VmSim;
    let ts: TestStack | undefined;
    let stack: Stack;

    beforeAll(async () => {
        v = await startVmSim({ seed: 21, timeFactor: 0.02 });
        await makeTemplate(v.api, 9000);
        // The provider process requires the implementation from dist/.
        compileToDist(providerSources());
        ts = await createTestStack({
            programDir: FIXTURE,
            stackName: `fleet${process.pid}`,
            simulator: v.s,
            config: {
                "proxmox:endpoint": { value: v.s.url },
                "proxmox:apiToken": { value: v.s.rootToken, secret: true },
                "proxmox:caCert": { value: v.s.caCert },
                "fleet:size": { value: String(FLEET) },
            },
        });
        stack = ts.stack;
    });

    afterAll(async () => {
        await removeStack(ts);
        await v?.stop();
    });

    const vmsNow = () => [...v.cluster.vms.keys()].filter((id: number) => id !== 9000).sort((a: number, b: number) => a - b);

    it("creates every VM with a distinct VMID and no collision reaching PVE", async () => {
        const log0 = v.s.sim.requestLog.length;
        const up = await stack.up();
        expect(up.summary.result).toBe("succeeded");
        expect(up.summary.resourceChanges).toMatchObject({ create: FLEET + 1 });
        const vmids = up.outputs.vmids.value as number[];
        expect(new Set(vmids).size).toBe(FLEET);
        expect(vmsNow()).toEqual([...vmids].sort((a, b) => a - b));
        expect((up.outputs.addresses.value as string[]).every((a) => /^10\./.test(a))).toBe(true);
        const clonePosts = v.s.sim.requestLog.slice(log0).filter((e) => e.method === "POST" && e.template === "/nodes/{node}/qemu/{vmid}/clone");
        expect(clonePosts.map((e) => e.status)).toEqual(Array(FLEET).fill(200));
        expect(v.cluster.tasks.all().filter((t: any) => t.type === "qmclone" && t.exitstatus !== "OK")).toEqual([]);
    });

    it("previews no change right after up, and a refresh finds no drift", async () => {
        const before = v.s.sim.requestLog.length;
        const preview = await stack.preview();
        expect(preview.changeSummary).toEqual({ same: FLEET + 1 });
        // unchanged inputs: check() and diff() answer without asking PVE
        expect(v.s.sim.requestLog.slice(before).map((e) => `${e.method} ${e.path}`)).toEqual([]);
        const refresh = await stack.refresh();
        expect(refresh.summary.result).toBe("succeeded");
        expect(refresh.summary.resourceChanges).toEqual({ same: FLEET + 1 });
    });

    it("updates cores in place (pending until restart), then destroys every VM", async () => {
        await stack.setConfig("fleet:cores", { value: "2" });
        const up = await stack.up();
        expect(up.summary.resourceChanges).toMatchObject({ update: FLEET, same: 1 });
        expect(vmsNow().length).toBe(FLEET);
        const destroy = await stack.destroy();
        expect(destroy.summary.result).toBe("succeeded");
        expect(vmsNow()).toEqual([]);
    });
});
