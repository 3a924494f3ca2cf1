// Tiny HTTPS client for the simulator's own tests (verifies TLS against the sim's CA).
// Deliberately independent of provider/.

import * as fs from "fs";
import https from "https";
import * as path from "path";
import type { RunningSimulator } from "../index";

export interface CallOptions {
  token?: string;
  ticket?: string;
  csrf?: string;
  /** Cookie value sent as `PVEAuthCookie=<value>` verbatim. */
  cookie?: string;
  form?: Record<string, string | number>;
  json?: unknown;
  query?: Record<string, string | number>;
  headers?: Record<string, string>;
  /** Defaults to /api2/json. */
  prefix?: string;
}

export interface CallResult {
  status: number;
  reason: string;
  text: string;
  body: any;
}

export function call(s: Pick<RunningSimulator, "url" | "caCert">, method: string, p: string, o: CallOptions = {}): Promise<CallResult> {
  const url = new URL((o.prefix ?? "/api2/json") + p, s.url);
  for (const [k, v] of Object.entries(o.query ?? {})) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.token) headers.Authorization = `PVEAPIToken=${o.token}`;
  if (o.ticket) headers.Cookie = `PVEAuthCookie=${encodeURIComponent(o.ticket)}`;
  if (o.cookie) headers.Cookie = `PVEAuthCookie=${o.cookie}`;
  if (o.csrf) headers.CSRFPreventionToken = o.csrf;
  let body: string | undefined;
  if (o.form) {
    body = new URLSearchParams(Object.entries(o.form).map(([k, v]): [string, string] => [k, String(v)])).toString();
    headers["Content-Type"] = "application/x-www-form-urlencoded";
  } else if (o.json !== undefined) {
    body = JSON.stringify(o.json);
    headers["Content-Type"] = "application/json";
  }
  if (body !== undefined) headers["Content-Length"] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca: s.caCert, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: any;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, reason: res.statusMessage ?? "", text, body: parsed });
      });
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Where the shared PVE API reference lives; fails clearly when absent. */
export function pveApiDir(): string {
  const dir = process.env.PVE_API_DIR ?? path.resolve(__dirname, "../../../../shared/pve-api");
  if (!fs.existsSync(path.join(dir, "schema-pve-9.1.json"))) {
    throw new Error(
      `PVE API reference not found at '${dir}' (looked for schema-pve-9.1.json). ` +
        `Set PVE_API_DIR to the directory holding schema-pve-9.1.json, schema-pve-8.4.json, builtin-roles.json and fixtures/.`,
    );
  }
  return dir;
}

export function readApiJson(rel: string): any {
  return JSON.parse(fs.readFileSync(path.join(pveApiDir(), rel), "utf8"));
}
