// What a Template refers to must exist: its node, its storages, its pool, an adopted template.

import { known, type InputChecker } from "../check";
import { sameValue } from "../diff";
import { checkReferencesOnCluster, type Reference } from "../vm/references";

/** The inputs the check reads (TemplateInputs in ../template.ts fits it). */
export interface TemplateRefs {
  node: string;
  storage: string;
  adopt: boolean;
  image?: { storage?: string };
  vmid?: number;
  pool?: string;
}

/**
 * The node, the disks' storage, the image's storage and the pool must exist (and the storages be
 * on the node, holding `images` and `import` content); an adopted vmid must be a template on the
 * node. Asked read-only (the cached cluster view VmClone's check uses, GET /pools?poolid=), only
 * for references that changed against the previous inputs; unknown values pass.
 */
export async function checkTemplateReferences(c: InputChecker, before: Partial<TemplateRefs>, out: TemplateRefs, given: Record<string, any>): Promise<void> {
  const refs: Reference[] = [];
  const node = known(out.node) ? out.node : undefined;
  const nodeChanged = !sameValue(before.node, out.node);
  if (node !== undefined && nodeChanged) refs.push({ kind: "node", property: "node", node });
  if (!out.adopt) {
    if (known(out.storage) && (nodeChanged || !sameValue(before.storage, out.storage))) {
      refs.push({ kind: "storage", property: "storage", storage: out.storage, node, content: "images", note: given.storage === undefined ? "(storage defaults to local-lvm: set it to the storage for the template's disks.)" : undefined });
    }
    const image = out.image;
    if (image && typeof image === "object") {
      const storage = image.storage ?? "local";
      const previous = before.image && typeof before.image === "object" ? (before.image.storage ?? "local") : undefined;
      if (known(storage) && (nodeChanged || previous !== storage)) {
        refs.push({ kind: "storage", property: "image.storage", storage, node, content: "import", note: image.storage === undefined ? "(image.storage defaults to local: set it to a storage with content 'import'.)" : undefined });
      }
    }
  }
  if (out.adopt && known(out.vmid) && (nodeChanged || !sameValue(before.vmid, out.vmid))) {
    refs.push({ kind: "template", property: "vmid", vmid: Number(out.vmid), node, nodeProperty: "node", missingHint: "adopt takes an existing template: fix vmid, or build one with image (adopt: false)." });
  }
  if (known(out.pool) && !sameValue(before.pool, out.pool)) refs.push({ kind: "pool", property: "pool", pool: out.pool as string });
  await checkReferencesOnCluster(c, refs);
}
