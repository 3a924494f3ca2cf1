// The benchmark's plumbing: a simulator with the bench's latency model, the template, the
// fleet stack (scripts/bench/fleet) through the real engine, and each engine operation measured
// (wall time, and the API requests it caused from the simulator's request log).

import * as path from "node:path";
import type { Stack } from "@pulumi/pulumi/automation";
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

export interface Measured<T> {
  value: T;
  wallMs: number;
  /** sim.now() when the operation began. */
  from: number;
  entries: ReturnType<typeof apiEntries>;
}

export class Bench {
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
    return createTestStack({
      programDir: path.join(REPO_ROOT, "dist", "scripts", "bench", "fleet"),
      stackName: name,
      projectName: "pve-bench",
      config,
    });
  }

  /** Runs `fn` and returns its wall time and the API requests it caused. */
  async measured<T>(fn: () => Promise<T>): Promise<Measured<T>> {
    const from = this.s.sim.requestLog.length;
    const since = this.s.sim.now();
    const t0 = Date.now();
    const value = await fn();
    const wallMs = Date.now() - t0;
    return { value, wallMs, from: since, entries: apiEntries(this.s.sim.requestLog.slice(from)) };
  }

  async preview(stack: Stack) {
    return this.measured(() => stack.preview());
  }

  async refresh(stack: Stack, parallel?: number) {
    return this.measured(() => stack.refresh(parallel ? { parallel } : {}));
  }

  async destroy(stack: Stack, parallel?: number) {
    const r = await this.measured(() => stack.destroy(parallel ? { parallel } : {}));
    if (r.value.summary.result !== "succeeded") throw new Error(`pulumi destroy: ${r.value.summary.result}`);
    return r;
  }
}
