// Per-process VMID allocation, safe at any parallelism inside one provider process.
//
// PVE's `GET /cluster/nextid` answers the lowest id with no config file. A clone creates its
// config only inside the forked worker (qemu-server `clone_vm`: `$load_and_check` before the
// fork only *checks* that the file is absent; the worker writes `lock: clone` after taking the
// target's flock), so between the clone POST and the worker start every parallel caller gets the
// same id from nextid. This allocator therefore keeps *reservations*: an id handed out stays
// reserved in this process until its owner releases it (the clone task finished: the config
// exists, or the clone failed and PVE removed it). Choosing is serialised by a small mutex, so
// the cost per VM is one `GET /cluster/nextid` and no lock files.
//
// nextid answers the LOWEST free id only: ids above it may be in use (holes). Walking up past our
// own reservations therefore skips the ids this process itself filled (a lease `created`: the
// clone finished, the VM exists), so a fleet does not walk into its own finished VMs one
// collision at a time. The answer of nextid itself is authoritative (a VM we created there has
// been deleted since). Ids other tools take between our nextid and our clone (or holes above
// nextid that are in use) show up as `config file already exists` / `already exists` / a flock
// timeout on the new id; callers mark such an id `taken` and ask again (see VmCloneLifecycle).

import { isGuestConfigLockTimeout, isVmidInUse } from "./errors";
import type { ClusterApi } from "./cluster";

export interface VmidRange {
  min: number;
  max: number;
}

export interface VmidLease {
  vmid: number;
  /** Gives the id back (the clone failed or never started). Idempotent. */
  release(): void;
  /** The clone finished: the id now holds our VM (skipped when walking up from nextid). */
  created(): void;
  /** The id turned out to be used by someone else: never offer it again in this process. */
  markTaken(): void;
}

export type ClusterLookup = Pick<ClusterApi, "nextId" | "resources">;

export const VMID_MIN = 100;
export const VMID_MAX = 999_999_999;

export class VmidAllocator {
  private readonly reserved = new Set<number>();
  private readonly taken = new Set<number>();
  /** Ids this process filled with a VM (they may have been deleted since: nextid says so). */
  private readonly filled = new Set<number>();
  private chain: Promise<unknown> = Promise.resolve();
  /** Requests this allocator made (for tests and benchmarks). */
  requests = 0;

  get reservedIds(): number[] {
    return [...this.reserved].sort((a, b) => a - b);
  }

  /** Reserves an id: the lowest PVE calls free that this process has not reserved. */
  allocate(cluster: ClusterLookup, range?: VmidRange): Promise<VmidLease> {
    return this.serialised(async () => {
      const vmid = range ? await this.pickInRange(cluster, range) : await this.pickNext(cluster);
      return this.lease(vmid);
    });
  }

  /** Reserves an id the user chose (so our own parallel allocations skip it). */
  reserveExplicit(vmid: number): VmidLease {
    return this.lease(vmid);
  }

  private lease(vmid: number): VmidLease {
    this.reserved.add(vmid);
    let done = false;
    return {
      vmid,
      release: () => {
        if (done) return;
        done = true;
        this.reserved.delete(vmid);
      },
      created: () => {
        this.filled.add(vmid);
        if (!done) {
          done = true;
          this.reserved.delete(vmid);
        }
      },
      markTaken: () => {
        this.taken.add(vmid);
        if (!done) {
          done = true;
          this.reserved.delete(vmid);
        }
      },
    };
  }

  private unavailable(vmid: number): boolean {
    return this.reserved.has(vmid) || this.taken.has(vmid);
  }

  private async pickNext(cluster: ClusterLookup): Promise<number> {
    this.requests++;
    let vmid = await cluster.nextId();
    this.filled.delete(vmid); // free per PVE: a VM we created there is gone
    while (this.unavailable(vmid) || this.filled.has(vmid)) vmid++;
    if (vmid > VMID_MAX) throw new Error(`no free VMID: every id from ${VMID_MIN} is in use or reserved`);
    return vmid;
  }

  private async pickInRange(cluster: ClusterLookup, range: VmidRange): Promise<number> {
    this.requests++;
    const used = new Set((await cluster.resources("vm")).map((r) => Number(r.vmid)));
    for (let vmid = range.min; vmid <= range.max; vmid++) {
      if (!used.has(vmid) && !this.unavailable(vmid)) return vmid;
    }
    throw new Error(
      `no free VMID in the range ${range.min}-${range.max}: every id is in use on the cluster or being created by this program. Widen vmidRange or remove VMs.`,
    );
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }
}

/** A clone/create failed because `vmid` is already used (by another tool or process). */
export function isVmidCollision(err: unknown, vmid: number): boolean {
  // Two clones to the same new id: the second waits for the first's target flock and times out.
  return isVmidInUse(err, vmid) || isGuestConfigLockTimeout(err, vmid);
}

const allocators = new Map<string, VmidAllocator>();

/** The allocator of this process for a cluster (keyed by endpoint: every identity shares it). */
export function vmidAllocatorFor(endpoint: string): VmidAllocator {
  const key = endpoint.replace(/\/+$/, "");
  let a = allocators.get(key);
  if (!a) {
    a = new VmidAllocator();
    allocators.set(key, a);
  }
  return a;
}

/** Forgets every allocator (tests). */
export function clearVmidAllocators(): void {
  allocators.clear();
}
