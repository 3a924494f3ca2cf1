import { redact } from "./redact";
import { roleGranting } from "./privileges";

/**
 * What went wrong, as far as a caller needs to decide what to do:
 * - `auth`: the credentials were refused (401);
 * - `permission`: authenticated, but a privilege is missing (403);
 * - `validation`: PVE rejected a parameter (400);
 * - `notFound`: PVE's 500 "does not exist" / "no such ..." (PVE does not use 404);
 * - `alreadyExists`: PVE's 500 "already exists" (PVE does not use 409), or a 400 naming an existing id;
 * - `locked`: `VM is locked (<lock>)`: a config lock held by another operation;
 * - `lockTimeout`: a lock stayed busy: a flock (`can't lock file ... got timeout`: a VM's config,
 *   a local storage) or pmxcfs' (`cfs-lock 'storage-<id>' error: got lock request timeout`: a
 *   shared storage, pve-cluster src/PVE/Cluster.pm `$cfs_lock`);
 * - `conflict`: the config digest changed under us (`checksum mismatch`);
 * - `tls`: the server certificate could not be verified;
 * - `network`: the endpoint could not be reached or the connection broke;
 * - `timeout`: no answer within the request timeout;
 * - `server`: any other failure on the PVE side.
 */
export type PveErrorKind =
  | "auth"
  | "permission"
  | "validation"
  | "notFound"
  | "alreadyExists"
  | "locked"
  | "lockTimeout"
  | "conflict"
  | "tls"
  | "network"
  | "timeout"
  | "server";

/** Who the client authenticates as; never includes a secret. */
export interface PveIdentity {
  kind: "token" | "user";
  /** `user@realm!tokenid` for tokens, `user@realm` for users. */
  id: string;
}

export interface PveApiErrorInit {
  method: string;
  path: string;
  endpoint: string;
  identity?: PveIdentity;
  status?: number;
  /** The HTTP reason phrase (PVE puts the first line of its message there). */
  reason?: string;
  /** The body's `message` (PVE >= 8.3) . */
  bodyMessage?: string;
  errors?: Record<string, string>;
  /** For network failures: the error code (ECONNRESET, ...) and text. */
  networkCode?: string;
  networkMessage?: string;
  timeoutMs?: number;
  /** Set when the failure is known to have happened before the request was sent. */
  notSent?: boolean;
  /** Secret values that must not appear in anything this error exposes. */
  secrets?: Iterable<string | undefined>;
}

const TLS_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "HOSTNAME_MISMATCH",
]);

export function isTlsErrorCode(code: string | undefined): boolean {
  return code !== undefined && TLS_CODES.has(code);
}

const LOCK_TIMEOUT = /can't lock file .*got timeout|cfs-lock '[^']+' error: got lock request timeout/i;
const LOCKED = /\bis locked \(/i;
const NO_WORKER_UPID = /got no worker upid/i;
const CHECKSUM = /checksum mismatch/i;
const NOT_FOUND = /does not exist|\bno such\b|not found|doesn't exist/i;
const ALREADY_EXISTS = /already exists|already defined|already a pool member|belongs already to pool/i;

/** Classifies a PVE message (HTTP error or task exit status) by its text and status. */
export function classifyPveMessage(status: number | undefined, message: string, errors?: Record<string, string>): PveErrorKind {
  if (status === 401) return "auth";
  if (status === 403) return "permission";
  const all = [message, ...Object.values(errors ?? {})].join("\n");
  if (status === 400) {
    if (errors && Object.values(errors).some((e) => ALREADY_EXISTS.test(e))) return "alreadyExists";
    if (errors && Object.values(errors).some((e) => /no such task/i.test(e))) return "notFound";
    return "validation";
  }
  if (status === 501) return "server";
  if (LOCK_TIMEOUT.test(all)) return "lockTimeout";
  if (LOCKED.test(all)) return "locked";
  if (CHECKSUM.test(all)) return "conflict";
  if (ALREADY_EXISTS.test(all)) return "alreadyExists";
  if (NOT_FOUND.test(all) || status === 404) return "notFound";
  return "server";
}

/** PVE's own words for a failure: the body's message if present, else the reason line. */
function pveWords(init: PveApiErrorInit): string {
  const text = init.bodyMessage ?? init.reason ?? "";
  return text.replace(/\s+$/, "");
}

function who(identity: PveIdentity | undefined): string {
  if (!identity) return "the configured credentials";
  return identity.kind === "token" ? `token '${identity.id}'` : `user '${identity.id}'`;
}

const PERMISSION = /Permission check failed \(([^,)]+),\s*([^)]+)\)/;

function describe(kind: PveErrorKind, init: PveApiErrorInit, words: string): string {
  const op = `${init.method} ${init.path}`;
  switch (kind) {
    case "auth": {
      const detail = words ? ` (PVE said: ${words})` : "";
      if (init.identity?.kind === "token") {
        return `authentication failed for ${who(init.identity)} at ${init.endpoint}${detail}: check the token id and secret, and that the token and its user have not expired or been disabled`;
      }
      return `authentication failed for ${who(init.identity)} at ${init.endpoint}${detail}: check the username (with its realm, e.g. root@pam), the password, and the OTP if the user has two-factor authentication`;
    }
    case "permission": {
      const m = PERMISSION.exec(words);
      if (m) {
        const aclPath = m[1].trim();
        const privs = m[2].split("|").map((p) => p.trim());
        const privText = privs.length > 1 ? `one of ${privs.join(", ")}` : privs[0];
        const role = roleGranting(privs[0]);
        const flag = init.identity?.kind === "token" ? "--tokens" : "--users";
        const tokenNote =
          init.identity?.kind === "token"
            ? " A token with privilege separation needs the ACL on the token itself as well as on its user."
            : "";
        return `permission denied for ${op}: ${who(init.identity)} lacks ${privText} on '${aclPath}'. Grant a role that includes it on that path or a parent with propagation, e.g. \`pveum acl modify ${aclPath} ${flag} ${init.identity?.id ?? "<id>"} --roles ${role}\`.${tokenNote}`;
      }
      return `permission denied for ${op} as ${who(init.identity)}: ${words || "Permission check failed"}. Check the ACLs of this user or token (GET /access/permissions shows the effective privileges).`;
    }
    case "validation": {
      const params = Object.entries(init.errors ?? {}).map(([k, v]) => `${k}: ${v.replace(/\s+$/, "")}`);
      const list = params.length ? `: ${params.join("; ")}` : words ? `: ${words}` : "";
      return `PVE rejected the parameters of ${op}${list}`;
    }
    case "alreadyExists": {
      const params = Object.entries(init.errors ?? {}).map(([k, v]) => `${k}: ${v.replace(/\s+$/, "")}`);
      return `${op} failed: ${params.length ? params.join("; ") : words} (the object already exists; choose another id, or remove it first)`;
    }
    case "notFound":
      return `${op} failed: ${words || "not found"} (the object does not exist on the cluster)`;
    case "locked":
      return `${op} failed: ${words} (another operation holds the VM's config lock; wait for it to finish, or remove a stale lock with \`qm unlock <vmid>\`)`;
    case "lockTimeout":
      return `${op} failed: ${words} (the config file lock stayed busy; another operation on the same guest is running, retry later)`;
    case "conflict":
      return `${op} failed: ${words} (the configuration changed while it was being updated; refresh and retry)`;
    case "tls":
      return `TLS verification of ${init.endpoint} failed for ${op} (${init.networkCode ?? "certificate error"}${init.networkMessage ? `: ${init.networkMessage}` : ""}). Set \`proxmox:caCert\` (or PROXMOX_VE_CA_CERT) to the cluster's CA certificate, as PEM text or a file path (a copy of /etc/pve/pve-root-ca.pem), or, for testing only, set \`proxmox:insecure\` true (PROXMOX_VE_INSECURE=true) to skip verification`;
    case "network":
      return `could not complete ${op} at ${init.endpoint}: ${init.networkCode ?? "network error"}${init.networkMessage ? ` (${init.networkMessage})` : ""}. Check the endpoint, the network path and that pveproxy is running on the node`;
    case "timeout":
      return `${op} at ${init.endpoint} got no answer within ${init.timeoutMs ?? "?"} ms. The node may be overloaded (its API serves 3 requests at a time); lower proxmox:maxConcurrentRequests or raise the request timeout`;
    case "server":
    default:
      return `${op} failed${init.status ? ` with HTTP ${init.status}` : ""}: ${words || "PVE gave no message"}`;
  }
}

/** The one error type of the PVE client: an HTTP call that failed, for whatever reason. */
export class PveApiError extends Error {
  readonly kind: PveErrorKind;
  readonly method: string;
  readonly path: string;
  readonly endpoint: string;
  readonly status?: number;
  /** PVE's message (body `message`, else the reason line), trailing newline trimmed. */
  readonly pveMessage: string;
  /** PVE's per-parameter errors (400 Parameter verification failed). */
  readonly errors: Record<string, string>;
  readonly identity?: PveIdentity;
  readonly code?: string;
  /** True when the request never left this process (safe to retry a write). */
  readonly notSent: boolean;

  constructor(init: PveApiErrorInit) {
    const secrets = [...(init.secrets ?? [])];
    const clean = (s: string | undefined): string | undefined => (s === undefined ? undefined : redact(s, secrets));
    const safe: PveApiErrorInit = {
      ...init,
      secrets: undefined,
      path: clean(init.path) ?? "",
      reason: clean(init.reason),
      bodyMessage: clean(init.bodyMessage),
      networkMessage: clean(init.networkMessage),
      errors: init.errors
        ? Object.fromEntries(Object.entries(init.errors).map(([k, v]) => [k, clean(String(v)) ?? ""]))
        : undefined,
    };
    const words = pveWords(safe);
    let kind: PveErrorKind;
    if (init.networkCode !== undefined || init.status === undefined) {
      if (init.timeoutMs !== undefined) kind = "timeout";
      else if (isTlsErrorCode(init.networkCode)) kind = "tls";
      else kind = "network";
    } else {
      kind = classifyPveMessage(init.status, words, safe.errors);
    }
    super(redact(describe(kind, safe, words), secrets));
    this.name = "PveApiError";
    this.kind = kind;
    this.method = init.method;
    this.path = safe.path;
    this.endpoint = init.endpoint;
    this.status = init.status;
    this.pveMessage = words;
    this.errors = safe.errors ?? {};
    this.identity = init.identity;
    this.code = init.networkCode;
    this.notSent = init.notSent ?? false;
  }
}

export interface PveTaskErrorInit {
  upid: string;
  node: string;
  type: string;
  id: string;
  exitstatus?: string;
  logTail?: string[];
  timedOutAfterMs?: number;
  secrets?: Iterable<string | undefined>;
}

/** A task (UPID) that ended with an error, or that did not end in time. */
export class PveTaskError extends Error {
  readonly kind: PveErrorKind;
  readonly upid: string;
  readonly node: string;
  readonly type: string;
  readonly id: string;
  readonly exitstatus?: string;
  readonly logTail: string[];
  readonly timedOut: boolean;

  constructor(init: PveTaskErrorInit) {
    const secrets = [...(init.secrets ?? [])];
    const tail = (init.logTail ?? []).map((l) => redact(l, secrets));
    const exit = init.exitstatus === undefined ? undefined : redact(init.exitstatus, secrets);
    const subject = `task ${init.type}${init.id ? ` ${init.id}` : ""} on node '${init.node}' (${init.upid})`;
    let message: string;
    if (init.timedOutAfterMs !== undefined) {
      message = `${subject} did not finish within ${Math.round(init.timedOutAfterMs / 1000)} s; it may still be running on the node (see its task log in the PVE UI, or stop it with DELETE /nodes/${init.node}/tasks/<upid>)`;
    } else {
      message = `${subject} failed: ${exit ?? "unknown exit status"}`;
    }
    if (tail.length) message += `\nlast task log lines:\n  ${tail.join("\n  ")}`;
    super(redact(message, secrets));
    this.name = "PveTaskError";
    this.kind = init.timedOutAfterMs !== undefined ? "timeout" : classifyPveMessage(500, exit ?? "");
    this.upid = init.upid;
    this.node = init.node;
    this.type = init.type;
    this.id = init.id;
    this.exitstatus = exit;
    this.logTail = tail;
    this.timedOut = init.timedOutAfterMs !== undefined;
  }
}

function kindOf(err: unknown): PveErrorKind | undefined {
  if (err instanceof PveApiError || err instanceof PveTaskError) return err.kind;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => kindOf(err) === "notFound";
export const isAlreadyExists = (err: unknown): boolean => kindOf(err) === "alreadyExists";
export const isPermissionDenied = (err: unknown): boolean => kindOf(err) === "permission";
export const isLocked = (err: unknown): boolean => kindOf(err) === "locked" || kindOf(err) === "lockTimeout";

/** PVE's documented transient contention: a busy config flock, or a worker that could not be forked. */
export function isContention(err: unknown, opts: { includeConfigLock?: boolean } = {}): boolean {
  const kind = kindOf(err);
  if (kind === "lockTimeout") return true;
  if (kind === "locked") return opts.includeConfigLock === true;
  if (err instanceof PveApiError && err.status !== undefined && err.status >= 500) {
    return NO_WORKER_UPID.test(err.pveMessage);
  }
  return false;
}

// ---------------------------------------------------------------------------------------
// Particular refusals. PVE says these only in words (all HTTP 500 or a task's exit status), so
// they are recognised here, once, by the text of the PVE source that emits them (paths are in
// the git repositories of github.com/proxmox). Elsewhere, callers use these predicates.

/**
 * PVE's own words in a failure: an API error's message and per-parameter errors, a task's exit
 * status; for any other Error (one that carried PVE's words on, or a test's), its message.
 */
function pveWordsOf(err: unknown): string[] {
  if (err instanceof PveApiError) return [err.pveMessage, ...Object.values(err.errors)];
  if (err instanceof PveTaskError) return err.exitstatus === undefined ? [] : [err.exitstatus];
  if (err instanceof Error) return [err.message];
  return [String(err)];
}

const says = (err: unknown, pattern: RegExp): boolean => pveWordsOf(err).some((t) => pattern.test(t));

/** qemu-server src/PVE/QemuServer/Agent.pm assert_agent_available: `No QEMU guest agent configured` (the VM has no `agent` option). */
export const isAgentNotConfigured = (err: unknown): boolean => says(err, /No QEMU guest agent configured/i);

/** qemu-server src/PVE/QemuServer/Agent.pm assert_agent_available: `QEMU guest agent is not running` (the VM runs, its agent does not answer guest-ping yet). */
export const isAgentNotRunning = (err: unknown): boolean => says(err, /guest agent is not running/i);

/** qemu-server src/PVE/QemuServer/Agent.pm assert_agent_available: `VM <vmid> is not running` (the VM itself, not its agent). */
export const isGuestNotRunning = (err: unknown): boolean => says(err, /is not running/i) && !isAgentNotRunning(err);

/**
 * pve-manager PVE/API2/Pool.pm update_pool (and update_pool_deprecated): `VM <vmid> belongs
 * already to pool '<pool>' and 'allow-move' is not set` (older releases: without the
 * `and 'allow-move' ...`). A VM is in at most one pool. (Its kind is `alreadyExists`.)
 */
export const isPoolMembershipConflict = (err: unknown): boolean => says(err, /belongs already to pool/);

/** qemu-server src/PVE/API2/Qemu.pm clone_vm: `can't clone VM to node '<target>' (VM uses local storage)`, before anything is cloned. */
export const isCloneRefusedLocalStorage = (err: unknown): boolean => says(err, /can't clone VM to node '[^']*' \(VM uses local storage\)/);

/** qemu-server src/PVE/API2/Qemu.pm clone_vm: `can't clone to non-shared storage '<storage>'` (a `target` node with a local `storage`), before anything is cloned. */
export const isCloneRefusedNonSharedStorage = (err: unknown): boolean => says(err, /can't clone to non-shared storage/);

/** Either of PVE's refusals to clone onto another node: definite, nothing was done (not an ambiguous 5xx). */
export const isCloneRefused = (err: unknown): boolean => isCloneRefusedLocalStorage(err) || isCloneRefusedNonSharedStorage(err);

/**
 * PVE refused guest id `vmid` because a guest has it:
 * - pve-manager PVE/API2/Cluster.pm nextid: `VM <vmid> already exists` (HTTP 400, parameter `vmid`);
 * - qemu-server src/PVE/API2/Qemu.pm clone_vm: `unable to create VM <newid>: config file already exists`;
 * - pve-cluster src/PVE/Cluster.pm check_vmid_unused: `VM <vmid> already exists on node '<node>'`.
 */
export function isVmidInUse(err: unknown, vmid: number): boolean {
  return says(err, new RegExp(`\\b${vmid}\\b.*already exists`));
}

/**
 * The config flock of guest `vmid` stayed busy: pve-common src/PVE/Tools.pm lock_file_full
 * `can't lock file '<file>' - got timeout`, the file being qemu-server src/PVE/QemuConfig.pm's
 * `/var/lock/qemu-server/lock-<vmid>.conf`. Two clones to the same new id end this way.
 */
export function isGuestConfigLockTimeout(err: unknown, vmid: number): boolean {
  return pveWordsOf(err).some((t) => t.includes(`lock-${vmid}.conf' - got timeout`));
}

/**
 * Disks a destroy left behind: qemu-server src/PVE/QemuServer.pm destroy_vm frees each disk in an
 * eval and only warns when that fails, `Could not remove disk '<volid>', check manually: <error>`
 * (most often pve-storage's storage lock, busy for more than 10 s: `can't lock file
 * '/var/lock/pve-manager/pve-storage-<id>' - got timeout`); the VM's config goes anyway. Read from
 * the task's warning lines (`WARN: …`).
 */
export function disksNotRemoved(warningLines: readonly string[]): Array<{ volid: string; reason: string }> {
  const out: Array<{ volid: string; reason: string }> = [];
  for (const line of warningLines) {
    const m = /Could not remove disk '([^']+)', check manually: (.*)$/.exec(line);
    if (m) out.push({ volid: m[1], reason: m[2].trim() });
  }
  return out;
}

/**
 * A failed clone or create whose clean-up could not free what it had made: qemu-server
 * src/PVE/API2/Qemu.pm clone_vm, and create_vm/create_disks, free each new volume after an error
 * and only print a failure (`warn $@`, a plain task-log line before the task's error), most often
 * the storage lock again (pve-common `lock_file_full`, pve-cluster `$cfs_lock`). The volumes stay,
 * in no VM's config.
 */
export function failedTaskLeftVolumes(err: unknown): boolean {
  if (!(err instanceof PveTaskError) || (err.type !== "qmclone" && err.type !== "qmcreate")) return false;
  return err.logTail.some((l) => !l.startsWith("TASK ERROR") && /^(can't lock file '\/var\/lock\/pve-manager\/pve-storage-[^']+' - got timeout|cfs-lock 'storage-[^']+' error: got lock request timeout)$/.test(l.trim()));
}
