import * as fs from "fs";
import { X509Certificate, createHash } from "crypto";
import type { Logger } from "../util/logger";

export interface TlsSettings {
  /** Skip certificate verification. Only when explicitly asked for. */
  insecure?: boolean;
  /** The CA that signed the PVE certificate: PEM text, or the path of a PEM file. */
  caCert?: string;
}

export interface ResolvedTls {
  rejectUnauthorized: boolean;
  ca?: string;
  /** Stable, non-secret identity of these settings (for agent and client caches). */
  fingerprint: string;
}

function looksLikePem(value: string): boolean {
  return value.includes("-----BEGIN");
}

/** Reads and checks the CA so that a wrong value fails now, with a message that says which. */
export function loadCaCert(caCert: string): string {
  let pem: string;
  let origin: string;
  if (looksLikePem(caCert)) {
    pem = caCert;
    origin = "the PEM text given as caCert";
  } else {
    origin = `the file '${caCert}' given as caCert`;
    try {
      pem = fs.readFileSync(caCert, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "read error";
      throw new Error(`cannot read ${origin} (${code}): caCert must be PEM text or the path of a readable PEM file`);
    }
    if (!looksLikePem(pem)) {
      throw new Error(`${origin} does not contain a PEM certificate ("-----BEGIN CERTIFICATE-----")`);
    }
  }
  try {
    new X509Certificate(pem);
  } catch {
    throw new Error(`${origin} is not a valid PEM certificate`);
  }
  return pem;
}

export function resolveTls(settings: TlsSettings): ResolvedTls {
  if (settings.insecure) {
    return { rejectUnauthorized: false, fingerprint: "insecure" };
  }
  if (settings.caCert) {
    const ca = loadCaCert(settings.caCert);
    return { rejectUnauthorized: true, ca, fingerprint: `ca:${createHash("sha256").update(ca).digest("hex").slice(0, 16)}` };
  }
  return { rejectUnauthorized: true, fingerprint: "system" };
}

const warned = new WeakMap<Logger, Set<string>>();

/** Says once per logger and endpoint that certificates are not being checked. */
export function warnInsecureOnce(logger: Logger, endpoint: string): void {
  let endpoints = warned.get(logger);
  if (!endpoints) {
    endpoints = new Set();
    warned.set(logger, endpoints);
  }
  if (endpoints.has(endpoint)) return;
  endpoints.add(endpoint);
  logger.warn(
    `TLS certificate verification is disabled for ${endpoint} (insecure=true): the connection can be intercepted. Set proxmox:caCert to the cluster CA instead.`,
  );
}
