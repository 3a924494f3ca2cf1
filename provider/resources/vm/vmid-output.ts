// The `vmid` output of a Template or a VmClone, known during a preview whenever `pulumi up` will
// keep it.
//
// A dynamic provider cannot preview its outputs: for an update the engine previews the checked
// inputs as the outputs, and an allocated VMID is no input, so `template.vmid` would turn unknown
// as soon as the template's name or tags change, and every clone given `template` would be
// previewed as replaced (its templateVmid unknown) by an `up` that replaces nothing. The
// resource's id (`<node>/<vmid>`) is known in that preview: an update keeps it. It is unknown
// exactly when the VMID is not known yet (a create, a replacement), as it should be.

import * as pulumi from "@pulumi/pulumi";
import { parseVmId } from "./vm-id";

/** The VMID in a resource id `<node>/<vmid>` (or a bare `<vmid>`). */
export function vmidOfId(id: string): number {
  return parseVmId(id).vmid;
}

/** What the resource's `vmid` output should be: the declared VMID passes through check() and is
 *  previewed as given; an allocated one comes from the id. */
export function vmidOutput(declared: pulumi.Input<number> | undefined, fromState: pulumi.Output<number>, id: pulumi.Output<string>): pulumi.Output<number> {
  return declared === undefined ? id.apply(vmidOfId) : fromState;
}
