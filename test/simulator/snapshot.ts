// Everything a stack can leave behind on the simulated cluster, as plain JSON, so a test (or
// the demo) can compare the cluster before `pulumi up` with the cluster after `pulumi destroy`.

import * as fs from "fs";
import * as path from "path";
import { coreState } from "./backdoor";
import type { Sim } from "./sim";
import type { Cluster } from "./state/cluster";

export interface StateSnapshot {
  access: Record<string, unknown>;
  vms: Array<{ vmid: number; node: string; name?: string }>;
  ha: string[];
  storages: string[];
  volumes: string[];
  files: string[];
}

export function snapshotState(sim: Sim): StateSnapshot {
  const { clockOffsetMs: _clock, ...access } = coreState(sim);
  const c = sim.ext.cluster as Cluster;
  const volumes: string[] = [];
  const files: string[] = [];
  for (const s of c.storages.values()) {
    for (const node of c.nodeNames()) {
      if (!c.storageOnNode(s, node)) continue;
      for (const v of c.volumeMap(s.storage, node).values()) volumes.push(`${node}/${v.volid}`);
      if (s.path) files.push(...listFiles(c.hostPath(node, s.path)).map((f) => `${node}:${path.posix.join(s.path!, f)}`));
    }
  }
  return {
    access,
    vms: [...c.vms.values()].map((v) => ({ vmid: v.vmid, node: v.node, name: v.config.current.name })).sort((a, b) => a.vmid - b.vmid),
    ha: [...c.ha.keys()].sort(),
    storages: [...c.storages.keys()].sort(),
    volumes: [...new Set(volumes)].sort(),
    files: [...new Set(files)].sort(),
  };
}

/** What `after` has that `before` had not, and the reverse, one line per difference. */
export function diffSnapshots(before: StateSnapshot, after: StateSnapshot): string[] {
  const flat = (s: StateSnapshot) => new Set(flatten(s, ""));
  const a = flat(before);
  const b = flat(after);
  return [...[...b].filter((x) => !a.has(x)).map((x) => `+ ${x}`), ...[...a].filter((x) => !b.has(x)).map((x) => `- ${x}`)];
}

function flatten(value: unknown, prefix: string): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => flatten(v, prefix));
  if (value !== null && typeof value === "object") {
    const id = (value as any).userid ?? (value as any).poolid ?? (value as any).roleid ?? (value as any).groupid ?? (value as any).vmid;
    if (id !== undefined) return [`${prefix}${JSON.stringify(value)}`];
    return Object.entries(value).flatMap(([k, v]) => flatten(v, `${prefix}${k}: `));
  }
  return [`${prefix}${JSON.stringify(value)}`];
}

function listFiles(dir: string, rel = ""): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(path.join(dir, e.name), path.posix.join(rel, e.name)) : [path.posix.join(rel, e.name)],
  );
}
