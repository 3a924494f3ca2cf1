// The predicates of provider/proxmox/errors.ts for refusals PVE states only in words, fed the
// exact texts the PVE sources emit (each predicate's comment names the source).
import {
  PveApiError,
  PveTaskError,
  isAgentNotConfigured,
  isAgentNotRunning,
  isCloneRefused,
  isCloneRefusedLocalStorage,
  isCloneRefusedNonSharedStorage,
  isGuestConfigLockTimeout,
  isGuestNotRunning,
  isPoolMembershipConflict,
  isVmidInUse,
} from "../../../provider/proxmox/errors";

/** An API answer as PVE sends it: `die "...\n"` becomes a 500 whose reason is the first line. */
function apiError(message: string, status = 500, errors?: Record<string, string>): PveApiError {
  return new PveApiError({ method: "POST", path: "/nodes/pve1/qemu/9000/clone", endpoint: "https://pve:8006", status, reason: message.split("\n")[0], bodyMessage: message, errors });
}

function taskError(exitstatus: string): PveTaskError {
  return new PveTaskError({ upid: "UPID:pve1:00001234:00005678:65A1B2C3:qmclone:9000:root@pam:", node: "pve1", type: "qmclone", id: "9000", exitstatus });
}

const AGENT_NOT_CONFIGURED = "No QEMU guest agent configured\n";
const GUEST_NOT_RUNNING = "VM 100 is not running\n";
const AGENT_NOT_RUNNING = "QEMU guest agent is not running\n";
const POOL_CONFLICT = "VM 100 belongs already to pool 'other' and 'allow-move' is not set\n";
const POOL_CONFLICT_OLD = "VM 100 belongs already to pool 'other'\n";
const ALREADY_MEMBER = "VM 100 is already a pool member\n";
const LOCAL_STORAGE = "can't clone VM to node 'pve2' (VM uses local storage)\n";
const NON_SHARED = "can't clone to non-shared storage 'local-lvm'\n";
const CONFIG_EXISTS = "unable to create VM 105: config file already exists\n";
const EXISTS_ON_NODE = "VM 105 already exists on node 'pve2'\n";
const LOCK_TIMEOUT = "can't lock file '/var/lock/qemu-server/lock-105.conf' - got timeout\n";

const ALL = [AGENT_NOT_CONFIGURED, GUEST_NOT_RUNNING, AGENT_NOT_RUNNING, POOL_CONFLICT, POOL_CONFLICT_OLD, ALREADY_MEMBER, LOCAL_STORAGE, NON_SHARED, CONFIG_EXISTS, EXISTS_ON_NODE, LOCK_TIMEOUT];

/** Which of ALL a predicate accepts, as API errors. */
const accepted = (pred: (e: unknown) => boolean): string[] => ALL.filter((m) => pred(apiError(m)));

describe("guest agent predicates (qemu-server QemuServer/Agent.pm assert_agent_available)", () => {
  test("each of the three refusals is told apart from the other two", () => {
    expect(accepted(isAgentNotConfigured)).toEqual([AGENT_NOT_CONFIGURED]);
    expect(accepted(isGuestNotRunning)).toEqual([GUEST_NOT_RUNNING]);
    expect(accepted(isAgentNotRunning)).toEqual([AGENT_NOT_RUNNING]);
  });

  test("they stay 500s of kind server: the predicates add meaning, not a kind", () => {
    for (const m of [AGENT_NOT_CONFIGURED, GUEST_NOT_RUNNING, AGENT_NOT_RUNNING]) expect(apiError(m).kind).toBe("server");
  });
});

describe("isPoolMembershipConflict (pve-manager API2/Pool.pm update_pool)", () => {
  test("recognises the refusal to move a VM out of another pool, in both wordings", () => {
    expect(accepted(isPoolMembershipConflict)).toEqual([POOL_CONFLICT, POOL_CONFLICT_OLD]);
    expect(apiError(POOL_CONFLICT).kind).toBe("alreadyExists");
  });
});

describe("clone refusals (qemu-server API2/Qemu.pm clone_vm)", () => {
  test("local storage and non-shared storage, apart and together", () => {
    expect(accepted(isCloneRefusedLocalStorage)).toEqual([LOCAL_STORAGE]);
    expect(accepted(isCloneRefusedNonSharedStorage)).toEqual([NON_SHARED]);
    expect(accepted(isCloneRefused)).toEqual([LOCAL_STORAGE, NON_SHARED]);
  });

  test("also as a task's exit status, and in an Error that carried PVE's words on", () => {
    expect(isCloneRefusedLocalStorage(taskError("can't clone VM to node 'pve2' (VM uses local storage)"))).toBe(true);
    expect(isCloneRefused(new Error("cannot place VM: can't clone to non-shared storage 'local-lvm'"))).toBe(true);
    expect(isCloneRefused(taskError("clone failed: command 'qemu-img convert' failed: exit code 1"))).toBe(false);
  });
});

describe("isVmidInUse", () => {
  test("nextid's parameter error (pve-manager API2/Cluster.pm nextid) names the id", () => {
    const e = apiError("Parameter verification failed.", 400, { vmid: "VM 200 already exists\n" });
    expect(isVmidInUse(e, 200)).toBe(true);
    expect(isVmidInUse(e, 20)).toBe(false);
    expect(isVmidInUse(e, 2000)).toBe(false);
  });

  test("clone_vm's config file check and pve-cluster's check_vmid_unused", () => {
    expect(accepted((e) => isVmidInUse(e, 105))).toEqual([CONFIG_EXISTS, EXISTS_ON_NODE]);
    expect(accepted((e) => isVmidInUse(e, 10))).toEqual([]);
    expect(isVmidInUse(taskError("clone failed: unable to create VM 105: config file already exists"), 105)).toBe(true);
    expect(isVmidInUse(taskError("clone failed: unable to create VM 105: config file already exists"), 9000)).toBe(false);
  });
});

describe("isGuestConfigLockTimeout (pve-common Tools.pm lock_file_full on QemuConfig's lock file)", () => {
  test("only the lock file of the given id", () => {
    expect(accepted((e) => isGuestConfigLockTimeout(e, 105))).toEqual([LOCK_TIMEOUT]);
    expect(accepted((e) => isGuestConfigLockTimeout(e, 10))).toEqual([]);
    expect(isGuestConfigLockTimeout(taskError("clone failed: can't lock file '/var/lock/qemu-server/lock-105.conf' - got timeout"), 105)).toBe(true);
    expect(apiError(LOCK_TIMEOUT).kind).toBe("lockTimeout");
  });
});

test("nothing else matches, whatever is thrown", () => {
  const preds = [isAgentNotConfigured, isGuestNotRunning, isAgentNotRunning, isPoolMembershipConflict, isCloneRefused, (e: unknown) => isVmidInUse(e, 100), (e: unknown) => isGuestConfigLockTimeout(e, 100)];
  for (const thrown of [apiError("VM 100 qmp command 'guest-ping' failed - got timeout\n"), taskError("OK"), new Error("boom"), "a string", undefined, 42]) {
    for (const p of preds) expect(p(thrown)).toBe(false);
  }
});
