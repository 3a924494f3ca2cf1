import { formatWithSpec, joinPropertyString, parseWithSpec, splitPropertyString, type PropertyExtras, type PropertySpec } from "./propertyString";

/** `agent`: `1`, `enabled=1,fstrim_cloned_disks=1,type=virtio`. Booleans accept 1/on/yes/true and 0/off/no/false. */
export interface AgentConfig extends PropertyExtras {
  enabled?: boolean;
  "freeze-fs"?: boolean;
  fstrim_cloned_disks?: boolean;
  type?: "virtio" | "isa" | string;
}

const SPEC: PropertySpec = {
  defaultKey: "enabled",
  fields: { enabled: "boolean", "freeze-fs": "boolean", fstrim_cloned_disks: "boolean", type: "string" },
};

export function parseAgent(text: string | number): AgentConfig {
  return parseWithSpec(splitPropertyString(String(text)), SPEC) as AgentConfig;
}

export function formatAgent(agent: AgentConfig): string {
  return joinPropertyString(formatWithSpec(agent, SPEC));
}
