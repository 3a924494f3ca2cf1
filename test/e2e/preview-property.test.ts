/**
 * The property behind "a preview that is the plan" (issue 16), through the real engine against
 * one simulator: for the full-stack, fleeting, machine-controller and quickstart programs, each
 * mutable input of each resource is changed (one per resource per round, a few pairs; the
 * changes are listed in preview-property-plan.ts), and for every round
 *   - the steps `pulumi preview` announces (URN, operation, replace reasons) are the steps the
 *     `pulumi up` that follows takes;
 *   - after the up, `pulumi preview --expect-no-changes` passes and `pulumi refresh
 *     --expect-no-changes` changes nothing.
 * The four programs run side by side, one stack each. The table of figures is printed (and
 * written to $PULUMI_PVE_PROPERTY_TABLE when set); the README reports it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { startSimulator, type RunningSimulator } from "../simulator";
import { compileToDist, createTestStack, disposePulumiEnv, removeStack, type TestStack } from "./harness";
import { providerSources, proxmoxConfig, sshSetup } from "./engine-lifecycle-support";
import { changes, stepsOf } from "./preview-diff";
import { PLANS, REFUSALS, inputsChangedAt, mutationsAt, roundsOf, type ProgramPlan } from "./preview-property-plan";
import { PveClient } from "../../provider/proxmox/client";

jest.setTimeout(20 * 60 * 1000);
afterAll(disposePulumiEnv);

interface Row {
  example: string;
  /** 0: a refusal (REFUSALS), after the rounds. */
  round: number;
  inputs: string[];
  previewed: string[];
  done: string[];
  /** A refusal: preview and up failed with the same words. */
  refused?: boolean;
  problem?: string;
}

/** The distinct `error:` lines of a failed operation's output. */
function errorLines(err: unknown): string {
  const text = String((err as Error).message).split(" err?: ")[0];
  return [...new Set(text.split("\n").filter((l) => /error:/.test(l)).map((l) => l.trim()))].join("\n    ").slice(0, 3000) || text.slice(-2000);
}

const FLEETING_PASSWORD = "Fleeting-Pass-0ne";

describe("preview announces exactly the steps up takes (property test)", () => {
  const ssh = sshSetup();
  let sim: RunningSimulator;
  const stacks: TestStack[] = [];
  const rows: Row[] = [];
  const started = Date.now();

  beforeAll(async () => {
    compileToDist(providerSources());
    sim = await startSimulator({ seed: 171, cluster: ssh.cluster });
    const api = new PveClient({ endpoint: sim.url, credentials: { kind: "token", tokenId: sim.rootToken.split("=")[0], secret: sim.rootToken.split("=")[1] }, tls: { caCert: sim.caCert } });
    // what some changes refer to: two templates, a group, a pool
    for (const vmid of [9000, 9001]) {
      await api.qemu.createAndWait("pve1", vmid, { name: `tpl${vmid}`, memory: 1024, scsi0: "local-lvm:4", ide2: "local-lvm:cloudinit", net0: "virtio,bridge=vmbr0", agent: "1", ipconfig0: "ip=dhcp" });
      await api.qemu.templateAndWait("pve1", vmid);
    }
    await api.access.createGroup("pp-ops");
    await api.pools.create("pp-pool");
    await api.storage.update("local", { content: "iso,vztmpl,backup,snippets,import" });
  });

  afterAll(async () => {
    for (const ts of stacks) await ts.stack.destroy().catch(() => undefined);
    for (const ts of stacks) await removeStack(ts);
    await sim?.stop();
  });

  async function run(plan: ProgramPlan): Promise<void> {
    const ts = await createTestStack({
      programDir: path.join(__dirname, "fixtures", "property"),
      stackName: `pp-${plan.example}-${process.pid}`,
      simulator: sim,
      config: {
        ...proxmoxConfig(sim, ssh),
        ...plan.config,
        "pp:example": { value: plan.example },
        ...(plan.example === "fleeting" ? { "fleeting:password": { value: FLEETING_PASSWORD, secret: true } } : {}),
      },
      verboseLogs: false,
    });
    stacks.push(ts);
    const stack: Stack = ts.stack;
    await stack.up();
    for (let k = 1; k <= roundsOf(plan); k++) {
      const row: Row = { example: plan.example, round: k, inputs: inputsChangedAt(plan, k), previewed: [], done: [] };
      rows.push(row);
      try {
        await stack.setConfig("pp:mutations", { value: JSON.stringify(mutationsAt(plan, k)) });
        const pe: EngineEvent[] = [];
        await stack.preview({ onEvent: (e) => pe.push(e) });
        row.previewed = stepsOf(pe);
        const ue: EngineEvent[] = [];
        await stack.up({ onEvent: (e) => ue.push(e) });
        row.done = stepsOf(ue);
        await stack.preview({ expectNoChanges: true });
        await stack.refresh({ expectNoChanges: true });
      } catch (err) {
        row.problem = errorLines(err);
        // what a preview after it still proposes, by resource and property
        if (/no changes were expected/.test(row.problem)) row.problem += `\n  still proposed: ${JSON.stringify(changes((await stack.preview({ diff: true }).catch(() => ({ stdout: "" }))).stdout))}`;
        return;
      }
    }
    // changes PVE refuses with these credentials: the preview fails as `up` does, nothing changes
    const final = mutationsAt(plan, roundsOf(plan));
    for (const refusal of REFUSALS.filter((r) => r.example === plan.example)) {
      const row: Row = { example: plan.example, round: 0, inputs: [`${refusal.key.split("::")[0]}.${Object.keys(refusal.change).join("+")} (refused)`], previewed: [], done: [] };
      rows.push(row);
      await stack.setConfig("pp:mutations", { value: JSON.stringify({ ...final, [refusal.key]: { ...final[refusal.key], ...refusal.change } }) });
      const pv = await stack.preview().then(() => "preview passed", errorLines);
      const up = await stack.up().then(() => "up passed", errorLines);
      const said = (text: string) => text.split("\n").find((l) => refusal.says.test(l))?.replace(/^.*?error: /, "");
      row.refused = said(pv) !== undefined && said(pv) === said(up);
      if (!row.refused) row.problem = `preview: ${pv}\n  up: ${up}`;
      await stack.setConfig("pp:mutations", { value: JSON.stringify(final) });
      await stack.preview({ expectNoChanges: true }).catch((e: unknown) => (row.problem = `after the refusal: ${errorLines(e)}`));
    }
  }

  it("for every change of every input, in four programs side by side", async () => {
    await Promise.all(PLANS.map((plan) => run(plan)));
    const mismatches = rows.filter((r) => r.problem || r.previewed.join("\n") !== r.done.join("\n"));
    const line = (label: string, mine: Row[]) => {
      const rounds = mine.filter((r) => r.round > 0);
      const inputs = rounds.reduce((n, r) => n + r.inputs.length, 0);
      const steps = rounds.reduce((n, r) => n + r.done.length, 0);
      const refused = mine.filter((r) => r.round === 0);
      return `| ${label} | ${rounds.length} | ${inputs} | ${steps} | ${refused.filter((r) => r.refused).length}/${refused.length} | ${mine.filter((r) => mismatches.includes(r)).length} |`;
    };
    const table = [
      "| program | rounds | inputs changed | steps compared | refused alike | mismatches |",
      "| --- | --- | --- | --- | --- | --- |",
      ...PLANS.map((p) => line(p.example, rows.filter((r) => r.example === p.example))),
      line("**all**", rows),
      "",
      `distinct inputs changed: ${new Set(rows.filter((r) => r.round > 0).flatMap((r) => r.inputs)).size} (${[...new Set(rows.flatMap((r) => r.inputs.map((i) => i.split(".")[0])))].length} resource types)`,
      "",
      `(${Math.round((Date.now() - started) / 1000)} s)`,
    ].join("\n");
    process.stderr.write(`${table}\n`);
    if (process.env.PULUMI_PVE_PROPERTY_TABLE) fs.writeFileSync(process.env.PULUMI_PVE_PROPERTY_TABLE, `${table}\n\n${JSON.stringify(rows, null, 1)}\n`);
    for (const m of mismatches) process.stderr.write(`MISMATCH ${m.example} round ${m.round} (${m.inputs.join(", ")}):\n  previewed: ${m.previewed.join("; ")}\n  done:      ${m.done.join("; ")}\n${m.problem ? `  problem: ${m.problem}\n` : ""}`);
    expect(mismatches.map((m) => `${m.example} round ${m.round}`)).toEqual([]);
    expect(rows).toHaveLength(PLANS.reduce((n, p) => n + roundsOf(p), 0) + REFUSALS.length);
  });
});
