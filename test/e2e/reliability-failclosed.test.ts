/**
 * Fail closed, through the real engine (Automation API, inline program) against the simulator:
 * - a snippet name with path traversal is refused by check() at preview, before any API call;
 * - an SSH host key that does not match the pinned fingerprint stops the snippet upload;
 * - a task that fails on the PVE side (clone onto a full storage; onto a storage removed while
 *   the clone runs) surfaces PVE's message with the task log tail, and the resource is not
 *   recorded (nor left on the cluster);
 * - an endpoint on a closed port, and one that accepts TCP and never answers, fail within the
 *   bounded request timeout with a message naming the endpoint;
 * - a server certificate from another CA fails TLS verification before any request is served.
 * Afterwards: the encrypted export, every engine output and every error hold no secret (the API
 * token's secret, the SSH private key; the harness scans the same again, with the simulator's
 * root password, after the file).
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { generateEd25519KeyPair } from "../helpers/ssh-keys";
import { compileToDist, createTestStack, disposePulumiEnv, exportStackEncrypted, removeStack, REPO_ROOT, type TestStack } from "./harness";
import { assertNoSecrets, OutputCollector } from "./secret-scan";
import { makeTemplate, startVmSim, type VmSim } from "../unit/resources/vm/sim-setup";
import { generateCerts } from "../simulator/certs";

jest.setTimeout(10 * 60 * 1000);
afterAll(disposePulumiEnv);

const FIXTURE = path.join(__dirname, "fixtures", "reliability-failclosed");
const TIMEOUT_MS = 1500;

function providerSources(dir = path.join(REPO_ROOT, "provider")): string[] {
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) return providerSources(p);
        return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
    });
}

describe("reliability: the provider fails closed", () => {
    let v: VmSim;
    let ts: TestStack | undefined;
    const out = new OutputCollector();
    const errors: string[] = [];
    const key = generateEd25519KeyPair({ comment: "reliability" });
    let hanging: net.Server;
    const sockets: net.Socket[] = [];

    /** Runs `up` (or preview), expects it to fail, returns the error text and the time taken. */
    async function failing(op: "up" | "preview"): Promise<{ text: string; ms: number }> {
        const t0 = Date.now();
        const result = await (op === "up" ? ts!.stack.up(out.opts) : ts!.stack.preview(out.opts)).then(
            () => undefined,
            (e: Error) => e,
        );
        expect(result).toBeInstanceOf(Error);
        out.addError(result);
        errors.push(result!.message);
        return { text: result!.message, ms: Date.now() - t0 };
    }

    const recordedTypes = async (): Promise<string[]> =>
        (JSON.parse(await exportStackEncrypted(ts!)).deployment.resources ?? []).map((r: any) => String(r.type)).filter((t: string) => t.includes("dynamic"));

    beforeAll(async () => {
        compileToDist(providerSources());
        v = await startVmSim({ seed: 51, timeFactor: 0.01, cluster: { sshUsers: { root: { keys: [key.public] } } } });
        await makeTemplate(v.api, 9000);
        hanging = net.createServer((s) => sockets.push(s)); // accepts, never answers
        await new Promise<void>((r) => hanging.listen(0, "127.0.0.1", () => r()));
        ts = await createTestStack({
            programDir: FIXTURE,
            stackName: `relfc${process.pid}`,
            simulator: v.s,
            config: {
                "proxmox:endpoint": { value: v.s.url },
                "proxmox:apiToken": { value: v.s.rootToken, secret: true },
                "proxmox:caCert": { value: v.s.caCert },
                "proxmox:requestTimeoutMs": { value: String(TIMEOUT_MS) },
                "proxmox:sshUsername": { value: "root" },
                "proxmox:sshPrivateKey": { value: key.private, secret: true },
                "proxmox:sshNodes": { value: JSON.stringify(Object.fromEntries(v.s.nodes.map((n) => [n.name, { host: "127.0.0.1", port: n.sshPort }]))) },
                "proxmox:sshHostKeys": { value: JSON.stringify(Object.fromEntries(v.s.nodes.map((n) => [n.name, n.hostKeyFingerprint]))) },
                "rel:kind": { value: "snippet" },
                "rel:fileName": { value: "../../etc/passwd" },
                "rel:storage": { value: "local-lvm" },
            },
        });
    });
    afterAll(async () => {
        await removeStack(ts);
        for (const s of sockets) s.destroy();
        await new Promise((r) => hanging?.close(r));
        await v?.stop();
    });

    it("refuses a snippet name with traversal at preview, before any API call", async () => {
        const log0 = v.s.sim.requestLog.length;
        const { text } = await failing("preview");
        expect(text).toMatch(/fileName/);
        expect(v.s.sim.requestLog.slice(log0)).toEqual([]);
    });

    it("stops the snippet upload when the node's SSH host key does not match the pin", async () => {
        await ts!.stack.setConfig("rel:fileName", { value: "fc-user.yaml" });
        await ts!.stack.setConfig("proxmox:sshHostKeys", { value: JSON.stringify({ pve1: "SHA256:" + "A".repeat(43) }) });
        const { text } = await failing("up");
        expect(text).toMatch(/host key/i);
        expect(text).toContain(v.s.nodes[0].hostKeyFingerprint); // the fingerprint to pin, if it is the right one
        expect(await recordedTypes()).toEqual([]);
        const files = v.cluster.hostPath ? fs.existsSync(path.join(v.cluster.hostPath("pve1", "/var/lib/vz/snippets"), "fc-user.yaml")) : false;
        expect(files).toBe(false);
    });

    it("surfaces PVE's message and the task log tail when a clone task fails (storage full), recording nothing", async () => {
        await ts!.stack.setConfig("rel:kind", { value: "clone" });
        v.cluster.setStorageFull("local-lvm", true);
        const vmsBefore = [...v.cluster.vms.keys()].sort();
        const { text } = await failing("up");
        v.cluster.setStorageFull("local-lvm", false);
        const failedClone = v.cluster.tasks.all().find((t: any) => t.type === "qmclone" && t.exitstatus !== "OK");
        expect(failedClone).toBeDefined();
        expect(text).toContain(failedClone.exitstatus); // PVE's own words
        expect(text).toMatch(/last task log lines/);
        expect(await recordedTypes()).toEqual([]);
        await v.cluster.tasks.idle();
        expect([...v.cluster.vms.keys()].sort()).toEqual(vmsBefore);
    });

    it("surfaces PVE's message and the task log tail when the clone's storage disappears under the task (storage missing), recording nothing", async () => {
        // A full clone onto a storage that exists when check() and the clone request look at it,
        // and is removed (pvesm remove, by someone else) while the clone task runs: the task
        // fails on the PVE side with PVE's own "storage ... does not exist".
        await v.api.storage.create({ storage: "vanishing", type: "dir", path: "/srv/vanishing", content: "images" });
        await ts!.stack.setConfig("rel:kind", { value: "clone" });
        await ts!.stack.setConfig("rel:storage", { value: "vanishing" });
        const vmsBefore = [...v.cluster.vms.keys()].sort();
        const tasksBefore = v.cluster.tasks.all().length;
        v.s.sim.faults.configure({ tasks: { slowFactor: 400, slowRate: 1, types: ["qmclone"] } }); // a clone that takes a few seconds
        let removedWhileRunning = false;
        const remover = (async () => {
            for (const deadline = Date.now() + 5 * 60 * 1000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 5))) {
                const cloning = v.cluster.tasks.all().slice(tasksBefore).some((t: any) => t.type === "qmclone" && t.status === "running");
                if (!cloning) continue;
                await v.api.storage.delete("vanishing");
                removedWhileRunning = true;
                return;
            }
        })();
        const { text } = await failing("up");
        await remover;
        v.s.sim.faults.clear();
        expect(removedWhileRunning).toBe(true);
        const failedClone = v.cluster.tasks.all().slice(tasksBefore).find((t: any) => t.type === "qmclone" && t.exitstatus !== "OK");
        expect(failedClone?.exitstatus).toMatch(/storage 'vanishing' does not exist$/);
        expect(text).toContain(`failed: ${failedClone.exitstatus}`); // PVE's own words
        expect(text).toMatch(/last task log lines:[\s\S]*TASK ERROR: .*storage 'vanishing' does not exist/);
        expect(text).toContain(failedClone.upid);
        expect(await recordedTypes()).toEqual([]);
        await v.cluster.tasks.idle();
        expect([...v.cluster.vms.keys()].sort()).toEqual(vmsBefore);
    });

    it("fails within the timeout, naming the endpoint, when nothing listens", async () => {
        const closed = net.createServer();
        await new Promise<void>((r) => closed.listen(0, "127.0.0.1", () => r()));
        const port = (closed.address() as net.AddressInfo).port;
        await new Promise((r) => closed.close(r));
        await ts!.stack.setConfig("rel:kind", { value: "pool" });
        await ts!.stack.setConfig("proxmox:endpoint", { value: `https://127.0.0.1:${port}` });
        const { text, ms } = await failing("up");
        expect(text).toContain(`https://127.0.0.1:${port}`);
        expect(text).toMatch(/ECONNREFUSED/);
        expect(ms).toBeLessThan(120_000);
        expect(await recordedTypes()).toEqual([]);
    });

    it("fails within the timeout, naming the endpoint, when the server accepts and never answers", async () => {
        const port = (hanging.address() as net.AddressInfo).port;
        await ts!.stack.setConfig("proxmox:endpoint", { value: `https://127.0.0.1:${port}` });
        const { text, ms } = await failing("up");
        expect(text).toContain(`https://127.0.0.1:${port}`);
        expect(text).toMatch(new RegExp(`no answer within ${TIMEOUT_MS} ms`));
        expect(ms).toBeLessThan(60_000);
        expect(sockets.length).toBeGreaterThan(0);
    });

    it("refuses a server certificate signed by another CA, before any request is served", async () => {
        await ts!.stack.setConfig("proxmox:endpoint", { value: v.s.url });
        await ts!.stack.setConfig("proxmox:caCert", { value: generateCerts().caCert });
        const log0 = v.s.sim.requestLog.length;
        const { text } = await failing("up");
        expect(text).toMatch(/TLS verification of https:\/\/127\.0\.0\.1:\d+ failed/);
        expect(v.s.sim.requestLog.slice(log0)).toEqual([]);
        expect(await recordedTypes()).toEqual([]);
    });

    it("let no secret out: export, engine and provider output, errors", async () => {
        expect(errors.length).toBe(7);
        assertNoSecrets([await exportStackEncrypted(ts!), ...out.texts, ...errors], [v.s.rootToken.split("=")[1], key.private]);
    });
});
