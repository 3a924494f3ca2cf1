// A VmClone given only `templateVmid`: the template's node is found, not required.
//
// check() fills `templateNode` in (so a preview knows where the clone is made, and `node`
// defaults to it): the previous inputs' node when the template is the same one, else the node the
// cluster view shows it on (the cached `GET /cluster/resources` the reference checks read anyway).
// When the credentials cannot see it there, check() leaves it out (a warning says why, or the
// reference check reports a missing template) and create() looks once more before it clones.

import { isUnknown } from "../diff";
import { locateVm } from "./lookup";
import type { VmContext } from "./vm-context";
import { findTemplateNode } from "./references";

export async function templateNodeFor(olds: { templateVmid?: unknown; templateNode?: unknown } | undefined, templateVmid: number): Promise<string | undefined> {
  if (olds?.templateVmid === templateVmid && typeof olds.templateNode === "string" && !isUnknown(olds.templateNode)) return olds.templateNode;
  return findTemplateNode(templateVmid);
}

/** create(): the node to clone from. */
export async function requireTemplateNode(ctx: VmContext, inputs: { templateVmid: number; templateNode?: string }): Promise<string> {
  if (inputs.templateNode !== undefined) return inputs.templateNode;
  const where = await locateVm(ctx, inputs.templateVmid);
  if (!where) {
    throw new Error(
      `templateVmid: there is no VM ${inputs.templateVmid} these credentials can see, so the node to clone from is unknown. ` +
        `Fix templateVmid, or set templateNode to the template's node (seeing it needs VM.Audit on /vms/${inputs.templateVmid}).`,
    );
  }
  return where.node;
}
