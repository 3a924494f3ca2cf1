// The back door: `/_sim/...` on the same HTTPS server, outside /api2, for tests and
// benchmarks to inspect and change state out of band (drift), set faults, read the
// request log and move the virtual clock. Authenticated with the root token
// (`Authorization: PVEAPIToken=root@pam!sim=...`) or `Authorization: SimAdmin <secret>`.

import { IncomingMessage, ServerResponse } from "http";
import { timingSafeEqual } from "crypto";
import type { BackdoorHandler, Sim } from "./sim";
import { AclType } from "./state/access";
import { PveError } from "./types";

function eq(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function reply(res: ServerResponse, status: number, body: unknown): number {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json;charset=UTF-8", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
  return status;
}

function authorized(sim: Sim, req: IncomingMessage): boolean {
  const h = typeof req.headers.authorization === "string" ? req.headers.authorization.trim() : "";
  const tok = /^PVEAPIToken[= ](.+)$/.exec(h);
  if (tok && eq(tok[1], sim.access.rootToken)) return true;
  const admin = /^SimAdmin\s+(\S+)$/.exec(h);
  return Boolean(admin && eq(admin[1], sim.options.adminSecret));
}

function match(template: string, path: string): Record<string, string> | undefined {
  const t = template.split("/").filter(Boolean);
  const p = path.split("/").filter(Boolean);
  if (t.length !== p.length) return undefined;
  const out: Record<string, string> = {};
  for (let i = 0; i < t.length; i++) {
    const m = /^\{([^}]+)\}$/.exec(t[i]);
    if (m) out[m[1]] = decodeURIComponent(p[i]);
    else if (t[i] !== p[i]) return undefined;
  }
  return out;
}

export async function handleBackdoor(sim: Sim, req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<number> {
  if (!authorized(sim, req)) return reply(res, 401, { error: "back door needs the root token or the admin secret" });
  const method = (req.method ?? "GET").toUpperCase();
  const sub = url.pathname.slice("/_sim".length) || "/";
  let params: Record<string, any> = {};
  if (body.length) {
    try {
      params = JSON.parse(body.toString("utf8"));
    } catch {
      return reply(res, 400, { error: "back door bodies are JSON" });
    }
  }
  for (const [k, v] of url.searchParams) params[k] = v;
  for (const r of sim.backdoorRoutes) {
    if (r.method !== method) continue;
    const pp = match(r.path, sub);
    if (!pp) continue;
    try {
      const data = await r.handler(params, pp);
      return reply(res, 200, { data: data === undefined ? null : data });
    } catch (err) {
      const status = err instanceof PveError ? err.status : 400;
      return reply(res, status, { error: err instanceof Error ? err.message : String(err) });
    }
  }
  return reply(res, 404, { error: `no back-door route ${method} ${sub}` });
}

/** A JSON-friendly dump of the core's state. */
export function coreState(sim: Sim): Record<string, unknown> {
  const a = sim.access;
  return {
    users: [...a.users.values()].map((u) => ({
      userid: u.userid,
      enable: u.enable,
      expire: u.expire,
      firstname: u.firstname,
      lastname: u.lastname,
      email: u.email,
      comment: u.comment,
      groups: [...u.groups].sort(),
      hasPassword: Boolean(u.passwordHash),
      otp: u.otp ? u.otp.type : undefined,
      tokens: [...u.tokens.values()].map((t) => ({ tokenid: t.tokenid, comment: t.comment, expire: t.expire, privsep: t.privsep })),
    })),
    groups: [...a.groups.values()].map((g) => ({ groupid: g.groupid, comment: g.comment, members: a.groupMembers(g.groupid) })),
    roles: [...a.roles].map(([roleid, r]) => ({ roleid, privs: [...r.privs].sort(), special: r.special ? 1 : 0 })),
    acls: a.aclEntries(),
    pools: sim.pools.all().map((p) => ({ poolid: p.poolid, comment: p.comment, vms: [...p.vms].sort((x, y) => x - y), storage: [...p.storage].sort() })),
    clockOffsetMs: sim.clockOffset(),
    pveVersion: sim.options.pveVersion,
    nodes: sim.nodeNames(),
  };
}

/** Registers the core's back-door routes. */
export function registerCoreBackdoor(sim: Sim): void {
  const bd = (m: string, p: string, h: BackdoorHandler) => sim.backdoor(m, p, h);
  bd("GET", "/state", () => coreState(sim));
  bd("GET", "/log", () => sim.requestLog);
  bd("DELETE", "/log", () => sim.clearRequestLog());
  bd("GET", "/faults", () => sim.faults.config());
  bd("PUT", "/faults", (p) => sim.faults.configure(p));
  bd("POST", "/faults/rules", (p) => sim.faults.addRule(p));
  bd("DELETE", "/faults", () => sim.faults.clear());
  bd("POST", "/clock", (p) => {
    sim.advanceClock(Number(p.advanceMs ?? 0));
    return { offsetMs: sim.clockOffset(), now: sim.now() };
  });
  bd("PUT", "/users/{userid}", (p, { userid }) => {
    const u = sim.access.requireUser(userid);
    for (const k of ["email", "comment", "firstname", "lastname"] as const) {
      if (p[k] === null) delete u[k];
      else if (p[k] !== undefined) u[k] = String(p[k]);
    }
    if (p.enable !== undefined) u.enable = p.enable ? 1 : 0;
    if (p.expire !== undefined) u.expire = Number(p.expire);
    if (Array.isArray(p.groups)) u.groups = new Set(p.groups.map(String));
    if (typeof p.password === "string") sim.access.setPassword(userid, p.password);
    if (p.otp !== undefined) u.otp = p.otp ?? undefined;
  });
  bd("DELETE", "/users/{userid}", (_p, { userid }) => sim.access.deleteUser(userid));
  bd("DELETE", "/tokens/{userid}/{tokenid}", (_p, { userid, tokenid }) => sim.access.deleteToken(userid, tokenid));
  bd("PUT", "/acl", (p) => sim.access.setAcl(String(p.path), p.type as AclType, String(p.ugid), String(p.roleid), p.propagate === undefined ? 1 : Number(p.propagate)));
  bd("DELETE", "/acl", (p) => ({ removed: sim.access.removeAcl(String(p.path), p.type as AclType, String(p.ugid), String(p.roleid)) }));
  bd("PUT", "/pools/{poolid}", (p, { poolid }) => {
    const pool = sim.pools.require(poolid);
    if (p.comment === null) delete pool.comment;
    else if (p.comment !== undefined) pool.comment = String(p.comment);
  });
  bd("DELETE", "/pools/{poolid}", (_p, { poolid }) => sim.pools.delete(poolid));
  bd("PUT", "/roles/{roleid}", (p, { roleid }) => {
    const r = sim.access.roles.get(roleid);
    if (r?.special) throw new Error(`role '${roleid}' is built in`);
    sim.access.roles.set(roleid, { privs: new Set((p.privs ?? []).map(String)), special: false });
  });
}
