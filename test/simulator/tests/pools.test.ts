// Pools, both API styles (BEHAVIOURS.md §6). Members come from the ClusterView; this suite
// installs its own small view so it does not depend on the cluster part's state.

import { RunningSimulator, startSimulator } from "../index";
import { ClusterView, ResourceEntry } from "../types";
import { call, readApiJson } from "./core-http";

let s: RunningSimulator;
let T: string;
const api = (method: string, path: string, form?: Record<string, string | number>, query?: Record<string, string>) =>
  call(s, method, path, { token: T, form, query });

const vms = new Map<number, ResourceEntry>();
const storages = new Map<string, ResourceEntry[]>();
const view: ClusterView = {
  nodeNames: () => ["pve1", "pve2"],
  vmExists: (id) => vms.has(id),
  vmResource: (id) => vms.get(id),
  storageExists: (sid) => storages.has(sid),
  storageResources: (sid) => storages.get(sid) ?? [],
};

beforeAll(async () => {
  s = await startSimulator({ seed: 4 });
  T = s.rootToken;
  s.sim.cluster = view;
  for (const vmid of [100, 101, 102]) {
    vms.set(vmid, { id: `qemu/${vmid}`, type: "qemu", vmid, node: "pve1", name: `vm${vmid}`, status: "stopped", template: 0 });
  }
  storages.set("local", [
    { id: "storage/pve1/local", type: "storage", storage: "local", node: "pve1", status: "available", content: "iso,snippets", plugintype: "dir", shared: 0 },
    { id: "storage/pve2/local", type: "storage", storage: "local", node: "pve2", status: "available", content: "iso,snippets", plugintype: "dir", shared: 0 },
  ]);
});
afterAll(() => s.stop());

test("new style: create, list, get with members, update, delete", async () => {
  expect((await api("POST", "/pools", { poolid: "p1", comment: "Test pool" })).status).toBe(200);
  const list = (await api("GET", "/pools")).body.data;
  expect(list).toContainEqual({ poolid: "p1", comment: "Test pool" });
  expect(Object.keys(list[0]).sort()).toEqual(Object.keys(readApiJson("fixtures/pools-list.json").data[0]).sort());

  expect((await api("PUT", "/pools", { vms: "100,101", storage: "local" }, { poolid: "p1" })).status).toBe(200);
  const got = (await api("GET", "/pools", undefined, { poolid: "p1" })).body.data;
  expect(got).toHaveLength(1);
  expect(got[0].poolid).toBe("p1");
  expect(got[0].members.map((m: any) => m.id)).toEqual(["qemu/100", "qemu/101", "storage/pve1/local"]);
  const fx = readApiJson("fixtures/pools-get-by-poolid.json").data[0];
  expect(Object.keys(got[0]).sort()).toEqual(Object.keys(fx).sort());
  const onlyStorage = (await api("GET", "/pools", undefined, { poolid: "p1", type: "storage" })).body.data[0].members;
  expect(onlyStorage.map((m: any) => m.type)).toEqual(["storage"]);

  const typeNoPool = await api("GET", "/pools", undefined, { type: "qemu" });
  expect(typeNoPool.status).toBe(400);
  expect(Object.keys(typeNoPool.body.errors)).toEqual(["poolid"]);

  await api("PUT", "/pools", { poolid: "p1", comment: "changed" });
  expect((await api("GET", "/pools", undefined, { poolid: "p1" })).body.data[0].comment).toBe("changed");

  const notEmpty = await api("DELETE", "/pools", undefined, { poolid: "p1" });
  expect(notEmpty.status).toBe(500);
  expect(notEmpty.body.message).toBe("delete pool failed: pool 'p1' is not empty (contains VM 100)\n");
  await api("PUT", "/pools", { poolid: "p1", vms: "100,101", delete: 1 });
  expect((await api("DELETE", "/pools", undefined, { poolid: "p1" })).body.message).toBe("delete pool failed: pool 'p1' is not empty (contains storage 'local')\n");
  await api("PUT", "/pools", { poolid: "p1", storage: "local", delete: 1 });
  expect((await api("DELETE", "/pools", undefined, { poolid: "p1" })).status).toBe(200);
  const gone = await api("GET", "/pools", undefined, { poolid: "p1" });
  expect(gone.status).toBe(500);
  expect(gone.body.message).toBe("pool 'p1' does not exist\n");
});

test("update errors carry the prefix; a VM is in at most one pool", async () => {
  await api("POST", "/pools", { poolid: "a" });
  await api("POST", "/pools", { poolid: "b" });
  await api("PUT", "/pools", { poolid: "a", vms: "102" });
  expect((await api("PUT", "/pools", { poolid: "a", vms: "102" })).body.message).toBe("update pools failed: VM 102 is already a pool member\n");
  expect((await api("PUT", "/pools", { poolid: "b", vms: "102" })).body.message).toBe(
    "update pools failed: VM 102 belongs already to pool 'a' and 'allow-move' is not set\n",
  );
  expect((await api("PUT", "/pools", { poolid: "b", vms: "102", "allow-move": 1 })).status).toBe(200);
  expect(s.sim.pools.poolOfVm(102)).toBe("b");
  expect(s.sim.pools.get("a")!.vms.has(102)).toBe(false);
  expect((await api("PUT", "/pools", { poolid: "a", vms: "102", delete: 1 })).body.message).toBe("update pools failed: VM 102 is not a pool member\n");
  expect((await api("PUT", "/pools", { poolid: "zz", comment: "x" })).body.message).toBe("update pools failed: pool 'zz' does not exist\n");
  expect((await api("PUT", "/pools", { poolid: "a", storage: "nosuch" })).body.message).toBe("update pools failed: storage 'nosuch' does not exist\n");
  expect((await api("POST", "/pools", { poolid: "a" })).body.message).toBe("create pool failed: pool 'a' already exists\n");
});

test("destroyed guests do not keep a pool alive", async () => {
  await api("POST", "/pools", { poolid: "ghostly" });
  s.sim.pools.addVm("ghostly", 999);
  expect((await api("DELETE", "/pools", undefined, { poolid: "ghostly" })).status).toBe(200);
});

test("nested pools: parent must exist, parent cannot be deleted while it has children", async () => {
  expect((await api("POST", "/pools", { poolid: "top/child" })).body.message).toMatch(/^create pool failed: parent 'top' does not exist/);
  await api("POST", "/pools", { poolid: "top" });
  expect((await api("POST", "/pools", { poolid: "top/child" })).status).toBe(200);
  expect((await api("POST", "/pools", { poolid: "top/child/grand" })).status).toBe(200);
  expect((await api("POST", "/pools", { poolid: "top/child/grand/too-deep" })).status).toBe(400);
  expect((await api("DELETE", "/pools", undefined, { poolid: "top" })).body.message).toBe("delete pool failed: pool 'top' is not empty (contains pool 'top/child')\n");
});

test("deprecated style /pools/{poolid}", async () => {
  await api("POST", "/pools", { poolid: "old", comment: "Test pool" });
  await api("PUT", "/pools/old", { vms: "100" });
  const r = (await api("GET", "/pools/old")).body.data;
  expect(Object.keys(r).sort()).toEqual(Object.keys(readApiJson("fixtures/pools-poolid-deprecated.json").data).sort());
  expect(r.members.map((m: any) => m.id)).toEqual(["qemu/100"]);
  await api("PUT", "/pools/old", { vms: "100", delete: 1 });
  expect((await api("DELETE", "/pools/old")).status).toBe(200);
  expect((await api("GET", "/pools/old")).status).toBe(500);
});

test("pool ACLs go with the pool; listing needs Pool.Audit", async () => {
  await api("POST", "/pools", { poolid: "acl" });
  await api("POST", "/pools", { poolid: "hidden" });
  await api("POST", "/access/users", { userid: "pooluser@pve" });
  await api("PUT", "/access/acl", { path: "/pool/acl", roles: "PVEPoolUser", users: "pooluser@pve" });
  const tok = (await api("POST", "/access/users/pooluser@pve/token/tok1", { privsep: 0 })).body.data.value;
  const as = `pooluser@pve!tok1=${tok}`;
  const list = (await call(s, "GET", "/pools", { token: as })).body.data;
  expect(list.map((p: any) => p.poolid)).toEqual(["acl"]);
  const denied = await call(s, "GET", "/pools", { token: as, query: { poolid: "hidden" } });
  expect(denied.status).toBe(403);
  expect(denied.reason).toBe("Permission check failed (/pool/hidden, Pool.Audit)");
  // Adding a VM needs the right to modify permissions on it.
  await api("PUT", "/access/acl", { path: "/pool/acl", roles: "PVEPoolAdmin", users: "pooluser@pve" });
  const add = await call(s, "PUT", "/pools", { token: as, form: { poolid: "acl", vms: "101" } });
  expect(add.status).toBe(500);
  expect(add.body.message).toBe("update pools failed: Permission check failed (/vms/101, Permissions.Modify|VM.Allocate)\n");
  await api("DELETE", "/pools", undefined, { poolid: "acl" });
  expect((await api("GET", "/access/acl")).body.data.some((a: any) => a.path === "/pool/acl")).toBe(false);
});
