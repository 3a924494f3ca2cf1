import { PveClient } from "../../../provider/proxmox/client";
import { PveApiError, PveTaskError, isAlreadyExists, isNotFound, isPermissionDenied, classifyPveMessage } from "../../../provider/proxmox/errors";
import { destroyAgents } from "../../../provider/proxmox/http";
import { startHttpsServer, testPki, type TestServer } from "../helpers/https-server";
import { listFixtures, readFixture } from "../helpers/pve-api";

let server: TestServer;
const NO_RETRY = { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxElapsedMs: 1 };

beforeAll(async () => {
  server = await startHttpsServer();
});
afterAll(async () => {
  await server.close();
  destroyAgents();
});

function client(tokenId = "ci@pve!errors"): PveClient {
  return new PveClient({
    endpoint: server.endpoint,
    credentials: { kind: "token", tokenId, secret: "99999999-8888-4777-8666-555555555555" },
    tls: { caCert: testPki().caCert },
    readRetry: NO_RETRY,
    writeRetry: NO_RETRY,
  });
}

/** PVE's reason phrase is the first line of the message; older servers send only that. */
function reasonOf(body: { message?: string }, status: number): string {
  if (body.message) return body.message.split("\n")[0];
  return status === 400 ? "Parameter verification failed." : "Internal Server Error";
}

const EXPECTED: Record<string, { status: number; kind: string; check: (e: PveApiError) => void }> = {
  "error-400-cluster-nextid-vm-exists.json": {
    status: 400,
    kind: "alreadyExists",
    check: (e) => {
      expect(e.errors).toEqual({ vmid: "VM 200 already exists" });
      expect(e.pveMessage).toBe("Parameter verification failed.");
      expect(e.message).toContain("vmid: VM 200 already exists");
      expect(isAlreadyExists(e)).toBe(true);
    },
  },
  "error-400-token-already-exists.json": {
    status: 400,
    kind: "alreadyExists",
    check: (e) => {
      expect(e.errors).toEqual({ tokenid: "Token already exists." });
      expect(e.pveMessage).toBe("Parameter verification failed.");
      expect(e.message).toContain("tokenid: Token already exists.");
    },
  },
  "error-403-permission-check-failed.json": {
    status: 403,
    kind: "permission",
    check: (e) => {
      expect(e.pveMessage).toBe("Permission check failed (/access, Sys.Audit)");
      expect(e.message).toContain("lacks Sys.Audit on '/access'");
      expect(e.message).toContain("--roles PVEAuditor");
      expect(e.message).toContain("ci@pve!errors");
      expect(isPermissionDenied(e)).toBe(true);
    },
  },
  "error-500-create-user-exists.json": {
    status: 500,
    kind: "alreadyExists",
    check: (e) => {
      expect(e.pveMessage).toBe("create user failed: user 'probe-dup-52445741@pve' already exists");
      expect(isAlreadyExists(e)).toBe(true);
    },
  },
  "error-500-no-such-user.json": {
    status: 500,
    kind: "notFound",
    check: (e) => {
      expect(e.pveMessage).toBe("no such user ('probe-ghost-nonexistent@pve')");
      expect(isNotFound(e)).toBe(true);
    },
  },
};

describe("PveApiError from every recorded error response", () => {
  const files = listFixtures(/^error-.*\.json$/);

  it("has an expectation for every error fixture", () => {
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((f) => !(f in EXPECTED))).toEqual([]);
  });

  it.each(Object.keys(EXPECTED))("%s", async (file) => {
    const body = readFixture<{ message?: string }>(file);
    const { status, kind, check } = EXPECTED[file];
    server.setHandler(() => ({ status, reason: reasonOf(body, status), body }));
    const err = await client().get("/some/path").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveApiError);
    const e = err as PveApiError;
    expect(e.status).toBe(status);
    expect(e.kind).toBe(kind);
    expect(e.method).toBe("GET");
    expect(e.path).toBe("/some/path");
    expect(e.pveMessage.endsWith("\n")).toBe(false);
    check(e);
  });

  it("uses the reason line when an older PVE sends no message in the body", async () => {
    server.setHandler(() => ({ status: 500, reason: "VM 100 is running - destroy failed", body: { data: null } }));
    const e = (await client().del("/nodes/pve/qemu/100").catch((x: unknown) => x)) as PveApiError;
    expect(e.pveMessage).toBe("VM 100 is running - destroy failed");
    expect(e.kind).toBe("server");
    expect(e.message).toBe("DELETE /nodes/pve/qemu/100 failed with HTTP 500: VM 100 is running - destroy failed");
  });

  it("401 with an empty body is an authentication error naming the token id", async () => {
    server.setHandler(() => ({ status: 401, reason: "Authentication failed!", body: "" }));
    const e = (await client("ops@pve!deploy").get("/version").catch((x: unknown) => x)) as PveApiError;
    expect(e.kind).toBe("auth");
    expect(e.message).toContain("authentication failed for token 'ops@pve!deploy'");
    expect(e.message).toContain(server.endpoint);
    expect(e.message).toContain("check the token id and secret");
  });

  it("401 at login is an authentication error naming the user", async () => {
    server.setHandler(() => ({ status: 401, reason: "authentication failure", body: "" }));
    const c = new PveClient({
      endpoint: server.endpoint,
      credentials: { kind: "password", username: "deployer@pve", password: "hunter2-hunter2" },
      tls: { caCert: testPki().caCert },
    });
    const e = (await c.get("/version").catch((x: unknown) => x)) as PveApiError;
    expect(e.kind).toBe("auth");
    expect(e.message).toContain("user 'deployer@pve'");
  });

  it("400 lists each parameter error", async () => {
    server.setHandler(() => ({
      status: 400,
      reason: "Parameter verification failed.",
      body: { data: null, message: "Parameter verification failed.\n", errors: { memory: "type check ('integer') failed - got 'lots'", name: "invalid format - value does not look like a valid DNS name\n" } },
    }));
    const e = (await client().post("/nodes/pve/qemu", { vmid: 100 }).catch((x: unknown) => x)) as PveApiError;
    expect(e.kind).toBe("validation");
    expect(e.message).toBe(
      "PVE rejected the parameters of POST /nodes/pve/qemu: memory: type check ('integer') failed - got 'lots'; name: invalid format - value does not look like a valid DNS name",
    );
  });

  it("classifies PVE's contention and lookup messages", () => {
    expect(classifyPveMessage(500, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout")).toBe("lockTimeout");
    // a storage's lock: a flock on a local storage, pmxcfs' for a shared one (pve-cluster Cluster.pm $cfs_lock)
    expect(classifyPveMessage(undefined, "clone failed: can't lock file '/var/lock/pve-manager/pve-storage-local-lvm' - got timeout")).toBe("lockTimeout");
    expect(classifyPveMessage(undefined, "clone failed: cfs-lock 'storage-ceph' error: got lock request timeout")).toBe("lockTimeout");
    expect(classifyPveMessage(500, "VM is locked (clone)")).toBe("locked");
    expect(classifyPveMessage(500, "Configuration file 'nodes/pve/qemu-server/999.conf' does not exist")).toBe("notFound");
    expect(classifyPveMessage(500, "unable to create VM 100 - VM 100 already exists on node 'pve'")).toBe("alreadyExists");
    expect(classifyPveMessage(500, "checksum mismatch (file change by other user?)")).toBe("conflict");
    expect(classifyPveMessage(400, "Parameter verification failed.", { upid: "no such task" })).toBe("notFound");
    expect(classifyPveMessage(501, "Method 'GET /nodes/x/foo' not implemented")).toBe("server");
  });

  it("a task error carries the same kinds", () => {
    const e = new PveTaskError({ upid: "UPID:pve:00000001:00000001:00000001:qmclone:100:root@pam:", node: "pve", type: "qmclone", id: "100", exitstatus: "clone failed: can't lock file '/var/lock/qemu-server/lock-101.conf' - got timeout" });
    expect(e.kind).toBe("lockTimeout");
  });
});
