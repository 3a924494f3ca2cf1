// Helpers for the cluster part's HTTPS tests (independent of provider/).
import { startSimulator, RunningSimulator } from "../index";
import type { SimOptions } from "../sim";
import { PREPARED_LOCAL_CONTENT } from "../state/cluster";
import { call, CallResult } from "./core-http";

export const UPID_RE = /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

export interface Api {
  s: RunningSimulator;
  req(method: string, path: string, params?: Record<string, string | number>, token?: string): Promise<CallResult>;
  ok(method: string, path: string, params?: Record<string, string | number>): Promise<any>;
  waitTask(node: string, upid: string): Promise<any>;
  /** Runs a UPID-returning call and waits; returns the final task status. */
  task(method: string, path: string, params?: Record<string, string | number>): Promise<any>;
  log(node: string, upid: string): Promise<string[]>;
  /** A back-door call (`/_sim/...`, JSON body); returns its data. */
  admin(method: string, path: string, json?: Record<string, unknown>): Promise<any>;
  stop(): Promise<void>;
}

export async function startApi(opts: SimOptions = {}): Promise<Api> {
  // `local` as an admin prepared it (snippets and import content), unless the test says otherwise
  const s = await startSimulator({ seed: 42, ...opts, cluster: { localContent: PREPARED_LOCAL_CONTENT, ...(opts.cluster ?? {}) } });
  const req = (method: string, path: string, params: Record<string, string | number> = {}, token = s.rootToken) =>
    method === "GET" || method === "DELETE" ? call(s, method, path, { token, query: params }) : call(s, method, path, { token, form: params });
  const ok = async (method: string, path: string, params?: Record<string, string | number>) => {
    const r = await req(method, path, params);
    if (r.status !== 200) throw new Error(`${method} ${path} -> ${r.status} ${r.reason} ${r.text}`);
    return r.body.data;
  };
  const waitTask = async (node: string, upid: string) => {
    for (;;) {
      const st = await ok("GET", `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`);
      if (st.status === "stopped") return st;
      // on the virtual clock the task moves only when time does
      if (!(s.sim.clock.virtual && (await s.sim.virtualClock().step()))) await new Promise((r) => setTimeout(r, 5));
    }
  };
  const api: Api = {
    s, req, ok, waitTask,
    task: async (method, path, params) => {
      const upid = await ok(method, path, params);
      return waitTask(upid.split(":")[1], upid);
    },
    log: async (node, upid) => (await ok("GET", `/nodes/${node}/tasks/${encodeURIComponent(upid)}/log`, { limit: 1000 })).map((l: any) => l.t),
    admin: async (method, path, json) => {
      const r = await call(s, method, path, { prefix: "/_sim", token: s.rootToken, ...(json ? { json } : {}) });
      if (r.status !== 200) throw new Error(`${method} /_sim${path} -> ${r.status} ${r.reason} ${r.text}`);
      return r.body.data;
    },
    stop: () => s.stop(),
  };
  return api;
}

/** Creates VM `vmid` on pve1 with a 10 GiB disk on local-lvm, a cloud-init drive, and a NIC;
 *  optionally converts it to a template. */
export async function createVm(api: Api, vmid: number, extra: Record<string, string | number> = {}, template = false): Promise<void> {
  const st = await api.task("POST", "/nodes/pve1/qemu", {
    vmid, name: `vm${vmid}`, memory: 2048, cores: 2, scsihw: "virtio-scsi-pci",
    scsi0: "local-lvm:10", ide2: "local-lvm:cloudinit", net0: "virtio,bridge=vmbr0", agent: "1", ...extra,
  });
  if (st.exitstatus !== "OK") throw new Error(`create ${vmid}: ${st.exitstatus}`);
  if (template) {
    const t = await api.task("POST", `/nodes/pve1/qemu/${vmid}/template`);
    if (t.exitstatus !== "OK") throw new Error(`template ${vmid}: ${t.exitstatus}`);
  }
}

let principals = 0;

/** A user with `acls` (ACL path → comma list of privileges, each made into a role of its own) and
 *  a non-privsep token; returns the token for `api.req(..., token)`. */
export async function tokenWith(api: Api, acls: Record<string, string>): Promise<string> {
  const userid = `p${++principals}@pve`;
  await api.ok("POST", "/access/users", { userid });
  for (const [path, privs] of Object.entries(acls)) {
    const roleid = `P${++principals}`;
    await api.ok("POST", "/access/roles", { roleid, privs });
    await api.ok("PUT", "/access/acl", { path, roles: roleid, users: userid });
  }
  const t = await api.ok("POST", `/access/users/${userid}/token/tk`, { privsep: 0 });
  return `${userid}!tk=${t.value}`;
}

/** Requests as `token` (method, path, params). */
export const asToken = (api: Api, token: string) => (method: string, path: string, params: Record<string, string | number> = {}) => api.req(method, path, params, token);

/** `[status, reason]` of an answer, to compare a refusal in one expect. */
export async function statusAndReason(p: Promise<{ status: number; reason: string }>): Promise<[number, string]> {
  const r = await p;
  return [r.status, r.reason];
}

/** Waits for the task whose UPID a 200 answer carries. */
export async function waitUpid(api: Api, r: { status: number; body: any }) {
  expect(r.status).toBe(200);
  return api.waitTask(r.body.data.split(":")[1], r.body.data);
}
