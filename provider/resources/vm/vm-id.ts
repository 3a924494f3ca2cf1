// The id of a Template or a VmClone: `<node>/<vmid>` (a bare `<vmid>` is read too).

export function parseVmId(id: string, resource = "resource"): { node?: string; vmid: number } {
  const m = /^(?:([^/]+)\/)?(\d+)$/.exec(id);
  if (!m) throw new Error(`${resource} id '${id}' is not valid: expected <node>/<vmid>, e.g. pve1/123`);
  return { ...(m[1] !== undefined ? { node: m[1] } : {}), vmid: Number(m[2]) };
}
