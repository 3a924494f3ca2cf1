// Cloning a template to a new VM with a VMID that is safe at any parallelism, through lost
// answers, VMID collisions and lock contention on the template. (Where the clone is placed, and
// the migration when the template's storage is local, is clone-placement.ts.)

import { failedTaskLeftVolumes, isLocked, type CloneParams, type WaitForTaskOptions } from "../../proxmox";
import { backoffDelay, type RetryPolicy } from "../../proxmox/retry";
import { isVmidCollision, type VmidLease, type VmidRange } from "../../proxmox/vmid-allocator";
import { providerLogger } from "../context";
import { descriptionOf, normalizeDescription } from "./config-map";
import { isAmbiguousFailure } from "./convergent-retry";
import { byHand, freeVolumesOfFailedTask } from "./leftover-volumes";
import { locateVm } from "./lookup";
import { isOwnTask, runTask, type VmContext } from "./vm-context";

/** VMIDs this process asked PVE to clone to: a `lock: clone` on one of them is ours, even once
 *  its lease is gone (an older shared answer still shows the clone running). */
const startedHere = new Set<number>();

/** The VMIDs this process asked PVE to clone to. */
export function clonesStartedHere(): ReadonlySet<number> {
  return startedHere;
}

/** Forgets the clones this process started (tests: a later run is a new provider process). */
export function clearClonesStartedHere(): void {
  startedHere.clear();
}

/** Clone POSTs refused for contention (template flock) retried, with backoff up to 15 s. */
const CONTENTION_ATTEMPTS = 8;
const CLONE_CONTENTION_BACKOFF: RetryPolicy = { maxAttempts: CONTENTION_ATTEMPTS + 1, baseDelayMs: 1_000, maxDelayMs: 15_000, maxElapsedMs: Infinity };
/** Clone POSTs without a clear answer that turned out not to have cloned, retried. */
const UNANSWERED_ATTEMPTS = 10;
/** Allocated ids found used elsewhere, skipped. */
const COLLISION_ATTEMPTS = 50;

export interface CloneRequest {
  templateNode: string;
  templateVmid: number;
  /** Explicit id: no retry with another one on collision. */
  vmid?: number;
  vmidRange?: VmidRange;
  params: Omit<CloneParams, "newid">;
  wait?: WaitForTaskOptions;
}

/**
 * Clones with an id that is safe at any parallelism in this process (see vmid-allocator.ts).
 * An allocated id that turns out to be used elsewhere is skipped and the next one tried; a
 * clone refused for lock contention on the template is retried with backoff. Returns the new
 * VMID once the clone task finished OK (the config lock is gone then).
 *
 * A clone POST without a clear answer (connection dropped after sending, timeout, 5xx) may have
 * started a clone whose UPID we never saw, and on a real cluster such a request can even run
 * later than we look. Its id therefore stays reserved and is asked for again (never handed to
 * another create, never given up): if our unseen clone ran after all, the repeat fails as a
 * collision on that id, and the VM found there carrying our name and marker is taken as ours.
 */
export async function cloneWithVmid(ctx: VmContext, req: CloneRequest): Promise<{ vmid: number; attempts: number }> {
  let attempts = 0;
  let contention = 0;
  let unanswered = 0;
  let collisions = 0;
  let lease: VmidLease | undefined;
  /** A clone POST to lease.vmid went unanswered: a collision there may be our own clone. */
  let unsure = false;
  for (;;) {
    attempts++;
    lease ??= req.vmid !== undefined ? ctx.allocator.reserveExplicit(req.vmid) : await ctx.allocator.allocate(ctx.api.cluster, req.vmidRange);
    const current = lease;
    const vmid = current.vmid;
    try {
      startedHere.add(vmid);
      await runTask(ctx, () => ctx.api.qemu.clone(req.templateNode, req.templateVmid, { ...req.params, newid: vmid }), req.wait, { copy: req.params.full === true, storageLockOn: req.templateNode });
      current.created();
      return { vmid, attempts };
    } catch (err) {
      if (failedTaskLeftVolumes(err)) {
        // what PVE could not free would make the next clone to this id fail on its names
        const refused = await freeVolumesOfFailedTask(ctx, req.templateNode, vmid);
        if (refused.length) {
          current.markTaken();
          throw new Error(`the clone to VMID ${vmid} on node '${req.templateNode}' failed (${(err as Error).message}) and PVE left ${refused.join(", ")} behind; ${byHand(req.templateNode, refused)}`, { cause: err });
        }
      }
      const collision = isVmidCollision(err, vmid);
      let foreign = false;
      if (isAmbiguousFailure(err) || (unsure && collision)) {
        // The clone may have happened (the answer, and its UPID, got lost): look before retrying.
        unsure = true;
        const outcome = await settleUnansweredClone(ctx, req, vmid);
        providerLogger.debug(`clone of ${req.templateVmid} to VMID ${vmid} got no clear answer (${(err as Error).message}); on the cluster: ${outcome}`);
        if (outcome === "cloned") {
          current.created();
          return { vmid, attempts };
        }
        if (outcome === "absent") {
          if (++unanswered <= UNANSWERED_ATTEMPTS) continue; // the same id, still reserved
          current.markTaken(); // never offered again: our unseen clone may still run there
          throw err;
        }
        foreign = true;
      }
      if (foreign || collision) {
        startedHere.delete(vmid); // someone else's
        current.markTaken();
        lease = undefined;
        unsure = false;
        if (req.vmid !== undefined) throw explicitVmidTaken(vmid, err);
        if (++collisions > COLLISION_ATTEMPTS) throw err;
        providerLogger.debug(`VMID ${vmid} is used elsewhere; trying the next one`);
        continue;
      }
      if (isLocked(err) && contention < CONTENTION_ATTEMPTS) {
        // refused (template busy): nothing was cloned; the id stays ours for the next try
        contention++;
        await ctx.api.clock.sleep(backoffDelay(contention, CLONE_CONTENTION_BACKOFF, ctx.api.random));
        continue;
      }
      if (unsure) current.markTaken();
      else current.release();
      throw err;
    }
  }
}

/** The user's own vmid is held by another VM: say which property to change. */
function explicitVmidTaken(vmid: number, err: unknown): Error {
  const why = err instanceof Error ? err.message : String(err);
  return new Error(`vmid ${vmid} is already used by another VM on the cluster (${why}). Choose a free vmid, or remove vmid to have one allocated.`, { cause: err });
}

/**
 * After a clone POST without a clear answer: waits for the clone tasks of the template that
 * this process is not waiting for (one of them may be ours, its UPID lost), then looks at the
 * new id. `cloned`: the VM exists with our name and description (marker): ours, finished.
 * `absent`: nothing was cloned (or the clone failed and PVE removed it): safe to ask again.
 * `foreign`: the id holds another VM.
 */
async function settleUnansweredClone(ctx: VmContext, req: CloneRequest, vmid: number): Promise<"cloned" | "absent" | "foreign"> {
  for (let round = 0; round < 100; round++) {
    const active = await ctx.api.tasks.list(req.templateNode, { source: "active", typefilter: "qmclone", vmid: req.templateVmid });
    const unknown = active.filter((t) => !isOwnTask(t.upid));
    if (!unknown.length) break;
    await Promise.all(unknown.map((t) => ctx.api.tasks.wait(t.upid, req.wait).catch(() => undefined)));
  }
  const where = await locateVm(ctx, vmid);
  if (!where) return "absent";
  if (where.lock === "clone") return "foreign";
  const config = await ctx.api.qemu.getConfig(where.node, vmid);
  const sameName = req.params.name === undefined || config.name === req.params.name;
  const sameDescription = normalizeDescription(descriptionOf(config)) === normalizeDescription(req.params.description);
  return sameName && sameDescription ? "cloned" : "foreign";
}
