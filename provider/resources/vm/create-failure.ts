// A create that failed after its VM existed (VmClone, Template): the VM is destroyed again, and
// the error says so, or names the VM left behind and what to do with it.

import { destroyVm } from "./power";
import type { VmContext } from "./vm-context";

export interface CreateFailureOptions {
  /** The VM carries this resource's marker, so the next `pulumi up` finds it and takes it over (VmClone). */
  rerunAdopts?: boolean;
  /** A half-built template, which the next `pulumi up` does not reuse. */
  template?: boolean;
}

/** Destroys VM `vmid`, made by a create that failed with `err`, and throws the error to report. */
export async function destroyAfterFailedCreate(ctx: VmContext, err: unknown, vmid: number, node: string, opts: CreateFailureOptions = {}): Promise<never> {
  try {
    await destroyVm(ctx, vmid, node, { shutdownTimeoutSeconds: 0 });
  } catch (cleanupError) {
    throw createFailure(err, vmid, node, cleanupError, opts);
  }
  throw createFailure(err, vmid, node);
}

/** The error after a failed create, once cleanup ran (or failed). */
function createFailure(err: unknown, vmid: number, node: string, cleanupError?: unknown, opts: CreateFailureOptions = {}): Error {
  const base = err instanceof Error ? err.message : String(err);
  if (cleanupError === undefined) {
    return new Error(`${base}\n(VM ${vmid} on node '${node}', created for this resource, was destroyed again.)`);
  }
  const why = cleanupError instanceof Error ? cleanupError.message : String(cleanupError);
  return new Error(
    `${base}\nVM ${vmid} on node '${node}' was left behind: destroying it failed (${why}). ` +
      (opts.rerunAdopts
        ? `Once the cause is fixed, run \`pulumi up\` again: it finds VM ${vmid} by this resource's marker and takes it over. Or remove it by hand (qm destroy ${vmid} --purge).`
        : opts.template
          ? `Remove it by hand (qm destroy ${vmid} --purge): it is a half-built template that the next \`pulumi up\` does not reuse.`
          : `Remove it by hand (qm destroy ${vmid} --purge), or take it over with a VmClone declaring adopt: true, vmid: ${vmid}, node: "${node}".`),
  );
}
