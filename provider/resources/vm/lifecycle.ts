// The steps VmClone and Template are made of: clone with a safe VMID, power, destroy,
// migrate, pending changes. Each long step runs as a PVE task inside this process's task bound.

import {
  PveApiError,
  PveTaskError,
  isLocked,
  isNotFound as isPveNotFound,
  type CloneParams,
  type QemuConfig,
  type TaskResult,
  type WaitForTaskOptions,
} from "../../proxmox";
import { backoffDelay, withRetry, type RetryPolicy } from "../../proxmox/retry";
import { isVmidCollision, type VmidLease, type VmidRange } from "../../proxmox/vmid-allocator";
import { providerLogger } from "../context";
import { normalizeDescription, splitDescription } from "./config-map";
import { findVm, sharedVmResources, type VmLocation } from "./shared-reads";
import type { TaskOptions } from "./task-slots";

import type { ReadResult } from "@pulumi/pulumi/dynamic";
import { gone } from "../read-result";
import type { VmContext } from "./vm-context";

export { vmContext, type VmContext } from "./vm-context";

/** UPIDs of the tasks this process is waiting for (a running clone not in here is someone else's). */
const ownTasks = new Set<string>();

/**
 * Starts a task (inside the bound, task-slots.ts) and waits for it; a null answer (synchronous
 * PVE) is success. `power` tasks (start, shutdown, stop) are bounded apart, so VMs whose disk is
 * ready do not wait for the rest of the fleet's clones; `copy` tasks (full clones, migrations)
 * also take one of the few copy slots; `priority` tasks go before queued others of their pool.
 */
export async function runTask(ctx: VmContext, start: () => Promise<string | null>, wait?: WaitForTaskOptions, opts: TaskOptions = {}): Promise<TaskResult | null> {
  return ctx.slots.run(async () => {
    const upid = await start();
    if (!upid) return null;
    ownTasks.add(upid);
    try {
      return await ctx.api.tasks.wait(upid, wait);
    } finally {
      ownTasks.delete(upid);
    }
  }, opts);
}

/**
 * A failure after which PVE may or may not have carried the request out: the connection broke
 * after the request was sent, no answer came in time, or a 5xx that is not one of PVE's
 * definite refusals. A write that failed this way must be checked, not blindly repeated.
 */
export function isAmbiguousFailure(err: unknown): boolean {
  if (!(err instanceof PveApiError)) return false;
  if (err.kind === "network") return !err.notSent;
  if (err.kind === "timeout") return true;
  return err.kind === "server" && err.status !== undefined && err.status >= 500 && err.status !== 501 && !REFUSED.test(err.pveMessage);
}

/** 500s a clone request is answered with when PVE refused it before doing anything: not ambiguous. */
const REFUSED = /can't clone VM to node '[^']*' \(VM uses local storage\)|can't clone to non-shared storage/;

/** A failure that asking again may clear: ambiguous network/5xx trouble, or lock contention. */
export function isTransient(err: unknown): boolean {
  if (err instanceof PveApiError) return isAmbiguousFailure(err) || (err.kind === "network" && err.notSent) || isLocked(err);
  if (err instanceof PveTaskError) return !err.timedOut && isLocked(err);
  return false;
}

/**
 * How long a convergent step keeps being retried for transient trouble. PVE documents lock
 * contention (`can't lock file ... got timeout`, `VM is locked`) as transient, and a dropped
 * connection is too: for those the budget is time, not a handful of attempts, so retries go on,
 * with capped exponential backoff, until `budgetMs` have passed since the first failure (or
 * `maxAttempts` ran, a bound for pathological fast failures). Other ambiguous failures (a 5xx
 * that is not contention, a request timeout) may well be permanent: at most `otherAttempts`.
 */
export interface ConvergentRetry {
  maxAttempts: number;
  budgetMs: number;
  otherAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const CONVERGENT_RETRY: ConvergentRetry = { maxAttempts: 25, budgetMs: 120_000, otherAttempts: 4, baseDelayMs: 250, maxDelayMs: 5_000 };

/** Lock contention or a dropped/refused connection: transient by nature, retried on a time budget. */
function isContentionOrNetwork(err: unknown): boolean {
  if (isLocked(err)) return true;
  return err instanceof PveApiError && err.kind === "network";
}

/**
 * Runs an idempotent, convergent step (read the VM, change what differs) again when it failed
 * for a transient reason. Not for bare writes: only for steps that look before they act.
 */
export async function retryConvergent<T>(ctx: VmContext, what: string, step: () => Promise<T>, policy: ConvergentRetry = CONVERGENT_RETRY): Promise<T> {
  let others = 0;
  let attempts = 0;
  let firstFailure: number | undefined;
  try {
    return await withRetry(
      (attempt) => {
        attempts = attempt;
        return step();
      },
      {
        policy: { maxAttempts: policy.maxAttempts, baseDelayMs: policy.baseDelayMs, maxDelayMs: policy.maxDelayMs, maxElapsedMs: policy.budgetMs },
        elapsedFrom: "firstFailure",
        shouldRetry: (err) => isTransient(err) && (isContentionOrNetwork(err) || ++others < policy.otherAttempts),
        clock: ctx.api.clock,
        random: ctx.api.random,
        onRetry: (err, attempt, delay) => {
          firstFailure ??= ctx.api.clock.now();
          providerLogger.debug(`${what}: ${err instanceof Error ? err.message : String(err)}; checking the VM and trying again in ${delay} ms (attempt ${attempt + 1})`);
        },
      },
    );
  } catch (err) {
    // a lock that outlasted the retries: say which step waited how long (others pass as they are)
    throw gaveUp(what, err, attempts, ctx.api.clock.now() - (firstFailure ?? ctx.api.clock.now()));
  }
}

/** The error once retries for a lock ran out: which step, which VM, how long it waited. Other
 *  errors are passed on as they are. */
function gaveUp(what: string, err: unknown, attempts: number, waitedMs: number): unknown {
  if (!isLocked(err)) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new Error(
    `${what}: ${why}; still locked after ${attempts} attempts over ${Math.round(waitedMs / 1000)} s.`,
    { cause: err },
  );
}

/** How old a shared cluster/resources answer the crash-recovery lookup accepts (ms). */
export const MARKER_SNAPSHOT_MS = 30_000;

/** VMIDs this process asked PVE to clone to: a `lock: clone` on one of them is ours, even once
 *  its lease is gone (an older shared answer still shows the clone running). */
const clonesStartedHere = new Set<number>();

/** Forgets the clones this process started (tests: a later run is a new provider process). */
export function clearClonesStartedHere(): void {
  clonesStartedHere.clear();
}

export interface MarkerIdentity {
  name: string;
  resourceName: string;
  stack: string;
}

/**
 * VMs carrying this resource's marker (same resource name and stack): VMs an earlier,
 * interrupted run created but never recorded. Clones still running that this process did not
 * start are waited for first (an interrupted run's clone finishes on the node on its own, and
 * only then carries its name and marker), up to `settleMs`.
 */
export async function findMarkedVms(ctx: VmContext, who: MarkerIdentity, settleMs = 120_000): Promise<Array<{ vmid: number; node: string; config: QemuConfig }>> {
  const deadline = ctx.api.clock.now() + settleMs;
  for (let round = 0; ; round++) {
    // The first look shares the process's short-lived cluster/resources answer (a fleet's
    // creates start together: one request, not one per VM). That is safe because the marker
    // names this resource AND stack: no other resource's create, concurrent or not, makes a VM
    // carrying it, so an answer a second old cannot show someone else's VM as ours. Waiting for
    // a foreign clone reads fresh.
    const rows = round === 0 ? await sharedVmResources(ctx, MARKER_SNAPSHOT_MS, { evenAfterOwnTasks: true }) : await ctx.api.cluster.resources("vm");
    const ours = new Set([...ctx.allocator.reservedIds, ...clonesStartedHere]);
    const foreignClones = rows.filter((r) => r.lock === "clone" && !ours.has(Number(r.vmid)));
    if (foreignClones.length && ctx.api.clock.now() < deadline) {
      await ctx.api.clock.sleep(1_000);
      continue;
    }
    const found: Array<{ vmid: number; node: string; config: QemuConfig }> = [];
    for (const r of rows) {
      // A VM younger than pvestatd's last broadcast is listed without its name (status
      // `unknown`; pve-manager API2Tools.pm extract_vm_stats): its config decides.
      if ((r.name !== undefined && r.name !== who.name) || !r.node || r.template === true || Number(r.template) === 1) continue;
      // ...except VMs this process is cloning or cloned itself (a fleet's own new VMs): those
      // are another resource's, or this create's, never an interrupted run's
      if (r.name === undefined && ours.has(Number(r.vmid))) continue;
      let config: QemuConfig;
      try {
        config = await ctx.api.qemu.getConfig(r.node, Number(r.vmid));
      } catch (err) {
        if (isNotFound(err)) continue; // gone (or moved) since the shared answer: not ours to adopt now
        throw err;
      }
      if (String(config.template ?? "0") === "1") continue;
      const marker = splitDescription(config.description === undefined ? undefined : String(config.description));
      if (marker.resourceName === who.resourceName && marker.stack === who.stack) found.push({ vmid: Number(r.vmid), node: r.node, config });
    }
    return found.sort((a, b) => a.vmid - b.vmid);
  }
}

/**
 * read() found no VM `vmid`. Before the engine forgets it, make sure it is gone and not merely
 * hidden: PVE leaves out of every listing the VMs a principal lacks VM.Audit on, while
 * `GET /cluster/nextid?vmid=N` (open to every user) says whether the VMID is taken.
 */
export async function confirmGone<T>(ctx: VmContext, vmid: number, node: string | undefined): Promise<ReadResult<T>> {
  if (!(await ctx.api.cluster.vmidTaken(vmid))) return gone<T>(); // free: the VM is gone
  throw new Error(
    `cannot see VM ${vmid}${node ? ` on ${node}` : ""}: the VMID is taken but the credentials lack VM.Audit on /vms/${vmid}; refresh would wrongly forget it. ` +
      `Grant VM.Audit there (PVEAuditor on /vms/${vmid}, or on a pool holding it), or refresh with credentials that can see it. (If another VM now holds VMID ${vmid}, remove this resource from the state with \`pulumi state delete\`.)`,
  );
}

/** Where a VM is now (it may have been migrated since it was recorded). */
export async function locateVm(ctx: VmContext, vmid: number): Promise<VmLocation | undefined> {
  return findVm(await ctx.api.cluster.resources("vm"), vmid);
}

export function isNotFound(err: unknown): boolean {
  return isPveNotFound(err);
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
      clonesStartedHere.add(vmid);
      await runTask(ctx, () => ctx.api.qemu.clone(req.templateNode, req.templateVmid, { ...req.params, newid: vmid }), req.wait, { copy: req.params.full === true });
      current.created();
      return { vmid, attempts };
    } catch (err) {
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
        clonesStartedHere.delete(vmid); // someone else's
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
    const unknown = active.filter((t) => !ownTasks.has(t.upid));
    if (!unknown.length) break;
    await Promise.all(unknown.map((t) => ctx.api.tasks.wait(t.upid, req.wait).catch(() => undefined)));
  }
  const where = await locateVm(ctx, vmid);
  if (!where) return "absent";
  if (where.lock === "clone") return "foreign";
  const config = await ctx.api.qemu.getConfig(where.node, vmid);
  const sameName = req.params.name === undefined || config.name === req.params.name;
  const sameDescription = normalizeDescription(config.description === undefined ? undefined : String(config.description)) === normalizeDescription(req.params.description);
  return sameName && sameDescription ? "cloned" : "foreign";
}

export interface StopOptions {
  shutdownTimeoutSeconds: number;
}

/**
 * Graceful shutdown within the timeout, then a hard stop if the guest did not go down. Both are
 * power tasks (task-slots.ts): a fleet's shutdowns, which wait for the guests, do not hold the
 * slots its deletes need.
 */
export async function stopVm(ctx: VmContext, node: string, vmid: number, o: StopOptions): Promise<void> {
  if (o.shutdownTimeoutSeconds <= 0) {
    await runTask(ctx, () => ctx.api.qemu.stop(node, vmid), undefined, { power: true });
    return;
  }
  try {
    await runTask(ctx, () => ctx.api.qemu.shutdown(node, vmid, { timeout: o.shutdownTimeoutSeconds }), undefined, { power: true });
    return;
  } catch (err) {
    if (isNotFound(err)) throw err;
    providerLogger.warn(`VM ${vmid} on node '${node}' did not shut down within ${o.shutdownTimeoutSeconds} s; stopping it`);
  }
  await runTask(ctx, () => ctx.api.qemu.stop(node, vmid), undefined, { power: true });
}

/** A power task (task-slots.ts): a fleet's starts do not queue behind its clones. */
export async function startVm(ctx: VmContext, node: string, vmid: number): Promise<void> {
  await runTask(ctx, () => ctx.api.qemu.start(node, vmid), undefined, { power: true });
}

/**
 * Shutdown (bounded) → stop → destroy with purge and destroy-unreferenced-disks.
 * A VM that is already gone is success.
 */
export async function destroyVm(ctx: VmContext, vmid: number, hintNode: string | undefined, o: StopOptions): Promise<void> {
  await retryConvergent(ctx, `destroying VM ${vmid}`, () => destroyOnce(ctx, vmid, hintNode, o));
}

async function destroyOnce(ctx: VmContext, vmid: number, hintNode: string | undefined, o: StopOptions): Promise<void> {
  const where = await locateVm(ctx, vmid);
  if (!where) return;
  const node = where.node ?? hintNode;
  try {
    if ((await liveStatus(ctx, node, vmid)).status === "running") await stopVm(ctx, node, vmid, o);
    await runTask(ctx, () => ctx.api.qemu.delete(node, vmid, { purge: true, destroyUnreferencedDisks: true }));
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
}

/**
 * Whether the VM runs, as its node says now. `/cluster/resources` reports the power state
 * pvestatd last broadcast (every 10 s, pve-manager PVE/Service/pvestatd.pm), so right after a
 * start or stop it is stale: decisions (stop before destroy, start or not) ask the node.
 */
export async function liveStatus(ctx: VmContext, node: string, vmid: number): Promise<{ status: string; uptime?: number }> {
  const s = await ctx.api.qemu.status(node, vmid);
  return { status: s.status, ...(s.uptime !== undefined ? { uptime: Number(s.uptime) } : {}) };
}

/** Keys PVE holds as pending (applied at the next cold start). */
export async function pendingKeys(ctx: VmContext, node: string, vmid: number): Promise<string[]> {
  const rows = await ctx.api.qemu.pending(node, vmid);
  return rows
    .filter((r) => r.pending !== undefined || (r.delete !== undefined && r.delete > 0))
    .map((r) => r.key)
    .sort();
}

export async function getConfig(ctx: VmContext, node: string, vmid: number): Promise<QemuConfig> {
  return ctx.api.qemu.getConfig(node, vmid);
}

/** Online when running (with local disks), offline otherwise. */
export async function migrateVm(ctx: VmContext, node: string, vmid: number, target: string, running: boolean): Promise<void> {
  await runTask(ctx, () => ctx.api.qemu.migrate(node, vmid, { target, online: running || undefined, withLocalDisks: running || undefined }), undefined, { copy: true });
}

/**
 * The error after a failed create, once cleanup ran (or failed). `rerunAdopts`: the VM carries
 * this resource's marker, so the next `pulumi up` finds it and takes it over (VmClone).
 */
export function createFailure(err: unknown, vmid: number, node: string, cleanupError?: unknown, opts: { rerunAdopts?: boolean; template?: boolean } = {}): Error {
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

export { PveApiError, PveTaskError };
