/**
 * Reading what the engine shows and does, for the suites that compare previews with `up`s:
 * the blocks of `pulumi preview --diff` output, and the steps of an operation from its engine
 * events (URN, operation, the properties a replacement names).
 */
import type { EngineEvent } from "@pulumi/pulumi/automation";

/** One resource's block in `pulumi preview --diff` output: its step and its top-level property
 *  lines, by marker (`~` update, `+` add, `-` delete, `` unchanged). */
export interface DiffBlock {
  type: string;
  name: string;
  op: string;
  props: Record<string, { marker: string; line: string }>;
}

export function parseDiff(stdout: string): DiffBlock[] {
  const blocks: Array<DiffBlock & { col: number }> = [];
  let cur: (DiffBlock & { col: number }) | undefined;
  for (const raw of stdout.split("\n")) {
    const line = raw.replace(/\x1b\[[0-9;]*m/g, "");
    const header = /^(\s*)(\+-|~|\+|-|-\+)?\s*pulumi-nodejs:dynamic\/proxmox:(\w+): \(([\w-]+)\)/.exec(line);
    if (header) {
      cur = { type: header[3], name: "", op: header[4], props: {}, col: header[1].length };
      blocks.push(cur);
      continue;
    }
    if (/^\S/.test(line) || /^\s*pulumi:pulumi:Stack/.test(line) || /^\s*[~+-]?\s*pulumi:pulumi:Stack/.test(line)) {
      cur = undefined;
      continue;
    }
    if (!cur) continue;
    const urn = /\[urn=.*::([^:\]]+)\]/.exec(line);
    if (urn) {
      cur.name = urn[1];
      continue;
    }
    const prop = /^(\s*)(\+-|[~+-])?(\s*)([A-Za-z_]\w*)\s*:/.exec(line);
    if (!prop) continue;
    const nameCol = prop[1].length + (prop[2]?.length ?? 0) + prop[3].length;
    if (nameCol === cur.col + 4) cur.props[prop[4]] = { marker: prop[2] ?? "", line: line.trim() };
  }
  return blocks.map(({ col: _col, ...b }) => b);
}

/** The changed (marked) top-level properties of each resource with a step other than same. */
export function changes(stdout: string): Record<string, { op: string; changed: Record<string, string> }> {
  const out: Record<string, { op: string; changed: Record<string, string> }> = {};
  for (const b of parseDiff(stdout)) {
    if (b.op === "same" || b.op === "refresh") continue;
    const changed: Record<string, string> = {};
    for (const [k, p] of Object.entries(b.props)) if (p.marker) changed[k] = p.line;
    out[`${b.type} ${b.name}`] = { op: b.op, changed };
  }
  return out;
}

/** One step of an operation: `<type> <name> <op>[ (<replace keys>)]`. */
export type Step = string;

/** The steps an operation took (or a preview announced), from its engine events, sorted: every
 *  step but `same` (and the engine's `read`/`refresh` steps of a --refresh), the stack and the
 *  default provider excluded (its inputs are the whole stack config, so it updates whenever the
 *  config does, in previews and `up`s alike). */
export function stepsOf(events: EngineEvent[]): Step[] {
  const out: Step[] = [];
  for (const e of events) {
    const m = e.resourcePreEvent?.metadata;
    if (!m || m.type === "pulumi:pulumi:Stack" || m.type.startsWith("pulumi:providers:") || ["same", "read", "refresh"].includes(m.op)) continue;
    const name = m.urn.split("::").pop();
    const type = m.type.replace(/^pulumi-nodejs:dynamic\/proxmox:/, "");
    const keys = m.op === "replace" || m.op === "create-replacement" ? ` (${[...(m.keys ?? [])].sort().join(", ")})` : "";
    out.push(`${type} ${name} ${m.op}${keys}`);
  }
  return out.sort();
}
