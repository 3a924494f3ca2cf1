import type * as http from "http";
import * as https from "https";
import fetch, { Response } from "node-fetch";
import { PveApiError, type PveIdentity } from "./errors";
import type { ResolvedTls } from "./tls";

export type HttpMethod = "GET" | "POST" | "PUT" | "DELETE";

/** A request parameter as callers give it; encoded the way PVE's form parser expects. */
export type ParamValue = string | number | boolean | null | undefined | ReadonlyArray<string | number>;
export type Params = Record<string, ParamValue>;

/** PVE's response envelope: `data`, plus `total` (task log, lists) or `changes` when set. */
export interface Envelope<T> {
  data: T;
  total?: number;
  changes?: unknown;
}

export interface TransportRequest {
  method: HttpMethod;
  /** API path below /api2/json, starting with '/'. */
  path: string;
  params?: Params;
  headers?: Record<string, string>;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Secrets this request carries, to be kept out of any error it raises. */
  secrets?: Iterable<string | undefined>;
  identity?: PveIdentity;
}

export interface TransportOptions {
  /** `https://host:port`, without /api2/json. */
  endpoint: string;
  tls: ResolvedTls;
  timeoutMs?: number;
  /** Sockets kept per endpoint; the client's request bound keeps use below it. */
  maxSockets?: number;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

/**
 * Encodes parameters as PVE reads them: booleans as 1/0, lists comma-separated
 * (PVE's `-list` formats split on commas, semicolons or spaces), undefined/null left out.
 */
export function encodeParams(params: Params | undefined): URLSearchParams {
  const out = new URLSearchParams();
  if (!params) return out;
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    if (typeof value === "boolean") out.append(key, value ? "1" : "0");
    else if (typeof value === "number") {
      if (!Number.isFinite(value)) throw new TypeError(`parameter '${key}' is not a finite number`);
      out.append(key, String(value));
    } else if (Array.isArray(value)) out.append(key, value.map(String).join(","));
    else if (typeof value === "string") out.append(key, value);
    else throw new TypeError(`parameter '${key}' has an unsupported type (${typeof value}); PVE takes strings, numbers, booleans and lists`);
  }
  return out;
}

/**
 * Fails a response whose connection closed before its body was complete. node-fetch 2 pipes the
 * response (an IncomingMessage) into a PassThrough, and pipe() passes on neither Node's abort of
 * the message ('aborted', then 'close' with `complete` false) nor its error, so the body it reads
 * never ends and `res.text()` waits for the request timeout (node-fetch itself catches only a
 * chunked body cut short, as ERR_STREAM_PREMATURE_CLOSE). This raises the cut as an error of the
 * request, which node-fetch turns into an error of the body: a `FetchError` with this code.
 */
function failBodyCutShort(req: http.ClientRequest): void {
  let failed = false;
  req.on("error", () => {
    failed = true;
  });
  req.once("response", (res: http.IncomingMessage) => {
    res.once("close", () => {
      if (res.complete || failed) return;
      const length = res.headers["content-length"];
      const framing = length !== undefined ? `Content-Length ${length}` : (res.headers["transfer-encoding"] ?? "no length");
      const err = Object.assign(new Error(`connection closed before the end of the response body (${framing})`), { code: "ECONNRESET" });
      req.emit("error", err);
    });
  });
}

/** The keep-alive agent of PVE requests: an https.Agent that fails bodies cut short at once. */
class PveAgent extends https.Agent {
  // Node.js's ClientRequest calls addRequest with itself, the one place a caller of node-fetch 2 gets it.
  addRequest(req: http.ClientRequest, options: unknown): void {
    failBodyCutShort(req);
    (https.Agent.prototype as unknown as { addRequest(req: http.ClientRequest, options: unknown): void }).addRequest.call(this, req, options);
  }
}

const agents = new Map<string, https.Agent>();

/** One keep-alive agent per endpoint and TLS settings, shared by every client of this process. */
export function agentFor(endpoint: string, tls: ResolvedTls, maxSockets: number): https.Agent {
  const key = `${endpoint}|${tls.fingerprint}|${maxSockets}`;
  let agent = agents.get(key);
  if (!agent) {
    agent = new PveAgent({
      keepAlive: true,
      maxSockets,
      rejectUnauthorized: tls.rejectUnauthorized,
      ...(tls.ca ? { ca: tls.ca } : {}),
    });
    agents.set(key, agent);
  }
  return agent;
}

/** Closes idle keep-alive sockets (tests, and a provider process shutting down). */
export function destroyAgents(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}

const NOT_SENT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

function networkDetails(err: unknown): { code: string; message: string } {
  const e = err as { code?: string; errno?: string; message?: string };
  let code = e.code ?? e.errno ?? "ENETWORK";
  // node-fetch's own name for a chunked body cut short: the connection broke, as a reset
  if (code === "ERR_STREAM_PREMATURE_CLOSE") code = "ECONNRESET";
  const message = (e.message ?? String(err))
    .replace(/^request to \S+ failed, reason:\s*/, "")
    .replace(/^Invalid response body while trying to fetch \S+:\s*/, "");
  return { code, message };
}

/** Sends one HTTPS request to PVE and unwraps the envelope; knows nothing of auth or retries. */
export class HttpTransport {
  readonly endpoint: string;
  readonly baseUrl: string;
  private readonly agent: https.Agent;
  private readonly timeoutMs: number;

  constructor(opts: TransportOptions) {
    this.endpoint = opts.endpoint.replace(/\/+$/, "");
    this.baseUrl = `${this.endpoint}/api2/json`;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.agent = agentFor(this.endpoint, opts.tls, opts.maxSockets ?? 16);
  }

  async send<T>(req: TransportRequest): Promise<Envelope<T>> {
    const encoded = encodeParams(req.params);
    const hasBody = req.method === "POST" || req.method === "PUT";
    const query = !hasBody && [...encoded.keys()].length ? `?${encoded.toString()}` : "";
    const url = `${this.baseUrl}${req.path}${query}`;
    const headers: Record<string, string> = { Accept: "application/json", ...req.headers };
    let body: string | undefined;
    if (hasBody) {
      body = encoded.toString();
      headers["Content-Type"] = "application/x-www-form-urlencoded";
    }
    const timeoutMs = req.timeoutMs ?? this.timeoutMs;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onCallerAbort = (): void => controller.abort();
    req.signal?.addEventListener("abort", onCallerAbort, { once: true });
    const base = {
      method: req.method,
      path: req.path,
      endpoint: this.endpoint,
      identity: req.identity,
      secrets: req.secrets,
    };

    let res: Response;
    let text: string;
    try {
      res = await fetch(url, {
        method: req.method,
        headers,
        body,
        agent: this.agent,
        signal: controller.signal as never,
        compress: true,
      });
      text = await res.text();
    } catch (err) {
      if (timedOut) {
        throw new PveApiError({ ...base, networkCode: "ETIMEDOUT", timeoutMs });
      }
      if (req.signal?.aborted) throw err;
      const { code, message } = networkDetails(err);
      throw new PveApiError({ ...base, networkCode: code, networkMessage: message, notSent: NOT_SENT_CODES.has(code) });
    } finally {
      clearTimeout(timer);
      req.signal?.removeEventListener("abort", onCallerAbort);
    }

    let parsed: unknown;
    try {
      parsed = text.length ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    const obj = parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : undefined;

    if (!res.ok) {
      const errors = obj?.errors && typeof obj.errors === "object" ? (obj.errors as Record<string, string>) : undefined;
      throw new PveApiError({
        ...base,
        status: res.status,
        reason: res.statusText,
        bodyMessage: typeof obj?.message === "string" ? obj.message : undefined,
        errors,
      });
    }
    if (!obj || !("data" in obj)) {
      throw new PveApiError({
        ...base,
        status: res.status,
        reason: `unexpected response body (no "data" envelope): is ${this.endpoint} a Proxmox VE API endpoint?`,
      });
    }
    const envelope: Envelope<T> = { data: obj.data as T };
    if (obj.total !== undefined) envelope.total = Number(obj.total);
    if (obj.changes !== undefined) envelope.changes = obj.changes;
    return envelope;
  }
}
