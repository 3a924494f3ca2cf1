// The benchmark's plumbing: a simulator with the bench's latency model, the template, the
// fleet stack (scripts/bench/fleet) through the real engine, and each engine operation measured
// (wall time, and the API requests it caused from the simulator's request log).

import * as fs from "node:fs";
import * as path from "node:path";
import type { PulumiCommand, Stack } from "@pulumi/pulumi/automation";
import { getClient, type PveClient } from "../../provider/proxmox";
import { splitApiToken } from "../../provider/config";
import { startSimulator, type RunningSimulator } from "../../test/simulator";
import { createTestStack, REPO_ROOT, type TestStack } from "../../test/e2e/harness";
import { apiEntries } from "./measure";
import { MODEL } from "./model";

const GiB = 1024 ** 3;

/** The cloud image of the late-agents template and the guest's package install time. */
export const IMAGE = "debian-12-genericcloud-amd64.qcow2";
export const PACKAGE_INSTALL_MS = 40_000;

export function say(line = ""): void {
  process.stdout.write(line + "\n");
}

export function benchSimulator(timeFactor: number, size: number, seed: number): Promise<RunningSimulator> {
  return startSimulator({
    seed,
    timeFactor,
    cluster: {
      ssh: false,
      capacity: { "local-lvm": (size + 10) * MODEL.diskBytes + 100 * GiB },
      latency: {
        forkMs: MODEL.forkMs,
        cloneBaseMs: MODEL.cloneBaseMs,
        storageBandwidth: MODEL.storageBandwidth,
        startMs: MODEL.startMs,
        bootToAgentMs: MODEL.bootToAgentMs,
      },
      guest: { packageInstallMs: PACKAGE_INSTALL_MS },
    },
  });
}

/** The bench's own API client (root token), for the template. */
export function benchClient(s: RunningSimulator): PveClient {
  const token = splitApiToken(s.rootToken)!;
  return getClient({ endpoint: s.url, credentials: { kind: "token", ...token }, tls: { caCert: s.caCert } });
}

/** VM `vmid` on pve1 made a template: a blank 10 GiB scsi0 (a prepared image that ships the
 *  agent), or one imported from the Debian cloud image (no agent). */
export async function makeTemplate(api: PveClient, vmid: number, fromImage = false): Promise<void> {
  await api.qemu.createAndWait("pve1", vmid, {
    name: `tpl${vmid}`,
    memory: 2048,
    cores: 2,
    scsihw: "virtio-scsi-pci",
    scsi0: fromImage ? `local-lvm:0,import-from=local:import/${IMAGE}` : `local-lvm:${MODEL.diskBytes / GiB}`,
    ide2: "local-lvm:cloudinit",
    boot: "order=scsi0",
    serial0: "socket",
    vga: "serial0",
    net0: "virtio,bridge=vmbr0",
    agent: "1",
  });
  await api.qemu.templateAndWait("pve1", vmid);
}

export interface StackSettings {
  /** proxmox:maxConcurrentTasks / proxmox:maxConcurrentRequests (unset: the provider's default). */
  maxTasks?: number;
  maxRequests?: number;
}

/** One `pulumi` CLI process the Automation API ran: its subcommand, spawn and exit (Date.now()). */
export interface CliRun {
  command: string;
  start: number;
  end: number;
}

const cliRuns: CliRun[] = [];
const watchedCommands = new WeakSet<object>();

/**
 * Records every CLI process a PulumiCommand runs. `stack.up()`, `destroy()`, `refresh()` run the
 * operation's process (`pulumi destroy ...`: the engine operation a CLI user runs) and then a
 * second one for the result's summary (`pulumi stack history --json --show-secrets --page-size 1`,
 * Stack.info() in @pulumi/pulumi/automation/stack.js), which a CLI user does not pay: the bench
 * reports the two apart.
 */
export function watchCli(command: PulumiCommand): void {
  if (watchedCommands.has(command)) return;
  watchedCommands.add(command);
  // run() is the one method every Automation API operation calls (not in the SDK's typings)
  const cmd = command as unknown as { run: (args: string[], ...rest: unknown[]) => Promise<unknown> };
  const original = cmd.run.bind(command);
  cmd.run = async (args: string[], ...rest: unknown[]) => {
    const run: CliRun = { command: args.filter((a) => !a.startsWith("-")).slice(0, 2).join(" "), start: Date.now(), end: NaN };
    cliRuns.push(run);
    try {
      return await original(args, ...rest);
    } finally {
      run.end = Date.now();
    }
  };
}

export interface Measured<T> {
  value: T;
  wallMs: number;
  /** sim.now() when the operation began. */
  from: number;
  entries: ReturnType<typeof apiEntries>;
  /** Requests logged during the operation that began before it (a previous operation's). */
  early: ReturnType<typeof apiEntries>;
  /** The CLI processes the call ran, in order (the operation's own first). */
  cli: CliRun[];
  /** The engine's verbose log of the operation (`--engine-log`), JSON lines. */
  engineLog?: string;
}

export class Bench {
  /** Capture the engine's verbose log of destroy and refresh (costs CPU: a trace, not a figure). */
  engineLog = false;

  constructor(
    readonly s: RunningSimulator,
    readonly settings: StackSettings = {},
  ) {}

  async stack(name: string, size: number, extra: Record<string, { value: string }> = {}): Promise<TestStack> {
    const config: Record<string, { value: string; secret?: boolean }> = {
      "proxmox:endpoint": { value: this.s.url },
      "proxmox:apiToken": { value: this.s.rootToken, secret: true },
      "proxmox:caCert": { value: this.s.caCert },
      "bench:size": { value: String(size) },
      ...extra,
    };
    if (this.settings.maxTasks) config["proxmox:maxConcurrentTasks"] = { value: String(this.settings.maxTasks) };
    if (this.settings.maxRequests) config["proxmox:maxConcurrentRequests"] = { value: String(this.settings.maxRequests) };
    const ts = await createTestStack({
      programDir: path.join(REPO_ROOT, "dist", "scripts", "bench", "fleet"),
      stackName: name,
      projectName: "pve-bench",
      config,
    });
    watchCli(ts.env.command);
    return ts;
  }

  /** Runs `fn` and returns its wall time, the CLI processes it ran and the API requests it caused. */
  async measured<T>(fn: () => Promise<T>): Promise<Measured<T>> {
    const from = this.s.sim.requestLog.length;
    const runs = cliRuns.length;
    const since = this.s.sim.now();
    const t0 = Date.now();
    const value = await fn();
    const wallMs = Date.now() - t0;
    // the log is written as requests end: one still running from the operation before (a guest
    // agent call left in flight when its VM's wait was over, 3 s on a pvedaemon worker) is that
    // operation's, and is left out here (`early`, printed for a destroy)
    const logged = apiEntries(this.s.sim.requestLog.slice(from));
    return { value, wallMs, from: since, entries: logged.filter((e) => e.time >= since), early: logged.filter((e) => e.time < since), cli: cliRuns.slice(runs) };
  }

  async preview(stack: Stack) {
    return this.measured(() => stack.preview());
  }

  /** Options of a traced operation: the engine's JSON log on stderr (`--logtostderr -v=9`). */
  traced(parallel: number | undefined, log: string[]) {
    return {
      ...(parallel ? { parallel } : {}),
      ...(this.engineLog ? { logToStdErr: true, logVerbosity: 9, onError: (x: string) => void log.push(x) } : {}),
    };
  }

  async refresh(stack: Stack, parallel?: number) {
    const log: string[] = [];
    const r = await this.measured(() => stack.refresh(this.traced(parallel, log)));
    return { ...r, ...(this.engineLog ? { engineLog: log.join("") } : {}) };
  }

  async destroy(stack: Stack, parallel?: number) {
    const log: string[] = [];
    const r = await this.measured(() => stack.destroy(this.traced(parallel, log)));
    if (r.value.summary.result !== "succeeded") throw new Error(`pulumi destroy: ${r.value.summary.result}`);
    return { ...r, ...(this.engineLog ? { engineLog: log.join("") } : {}) };
  }
}

/**
 * The phases of one engine operation from its verbose log (`--engine-log`; Pulumi CLI 3.276's
 * JSON log lines, `time` and `msg`), as ms from the Automation API call: CLI running (its first
 * line), state and secrets loaded (`*** Starting <Op>`), provider plugin launched and answering
 * (`newPlugin(): Launching`, first `GetPluginInfo()`), first and last VmClone call into the
 * provider (`Provider[...].Create(` / `.Delete(` / `.Read(` executing, success; the spread of
 * the calls' starts is the engine's per-resource work, a checkpoint written before each), the
 * engine done
 * (`*** <Op> complete ***`). With the simulator's first request and last answer and the CLI's
 * exit, this splits the wall time into engine and provider time.
 */
export function enginePhases(log: string, t0: number, method: "Create" | "Delete" | "Read"): Record<string, number> {
  const out: Record<string, number> = {};
  const first = (key: string, ms: number) => {
    if (!(key in out)) out[key] = ms;
  };
  for (const line of log.split("\n")) {
    if (!line.startsWith("{")) continue;
    let j: { time?: string; msg?: string };
    try {
      j = JSON.parse(line);
    } catch {
      continue;
    }
    if (!j.time || typeof j.msg !== "string") continue;
    const ms = Date.parse(j.time) - t0;
    const m = j.msg;
    first("cliFirstLine", ms);
    if (/^\*\*\* Starting \w+\(preview=false\)/.test(m)) first("stateLoaded", ms);
    if (m.startsWith("newPlugin(): Launching plugin")) first("pluginLaunch", ms);
    if (/\]\.GetPluginInfo\(\) executing/.test(m)) first("pluginUp", ms);
    // Delete(urn,id) / Read(id,urn)
    if (new RegExp(`\\]\\.${method}\\([^)]*VmClone[^)]*\\) executing`).test(m)) {
      first("firstCall", ms);
      out.lastCallStart = ms;
    }
    if (new RegExp(`\\]\\.${method}\\([^)]*VmClone[^)]*\\) success`).test(m)) out.lastCallEnd = ms;
    if (/^\*\*\* \w+\(preview=false\) complete \*\*\*/.test(m)) first("engineDone", ms);
  }
  return out;
}

/** Keeps a traced operation's engine log for a later look. */
export function saveEngineLog(label: string, log: string | undefined): string | undefined {
  if (!log) return undefined;
  const file = path.join(fs.mkdtempSync("/tmp/pve-bench-engine-"), `${label.replace(/[^a-z0-9]+/gi, "-")}.log`);
  fs.writeFileSync(file, log);
  return file;
}
