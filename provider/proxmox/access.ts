import type { Params } from "./http";
import { apiPath } from "./path";
import { toBool, toNumber } from "./coerce";
import type { RequestOptions, Requester } from "./requester";
import type { TicketResponse } from "./auth";

/** The properties of a user that PVE both reports and sets. */
export interface UserFields {
  enable?: boolean;
  expire?: number;
  firstname?: string;
  lastname?: string;
  email?: string;
  comment?: string;
  groups?: string[];
}

export interface PveUser extends UserFields {
  userid: string;
  "realm-type"?: string;
  tokens?: ApiTokenInfo[];
  [key: string]: unknown;
}

export interface UserParams extends UserFields {
  keys?: string;
}

export interface ApiTokenInfo {
  tokenid: string;
  comment?: string;
  expire?: number;
  privsep?: boolean;
}

export interface TokenParams {
  comment?: string;
  expire?: number;
  /** Privilege separation (PVE default 1): the token gets only what its own ACLs grant. */
  privsep?: boolean;
}

/** The secret half of an API token. PVE shows it once; keep it in a Pulumi secret, never log it. */
export type ApiTokenSecret = string;

export interface CreatedApiToken {
  /** `user@realm!tokenid` */
  fullTokenId: string;
  info: ApiTokenInfo;
  /** SECRET: the token value (a UUID). Returned only by create/regenerate. */
  secret: ApiTokenSecret;
}

export interface PveGroup {
  groupid: string;
  comment?: string;
  users?: string[];
  [key: string]: unknown;
}

export interface PveRole {
  roleid: string;
  privs: string[];
  /** Built-in roles cannot be changed or deleted. */
  special: boolean;
}

export interface AclEntry {
  path: string;
  type: "user" | "group" | "token";
  ugid: string;
  roleid: string;
  propagate: boolean;
}

export interface AclUpdate {
  path: string;
  roles: string[];
  users?: string[];
  groups?: string[];
  tokens?: string[];
  /** PVE default: true. */
  propagate?: boolean;
  /** Remove these grants instead of adding them. */
  delete?: boolean;
}

/** path → privilege → propagate flag (1/0). */
export type EffectivePermissions = Record<string, Record<string, number>>;

function splitList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== "string" || value === "") return [];
  return value.split(/[,;\s]+/).filter(Boolean);
}

function normaliseToken(t: ApiTokenInfo & Record<string, unknown>): ApiTokenInfo {
  return {
    ...t,
    expire: toNumber(t.expire),
    privsep: toBool(t.privsep),
  };
}

/** `GET /access/users` (full=1) lists tokens as an array; `GET /access/users/{userid}` as an
 *  object keyed by token id. Both become ApiTokenInfo[]. */
function normaliseTokens(tokens: unknown): ApiTokenInfo[] | undefined {
  if (Array.isArray(tokens)) return tokens.map((t) => normaliseToken(t as ApiTokenInfo & Record<string, unknown>));
  if (tokens && typeof tokens === "object") {
    return Object.entries(tokens as Record<string, Record<string, unknown>>).map(([tokenid, t]) => normaliseToken({ ...(t ?? {}), tokenid } as ApiTokenInfo & Record<string, unknown>));
  }
  return undefined;
}

function normaliseUser(u: PveUser): PveUser {
  return {
    ...u,
    enable: toBool(u.enable),
    expire: toNumber(u.expire),
    groups: u.groups === undefined ? undefined : splitList(u.groups),
    tokens: normaliseTokens(u.tokens),
  };
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** Users, API tokens, groups, roles, ACLs and effective permissions (/access). */
export class AccessApi {
  constructor(private readonly r: Requester) {}

  // Users

  async listUsers(params: { full?: boolean; enabled?: boolean } = {}, opts?: RequestOptions): Promise<PveUser[]> {
    const rows = await this.r.get<PveUser[]>("/access/users", params, opts);
    return rows.map(normaliseUser);
  }

  async getUser(userid: string, opts?: RequestOptions): Promise<PveUser> {
    const u = await this.r.get<PveUser>(apiPath`/access/users/${userid}`, undefined, opts);
    return withoutUndefined(normaliseUser({ ...u, userid }));
  }

  /** `password` is the initial password (pve realm); it never appears in errors or logs. */
  async createUser(userid: string, params: UserParams & { password?: string } = {}, opts?: RequestOptions): Promise<void> {
    await this.r.post("/access/users", { userid, ...params } as Params, opts);
  }

  /** `groups` replaces the user's groups unless `append` is set. */
  async updateUser(userid: string, params: UserParams & { append?: boolean }, opts?: RequestOptions): Promise<void> {
    await this.r.put(apiPath`/access/users/${userid}`, params as Params, opts);
  }

  async deleteUser(userid: string, opts?: RequestOptions): Promise<void> {
    await this.r.del(apiPath`/access/users/${userid}`, undefined, opts);
  }

  // API tokens

  async listTokens(userid: string, opts?: RequestOptions): Promise<ApiTokenInfo[]> {
    const rows = await this.r.get<Array<ApiTokenInfo & Record<string, unknown>>>(apiPath`/access/users/${userid}/token`, undefined, opts);
    return rows.map(normaliseToken);
  }

  async getToken(userid: string, tokenid: string, opts?: RequestOptions): Promise<ApiTokenInfo> {
    const t = await this.r.get<ApiTokenInfo & Record<string, unknown>>(apiPath`/access/users/${userid}/token/${tokenid}`, undefined, opts);
    return withoutUndefined(normaliseToken({ ...t, tokenid }));
  }

  /** Creates a token; the result carries its secret, which PVE will not show again. */
  async createToken(userid: string, tokenid: string, params: TokenParams = {}, opts?: RequestOptions): Promise<CreatedApiToken> {
    const res = await this.r.post<{ "full-tokenid": string; info: ApiTokenInfo & Record<string, unknown>; value: string }>(
      apiPath`/access/users/${userid}/token/${tokenid}`,
      params as Params,
      opts,
    );
    return {
      fullTokenId: res["full-tokenid"],
      info: withoutUndefined(normaliseToken({ ...res.info, tokenid })),
      secret: res.value,
    };
  }

  async updateToken(userid: string, tokenid: string, params: TokenParams & { delete?: string[] }, opts?: RequestOptions): Promise<ApiTokenInfo> {
    const res = await this.r.put<ApiTokenInfo & Record<string, unknown>>(apiPath`/access/users/${userid}/token/${tokenid}`, params as Params, opts);
    const { value: _secret, ...info } = (res ?? {}) as ApiTokenInfo & Record<string, unknown>;
    return withoutUndefined(normaliseToken({ ...info, tokenid }));
  }

  async deleteToken(userid: string, tokenid: string, opts?: RequestOptions): Promise<void> {
    await this.r.del(apiPath`/access/users/${userid}/token/${tokenid}`, undefined, opts);
  }

  // Groups

  listGroups(opts?: RequestOptions): Promise<PveGroup[]> {
    return this.r.get<PveGroup[]>("/access/groups", undefined, opts);
  }

  async getGroup(groupid: string, opts?: RequestOptions): Promise<PveGroup> {
    const g = await this.r.get<{ comment?: string; members?: string[] }>(apiPath`/access/groups/${groupid}`, undefined, opts);
    return withoutUndefined({ groupid, comment: g.comment, users: g.members ? splitList(g.members) : undefined });
  }

  async createGroup(groupid: string, comment?: string, opts?: RequestOptions): Promise<void> {
    await this.r.post("/access/groups", { groupid, comment }, opts);
  }

  async updateGroup(groupid: string, comment: string, opts?: RequestOptions): Promise<void> {
    await this.r.put(apiPath`/access/groups/${groupid}`, { comment }, opts);
  }

  async deleteGroup(groupid: string, opts?: RequestOptions): Promise<void> {
    await this.r.del(apiPath`/access/groups/${groupid}`, undefined, opts);
  }

  // Roles

  async listRoles(opts?: RequestOptions): Promise<PveRole[]> {
    const rows = await this.r.get<Array<{ roleid: string; privs?: string; special?: unknown }>>("/access/roles", undefined, opts);
    return rows.map((r) => ({ roleid: r.roleid, privs: splitList(r.privs).sort(), special: toBool(r.special) ?? false }));
  }

  /** GET /access/roles/{roleid} answers `{priv: 1, ...}`; this returns the privilege names, sorted. */
  async getRole(roleid: string, opts?: RequestOptions): Promise<string[]> {
    const privs = await this.r.get<Record<string, unknown>>(apiPath`/access/roles/${roleid}`, undefined, opts);
    return Object.entries(privs ?? {})
      .filter(([, v]) => toBool(v))
      .map(([k]) => k)
      .sort();
  }

  async createRole(roleid: string, privs: string[], opts?: RequestOptions): Promise<void> {
    await this.r.post("/access/roles", { roleid, privs }, opts);
  }

  /** Replaces the role's privileges, or adds to them with `append`. */
  async updateRole(roleid: string, privs: string[], params: { append?: boolean } = {}, opts?: RequestOptions): Promise<void> {
    await this.r.put(apiPath`/access/roles/${roleid}`, { privs, append: params.append }, opts);
  }

  async deleteRole(roleid: string, opts?: RequestOptions): Promise<void> {
    await this.r.del(apiPath`/access/roles/${roleid}`, undefined, opts);
  }

  // ACLs and permissions

  async getAcl(opts?: RequestOptions): Promise<AclEntry[]> {
    const rows = await this.r.get<Array<Omit<AclEntry, "propagate"> & { propagate?: unknown }>>("/access/acl", undefined, opts);
    return rows.map((a) => ({ ...a, propagate: toBool(a.propagate) ?? true }));
  }

  async updateAcl(update: AclUpdate, opts?: RequestOptions): Promise<void> {
    await this.r.put("/access/acl", { ...update } as Params, opts);
  }

  /** Effective privileges of the caller, or of `userid` (a user or a full token id). */
  permissions(params: { path?: string; userid?: string } = {}, opts?: RequestOptions): Promise<EffectivePermissions> {
    return this.r.get<EffectivePermissions>("/access/permissions", params, opts);
  }

  /** POST /access/ticket (not allowed for API tokens). The response holds secrets (ticket, CSRF token). */
  createTicket(params: { username: string; password: string; otp?: string; realm?: string; "tfa-challenge"?: string }, opts?: RequestOptions): Promise<TicketResponse> {
    return this.r.post<TicketResponse>("/access/ticket", params, { ...opts, noRetry: true });
  }
}
