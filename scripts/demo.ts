// `npm run demo`: the whole stack of the root Pulumi.yaml program (access, pool, template,
// snippet, fleet) against a simulated 3-node PVE cluster, through the real Pulumi engine.
// Up, show the fleet, preview and apply a change, destroy (unless --keep).
//
// The program is run by the Pulumi CLI from a project directory holding the root Pulumi.yaml
// (runtime: nodejs, main: dist/examples/full-stack/index.js), as `pulumi up` runs it for users:
// the Automation API drives the CLI on that directory (a non-inline LocalWorkspace), and the CLI
// starts a Node.js language host, the real one or pulumi-pve's minimal one (see
// scripts/ensure-pulumi.sh).

import { generateEd25519KeyPair } from "../test/helpers/ssh-keys";
import { LocalWorkspace, type Stack } from "@pulumi/pulumi/automation";
import { startSimulator } from "../test/simulator";
import { diffSnapshots, snapshotState } from "../test/simulator/snapshot";
import { disposePulumiEnv, pulumiEnv, type ConfigEntry } from "../test/e2e/harness";
import { createRootProjectDir } from "../test/e2e/root-project";

const keep = process.argv.includes("--keep");
// `--pve-version 8.4` runs it on a stock PVE 8.4 cluster instead of 9.1
const versionArg = process.argv.indexOf("--pve-version");
const pveVersion = (versionArg >= 0 ? process.argv[versionArg + 1] : "9.1") as "8.4" | "9.1";
if (pveVersion !== "8.4" && pveVersion !== "9.1") throw new Error(`--pve-version takes 8.4 or 9.1, not ${String(pveVersion)}`);
const started = Date.now();
const timings: Array<[string, number]> = [];

function say(line = ""): void {
  process.stdout.write(line + "\n");
}

async function step<T>(title: string, fn: () => Promise<T>): Promise<T> {
  say(`\n== ${title}`);
  const t0 = Date.now();
  const result = await fn();
  const secs = (Date.now() - t0) / 1000;
  timings.push([title, secs]);
  say(`   (${secs.toFixed(1)} s)`);
  return result;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => "   " + r.map((c, i) => c.padEnd(widths[i])).join("  ")).join("\n");
}

function fleetRows(outputs: Record<string, { value: any }>): string[][] {
  const fleet = (outputs.fleet?.value ?? []) as Array<{ name: string; vmid: number; node: string; ipv4: string[]; memory: number; status: string; pending: string[] }>;
  return [
    ["NAME", "VMID", "NODE", "IPv4", "MEMORY", "STATUS", "PENDING UNTIL REBOOT"],
    ...fleet.map((vm) => [vm.name, String(vm.vmid), vm.node, vm.ipv4.join(", "), `${vm.memory} MiB`, vm.status, vm.pending.join(", ") || "-"]),
  ];
}

/** The resource changes of `pulumi preview --diff` and its summary, without the stack outputs. */
function previewDiff(stdout: string): string[] {
  const lines = stdout.split("\n");
  const outputs = lines.findIndex((l) => l.includes("--outputs:--"));
  const summary = lines.findIndex((l) => l.trim() === "Resources:");
  // Resource headers and the properties that change (the engine lists unchanged ones too).
  const changes = lines
    .slice(0, outputs > 0 ? outputs : summary)
    .filter((l) => (/pulumi-nodejs:dynamic\//.test(l) || /^\s*[~+-]+\s+[\w.]+\s*:/.test(l)) && !/pulumi:pulumi:Stack/.test(l));
  const counts = summary >= 0 ? lines.slice(summary).filter((l) => /^\s+\S/.test(l) && !/Duration/.test(l)) : [];
  return [...changes, "Resources:", ...counts];
}

const FLEET_SIZE = 3;

function changesOnly(summary: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(summary).filter(([op, n]) => op !== "same" && n > 0));
}

/** Fails the demo when the engine reports other changes than `expected` (ignoring unchanged resources). */
function expectChanges(what: string, summary: Record<string, number>, expected: Record<string, number>): void {
  const got = changesOnly(summary);
  if (JSON.stringify(Object.entries(got).sort()) !== JSON.stringify(Object.entries(expected).sort())) {
    throw new Error(`${what} reported ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
  }
}

async function main(): Promise<void> {
  say("pulumi-pve demo: a cloud-init VM fleet on Proxmox VE, declared with Pulumi");

  const sshKey = generateEd25519KeyPair();
  const sim = await step(`Starting a simulated 3-node Proxmox VE ${pveVersion} cluster, as freshly installed`, async () => {
    const s = await startSimulator({
      seed: 2026,
      pveVersion,
      // Real PVE timings (clone of a 10 GiB disk at a shared 1 GiB/s, boot to agent 8 s) at 1/20 speed.
      timeFactor: 0.05,
      cluster: { sshUsers: { root: { keys: [sshKey.public] } } },
    });
    say(`   API ${s.url}/api2/json; nodes ${s.nodes.map((n) => `${n.name} (ssh :${n.sshPort})`).join(", ")}`);
    return s;
  });

  const config: Record<string, ConfigEntry> = {
    "proxmox:endpoint": { value: sim.url },
    "proxmox:apiToken": { value: sim.rootToken, secret: true },
    "proxmox:caCert": { value: sim.caCert },
    "proxmox:sshUsername": { value: "root" },
    "proxmox:sshPrivateKey": { value: sshKey.private, secret: true },
    "proxmox:sshNodes": { value: JSON.stringify(Object.fromEntries(sim.nodes.map((n) => [n.name, { host: "127.0.0.1", port: n.sshPort }]))) },
    "proxmox:sshHostKeys": { value: JSON.stringify(Object.fromEntries(sim.nodes.map((n) => [n.name, n.hostKeyFingerprint]))) },
    "fleet:size": { value: String(FLEET_SIZE) },
    "fleet:memory": { value: "2048" },
  };

  const before = snapshotState(sim.sim);
  let stack: Stack | undefined;
  try {
    const ts = await step("Preparing a Pulumi project from the root Pulumi.yaml (local file backend, passphrase secrets)", async () => {
      const env = await pulumiEnv();
      const workDir = createRootProjectDir(env.tmpRoot);
      const envVars = Object.fromEntries(Object.entries(env.env).filter((e): e is [string, string] => e[1] !== undefined));
      const s = await LocalWorkspace.createOrSelectStack(
        { stackName: "demo", workDir },
        { pulumiHome: env.env.PULUMI_HOME, pulumiCommand: env.command, envVars, secretsProvider: "passphrase" },
      );
      await s.setAllConfig(config);
      say(`   project ${workDir}`);
      return { stack: s, workDir, env };
    });
    stack = ts.stack;

    const up = await step("pulumi up: user, token, roles, pool, template, snippet and fleet", async () => {
      const r = await stack!.up({ color: "never" });
      say(`   ${JSON.stringify(r.summary.resourceChanges)}`);
      return r;
    });
    say("\n" + table(fleetRows(up.outputs)));
    const fleet = (up.outputs.fleet?.value ?? []) as Array<{ name: string; ipv4: string[] }>;
    const unreachable = fleet.filter((vm) => vm.ipv4.length === 0).map((vm) => vm.name);
    if (fleet.length !== FLEET_SIZE || unreachable.length > 0) {
      throw new Error(`expected ${FLEET_SIZE} VMs with an IPv4 address; got ${fleet.length}, without an address: ${unreachable.join(", ") || "none"}`);
    }

    const previewed = await step("A change: 3 GiB of memory per VM and one more package in the user-data snippet", async () => {
      await stack!.setAllConfig({ "fleet:memory": { value: "3072" }, "fleet:extraPackages": { value: "htop" } });
      const preview = await stack!.preview({ diff: true, color: "never" });
      say(previewDiff(preview.stdout).map((l) => "   " + l).join("\n"));
      // The demo is also CI's check that the engine shows this change as it should.
      expectChanges("the preview", preview.changeSummary, { update: FLEET_SIZE, replace: 1 });
      return preview.changeSummary;
    });

    const applied = await step("pulumi up: apply the change", async () => {
      const r = await stack!.up({ color: "never" });
      say(`   ${JSON.stringify(r.summary.resourceChanges)}`);
      expectChanges("pulumi up", r.summary.resourceChanges ?? {}, changesOnly(previewed));
      return r;
    });
    say("\n" + table(fleetRows(applied.outputs)));

    const noop = await step("pulumi preview: nothing left to change", () => stack!.preview({ color: "never" }));
    say(`   ${JSON.stringify(noop.changeSummary)}`);
    expectChanges("the no-op preview", noop.changeSummary, {});

    if (keep) {
      say(`\n--keep: the stack and the simulator stay up. Project: ${ts.workDir}; there, run pulumi with`);
      say(`   PATH=${ts.env.pulumiBin}:$PATH PULUMI_CONFIG_PASSPHRASE=${ts.env.env.PULUMI_CONFIG_PASSPHRASE} PULUMI_BACKEND_URL=${ts.env.env.PULUMI_BACKEND_URL}`);
      say(`   API ${sim.url}  root token ${sim.rootToken}`);
      say("   Ctrl-C to stop the simulator.");
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
    }

    await step("pulumi destroy: remove everything", async () => {
      const r = await stack!.destroy({ color: "never" });
      say(`   ${JSON.stringify(r.summary.resourceChanges)}`);
    });
    const left = diffSnapshots(before, snapshotState(sim.sim));
    say(`   left on the cluster: ${left.length === 0 ? "nothing (users, tokens, ACLs, pools, VMs, snippets as before)" : "\n" + left.map((l) => "     " + l).join("\n")}`);
    if (left.length > 0) throw new Error(`destroy left ${left.length} thing(s) behind`);
  } finally {
    if (stack && !keep) await stack.workspace.removeStack(stack.name, { force: true }).catch(() => undefined);
    await sim.stop();
    await disposePulumiEnv();
  }

  say("\n== Summary");
  say(table([["STEP", "SECONDS"], ...timings.map(([t, s]) => [t, s.toFixed(1)])]));
  say(`   total ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err) => {
  process.stderr.write(`\ndemo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
