// Where a VmClone is cloned: on its `node`, wherever the template is.
//
// PVE clones onto another node (`target`) only when every disk of the template is on shared
// storage: `can't clone VM to node 'X' (VM uses local storage)`. A clone whose node differs from
// its template's (declared so, or moved there since, and now replaced with a new template) is
// then cloned beside the template and migrated, offline, before it is configured and started:
// what the user would otherwise do by hand, and what the preview of the create or replacement
// announced. A migration PVE refuses too (a linked clone on a local directory storage names its
// base) fails with both reasons, and the half-made VM is destroyed.

import { isCloneRefusedLocalStorage, isCloneRefusedNonSharedStorage } from "../../proxmox/errors";
import { providerLogger } from "../context";
import { cloneWithVmid, type CloneRequest } from "./clone";
import { cloneOrigin } from "./clone-origin";
import type { CloneInputs } from "./clone-shape";
import { composeDescription } from "./config-map";
import { destroyVm, migrateVm } from "./power";
import type { VmContext } from "./vm-context";

/** What the error messages name. */
export interface CloneSubject {
  templateVmid: number;
  templateNode: string;
  storage?: string;
}

/** Clones the VM `inputs` declare onto `node`, named and marked (the marker records its origin). */
export async function cloneFor(ctx: VmContext, inputs: CloneInputs, node: string): Promise<{ vmid: number }> {
  return cloneOnto(ctx, {
    templateNode: inputs.templateNode,
    templateVmid: inputs.templateVmid,
    vmid: inputs.vmid,
    vmidRange: inputs.vmidRange,
    params: {
      name: inputs.name,
      description: composeDescription(inputs.description, inputs.resourceName, inputs.stack, cloneOrigin(inputs)),
      full: inputs.full,
      pool: inputs.pool,
      storage: inputs.full ? inputs.storage : undefined,
    },
  }, inputs, node);
}

export async function cloneOnto(ctx: VmContext, req: CloneRequest, subject: CloneSubject, node: string): Promise<{ vmid: number }> {
  const target = node !== req.templateNode ? node : undefined;
  try {
    return await cloneWithVmid(ctx, { ...req, params: { ...req.params, target } });
  } catch (err) {
    if (target === undefined || !isCloneRefusedLocalStorage(err)) throw explainCloneRefusal(err, subject, node);
  }
  providerLogger.info(`template ${subject.templateVmid} is on storage local to node '${subject.templateNode}': cloning there, then migrating the new VM to '${node}'`);
  const { vmid } = await cloneWithVmid(ctx, { ...req, params: { ...req.params, target: undefined } });
  try {
    await migrateVm(ctx, req.templateNode, vmid, node, false);
  } catch (err) {
    await destroyVm(ctx, vmid, req.templateNode, { shutdownTimeoutSeconds: 0 }).catch(() => undefined);
    throw new Error(
      `cannot place the clone of template ${subject.templateVmid} on node '${node}': the template's disks are on storage local to '${subject.templateNode}', so VM ${vmid} was cloned there, and migrating it to '${node}' failed (${messageOf(err)}); it was destroyed again. ` +
        `Set node to '${subject.templateNode}', or build the template on shared storage (or on LVM-thin, whose linked clones can migrate).`,
      { cause: err },
    );
  }
  return { vmid };
}

/** PVE's refusal to clone onto another node, said in terms of the resource's properties. */
export function explainCloneRefusal(err: unknown, subject: CloneSubject, node: string): unknown {
  const why = messageOf(err);
  if (isCloneRefusedNonSharedStorage(err)) {
    return new Error(
      `cannot clone VM to node '${node}' with storage '${subject.storage}': that storage is not shared, so node '${subject.templateNode}' cannot write to it for '${node}' (${why}). ` +
        `Set storage to a shared storage, or clone on node '${subject.templateNode}' and change node afterwards (a migration).`,
      { cause: err },
    );
  }
  return err;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
