// The contract between the simulator's parts: the HTTP core (server, validation, auth,
// permissions) and the endpoint modules (access, pools, cluster, qemu, storage, tasks).
// The simulator shares no code with provider/: it is an independent reading of PVE.

/** A parameter definition, in the shape of PVE's JSON schema (our own subset). */
export interface ParamDef {
  type: "string" | "integer" | "number" | "boolean" | "array" | "object";
  optional?: boolean;
  /** PVE format names we check: pve-vmid, pve-node, pve-storage-id, pve-poolid, pve-userid,
   *  pve-tokenid, pve-roleid, pve-groupid, pve-configid, dns-name, urlencoded, pve-tag-list,
   *  pve-configid-list, pve-privileges... (see validate.ts); or an inline property-string schema. */
  format?: string;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  /** Extension (see README "Contract changes"): PVE's `minLength`. */
  minLength?: number;
  pattern?: string;
  /** Extension: PVE's `requires` — this parameter needs that one to be present too. */
  requires?: string;
  default?: unknown;
  /** Added in PVE 9.x (ENDPOINTS.md, differences vs 8.4): not accepted when simulating 8.4. */
  sincePve9?: boolean;
}

export type ParamDefs = Record<string, ParamDef>;

/** PVE permission check, same shape as the schema's `permissions.check`. */
export type PermCheck =
  | ["perm", string, string[]]
  | ["perm", string, string[], "any", 1]
  | ["perm", string, string[], "require_param", string]
  | ["and", ...PermCheck[]]
  | ["or", ...PermCheck[]]
  | ["userid-param", "self"]
  /** Extension: `["userid-param", "Realm.AllocateUser"]` = that privilege on /access/realm/<realm of userid>. */
  | ["userid-param", string]
  | ["userid-group", string[], ...unknown[]]
  | ["perm-modify", string];

export interface EndpointPermissions {
  check?: PermCheck;
  /** `user: "all"` (any authenticated user) or `user: "world"`. */
  user?: "all" | "world";
  /** The handler does its own checks (PVE: `permissions => { description => ... }` only). */
  handlerChecks?: boolean;
}

/** Who is calling. For an API token, `userid` is the owning user and `tokenid` the full id. */
export interface AuthContext {
  userid: string;
  tokenid?: string;
  /** Full id used for task ownership and ACL lookup: `user@realm!token` or `user@realm`. */
  principal: string;
}

export interface SimRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Path under /api2/json, e.g. `/nodes/pve1/qemu/100/config`. */
  path: string;
  /** Validated and coerced parameters (path + query + body merged). */
  params: Record<string, any>;
  auth: AuthContext;
}

export interface RouteDef {
  method: SimRequest["method"];
  /** Template as in the schema: `/nodes/{node}/qemu/{vmid}/clone`. */
  path: string;
  params: ParamDefs;
  permissions?: EndpointPermissions;
  /** PVE's `protected => 1`: pveproxy hands the call to pvedaemon on the node, so it holds one of
   *  that node's pvedaemon workers (writes always do; a protected GET such as an agent call too). */
  protected?: boolean;
  /** PVE's `allowtoken: 0` endpoints refuse API tokens with 403. Default true. */
  allowToken?: boolean;
  /** Returns the value for `data` (or `{ data, total }` via `withTotal`). Throw `PveError`. */
  handler(req: SimRequest): unknown | Promise<unknown>;
}

/** A response carrying `total` beside `data` (task log, task list). */
export interface WithTotal {
  __withTotal: true;
  data: unknown;
  total: number;
}

export function withTotal(data: unknown, total: number): WithTotal {
  return { __withTotal: true, data, total };
}

/** An error as PVE raises it: HTTP status, message (first line becomes the reason phrase)
 *  and per-parameter errors for 400s. Non-PveError throws become 500 with their message. */
export class PveError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
  ) {
    super(message);
  }
}

export function paramError(errors: Record<string, string>): PveError {
  return new PveError(400, "Parameter verification failed.", errors);
}

// ---------------------------------------------------------------------------------------
// Cross-module views. The core (sim.ts) owns access, permissions and pools and implements
// AccessView and PoolView; the cluster part (nodes, storages, VMs, HA, tasks, SSH)
// implements ClusterView. Each side only talks to the other through these.

export interface AccessView {
  /** Throws PveError 403 `Permission check failed (<path>, <priv>)` unless the caller has
   *  all of `privs` on `path` (or any one of them when `any` is set). */
  check(auth: AuthContext, path: string, privs: string[], any?: boolean): void;
  has(auth: AuthContext, path: string, priv: string): boolean;
  /** PVE removes `/vms/<id>` ACLs when a VM is destroyed. */
  removeVmAcls(vmid: number): void;
  isRoot(auth: AuthContext): boolean;
}

export interface PoolView {
  exists(poolid: string): boolean;
  poolOfVm(vmid: number): string | undefined;
  /** Throws PveError (500) with PVE's text when the VM already belongs to a pool. */
  addVm(poolid: string, vmid: number): void;
  removeVm(vmid: number): void;
  poolOfStorage(storage: string): string[];
}

/** A `cluster/resources`-style entry (id `qemu/100`, `storage/<node>/<sid>`, `node/<n>`). */
export type ResourceEntry = Record<string, unknown> & { id: string; type: string };

export interface ClusterView {
  nodeNames(): string[];
  vmExists(vmid: number): boolean;
  /** Entry as `GET /cluster/resources` shows it; undefined when absent or destroyed. */
  vmResource(vmid: number): ResourceEntry | undefined;
  storageExists(storage: string): boolean;
  /** One entry per node the storage is available on. */
  storageResources(storage: string): ResourceEntry[];
}
