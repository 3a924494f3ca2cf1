// The HTTPS front: routing under /api2/json, request parsing, auth, faults, validation,
// permission checks, the `{data}` envelope and PVE's error mapping (BEHAVIOURS.md §1).
// The back door (/_sim/...) is dispatched to backdoor.ts.

import { STATUS_CODES, IncomingMessage, ServerResponse } from "http";
import https from "https";
import type { Auth, AuthOutcome } from "./auth";
import { handleBackdoor } from "./backdoor";
import { enforcePermissions } from "./permissions";
import { redactParams, type RequestLogEntry, type Sim } from "./sim";
import { AuthContext, PveError, RouteDef, SimRequest, WithTotal } from "./types";
import { RawValue, validateParams } from "./validate";

const METHODS = new Set(["GET", "POST", "PUT", "DELETE"]);

interface Matched {
  route: RouteDef;
  pathParams: Record<string, string>;
}

/** Finds the route for a concrete path: same segment count, literal segments equal;
 *  the most literal match wins (`/pools` over `/pools/{poolid}`). */
export function matchRoute(routes: RouteDef[], method: string, path: string): { match?: Matched; pathExists: boolean } {
  const segs = path.split("/").filter((s) => s !== "");
  let best: Matched | undefined;
  let bestScore = -1;
  let pathExists = false;
  for (const route of routes) {
    const tsegs = route.path.split("/").filter((s) => s !== "");
    if (tsegs.length !== segs.length) continue;
    const params: Record<string, string> = {};
    let score = 0;
    let ok = true;
    for (let i = 0; i < tsegs.length; i++) {
      const t = tsegs[i];
      const pm = /^\{([^}]+)\}$/.exec(t);
      if (pm) {
        let v: string;
        try {
          v = decodeURIComponent(segs[i]);
        } catch {
          ok = false;
          break;
        }
        params[pm[1]] = v;
      } else if (t === segs[i]) {
        score++;
      } else {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    pathExists = true;
    if (route.method === method && score > bestScore) {
      best = { route, pathParams: params };
      bestScore = score;
    }
  }
  return { match: best, pathExists };
}

function reasonPhrase(status: number, message: string): string {
  const first = message.replace(/[\r\n]+$/, "").split(/\r?\n|\r/)[0] ?? "";
  // Node refuses control characters in the status line; PVE would not send them either.
  const clean = first.replace(/[^\x20-\x7e\xa0-\xff]/g, "?");
  return clean || STATUS_CODES[status] || "Error";
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** Parses a form or JSON body into a parameter object. */
export function parseBody(contentType: string | undefined, body: Buffer): Record<string, RawValue> {
  if (body.length === 0) return {};
  const text = body.toString("utf8");
  if ((contentType ?? "").toLowerCase().includes("application/json")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      throw new PveError(400, `malformed JSON string: ${(e as Error).message}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new PveError(400, "malformed JSON string: request body is not an object");
    }
    return parsed as Record<string, RawValue>;
  }
  const out: Record<string, RawValue> = {};
  for (const [k, v] of new URLSearchParams(text)) out[k] = v;
  return out;
}

function send(res: ServerResponse, status: number, reason: string, body: string | undefined): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | number> = {
    "Cache-Control": "max-age=0",
    Pragma: "no-cache",
    Expires: new Date().toUTCString(),
  };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json;charset=UTF-8";
    headers["Content-Length"] = Buffer.byteLength(body);
  } else {
    headers["Content-Length"] = 0;
  }
  res.writeHead(status, reason, headers);
  res.end(body);
}

/** Writes a PveError (or any error) the way PVE's formatter does. */
export function sendError(res: ServerResponse, err: unknown): number {
  const e = err instanceof PveError ? err : new PveError(500, err instanceof Error ? err.message : String(err));
  const message = e.message.endsWith("\n") ? e.message : `${e.message}\n`;
  const body: Record<string, unknown> = { data: null, message };
  if (e.errors) body.errors = e.errors;
  send(res, e.status, reasonPhrase(e.status, e.message), JSON.stringify(body));
  return e.status;
}

function sendData(res: ServerResponse, result: unknown): void {
  let body: Record<string, unknown>;
  if (result && typeof result === "object" && (result as WithTotal).__withTotal === true) {
    const wt = result as WithTotal;
    body = { data: wt.data ?? null, total: wt.total };
  } else {
    body = { data: result === undefined ? null : result };
  }
  send(res, 200, "OK", JSON.stringify(body));
}

export class ApiServer {
  private readonly proxyWorkers: WorkerPool;
  /** pvedaemon per node (`""`: the node the client talks to, for cluster-wide paths). */
  private readonly daemonWorkers = new Map<string, WorkerPool>();

  constructor(private readonly sim: Sim) {
    this.proxyWorkers = new WorkerPool(sim.options.apiWorkers);

  }

  private get auth(): Auth {
    return this.sim.auth;
  }

  create(tls: { cert: string; key: string }): https.Server {
    return https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
      this.handle(req, res).catch((err) => {
        try {
          sendError(res, err);
        } catch {
          res.destroy();
        }
      });
    });
  }

  private async unauthorized(res: ServerResponse, reason: string): Promise<number> {
    if (this.sim.options.unauthorizedDelayMs > 0) {
      await new Promise((r) => setTimeout(r, this.sim.options.unauthorizedDelayMs));
    }
    send(res, 401, reason, undefined);
    return 401;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = new URL(req.url ?? "/", "https://sim.invalid");
    const method = (req.method ?? "GET").toUpperCase();
    const entry: RequestLogEntry = { time: this.sim.now(), method, path: url.pathname, status: 0, durationMs: 0 };
    const finish = (status: number) => {
      entry.status = status;
      entry.durationMs = Date.now() - started;
      this.sim.requestLog.push(entry);
    };

    if (url.pathname === "/_sim" || url.pathname.startsWith("/_sim/")) {
      const body = await readBody(req);
      const status = await handleBackdoor(this.sim, req, res, url, body);
      finish(status);
      return;
    }

    const m = /^\/api2\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (!m) {
      send(res, 501, "no such uri", undefined);
      return finish(501);
    }
    const format = m[1];
    const path = (m[2] ?? "/").replace(/\/+$/, "") || "/";
    entry.path = path;
    const body = await readBody(req);
    if (format !== "json") {
      send(res, 501, "no such uri", undefined);
      return finish(501);
    }

    try {
      const status = await this.api(req, res, method, path, url.searchParams, body, entry);
      finish(status);
    } catch (err) {
      finish(sendError(res, err));
    }
  }

  private async api(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
    query: URLSearchParams,
    body: Buffer,
    entry: RequestLogEntry,
  ): Promise<number> {
    const found = METHODS.has(method) ? matchRoute(this.sim.routes, method, path) : { pathExists: false };
    const route = found.match?.route;
    if (route) entry.template = route.path;

    // Authentication (world routes such as /access/ticket need none).
    let auth: AuthContext | undefined;
    let outcome: AuthOutcome = { kind: "none" };
    if (route?.permissions?.user !== "world") {
      outcome = this.auth.authenticate(req.headers);
      if (outcome.kind !== "ok") return this.unauthorized(res, this.auth.failureReason(outcome));
    } else if (typeof req.headers.authorization === "string" && /^PVEAPIToken/.test(req.headers.authorization)) {
      outcome = this.auth.authenticate(req.headers);
    }
    if (outcome.kind === "ok") {
      auth = outcome.auth;
      entry.principal = auth.principal;
      if (outcome.ticket && method !== "GET") {
        const csrf = req.headers["csrfpreventiontoken"];
        if (!this.auth.verifyCsrf(auth.userid, typeof csrf === "string" ? csrf : undefined)) {
          return this.unauthorized(res, "Permission denied - invalid csrf token");
        }
      }
    }

    if (!route || !found.match) {
      throw new PveError(501, `Method '${method} ${path}' not implemented`);
    }
    if (route.allowToken === false && auth?.tokenid) {
      throw new PveError(403, `Permission check failed (URI '${path}' not available with API token, need proper ticket.\n)`);
    }

    // A worker process serves the request from here to the response (async tasks fork, so a
    // clone holds a worker only for its synchronous part; a flock wait holds it throughout).
    const pool = method === "GET" && !route.protected ? this.proxyWorkers : this.daemonPool(found.match.pathParams.node);
    await pool.acquire();
    try {
      return await this.processRequest(req, res, method, path, query, body, route, found.match, auth, entry);
    } finally {
      pool.release();
    }
  }

  private daemonPool(node: string | undefined): WorkerPool {
    const key = node && this.sim.nodeNames().includes(node) ? node : "";
    let pool = this.daemonWorkers.get(key);
    if (!pool) {
      pool = new WorkerPool(this.sim.options.apiWorkers);
      this.daemonWorkers.set(key, pool);
    }
    return pool;
  }

  private async processRequest(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    path: string,
    query: URLSearchParams,
    body: Buffer,
    route: RouteDef,
    match: { pathParams: Record<string, string> },
    auth: AuthContext | undefined,
    entry: RequestLogEntry,
  ): Promise<number> {
    // Faults, then modelled latency.
    const fault = this.sim.faults.forRequest(method, route.path, path);
    const modelled = this.sim.latencyModel(method, route.path, path);
    if (modelled > 0) await this.sim.delay(modelled);
    if (fault.latencyMs > 0) await new Promise((r) => setTimeout(r, fault.latencyMs));
    if (fault.kind === "reset") {
      entry.fault = "reset";
      req.socket.destroy();
      return 0;
    }
    if (fault.kind === "error") {
      entry.fault = "error";
      throw new PveError(fault.status, fault.message);
    }

    // Parameters: body (POST/PUT) then query overriding; path parameters must agree.
    const merged: Record<string, RawValue> = {};
    if (method === "POST" || method === "PUT") {
      Object.assign(merged, parseBody(req.headers["content-type"], body));
    }
    for (const [k, v] of query) merged[k] = v;
    const dupErrors: Record<string, string> = {};
    for (const [k, v] of Object.entries(match.pathParams)) {
      if (merged[k] !== undefined && String(merged[k]) !== v) {
        dupErrors[k] = "duplicate parameter (already defined in URI) with conflicting values!";
      }
      merged[k] = v;
    }
    if (Object.keys(dupErrors).length) throw new PveError(400, "Parameter verification failed.", dupErrors);
    const params = validateParams(route.params, merged);
    entry.params = redactParams(params);

    const ctx: AuthContext = auth ?? { userid: "", principal: "" };
    if (route.permissions?.user !== "world") {
      enforcePermissions({ access: this.sim.access, pools: this.sim.pools }, route.permissions, ctx, params);
    }

    const simReq: SimRequest = { method: method as SimRequest["method"], path, params, auth: ctx };
    const result = await route.handler(simReq);
    if (fault.kind === "lostResponse") {
      // Carried out, but the answer never reaches the client (network trouble after the fact).
      entry.fault = "lostResponse";
      req.socket.destroy();
      return 0;
    }
    sendData(res, result);
    return 200;
  }
}

/** N worker processes: a request waits for a free one (FIFO). */
class WorkerPool {
  private busy = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly size: number) {}

  acquire(): Promise<void> {
    if (this.busy < this.size) {
      this.busy++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy--;
  }
}
