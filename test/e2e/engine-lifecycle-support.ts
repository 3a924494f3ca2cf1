/**
 * Helpers shared by the examples and engine-lifecycle suites: provider sources for
 * compileToDist, clients against the simulator (root, a token, a password login), the
 * simulator's HTTP back door, SSH config for snippets, and change summaries.
 */
import * as fs from "node:fs";
import * as https from "node:https";
import * as path from "node:path";
import { generateEd25519KeyPair } from "../helpers/ssh-keys";
import { PveClient } from "../../provider/proxmox/client";
import type { RunningSimulator } from "../simulator";
import type { ConfigEntry } from "./harness";
import { REPO_ROOT } from "./harness";

/** Every provider source file (for compileToDist: the engine's provider process requires dist/). */
export function providerSources(dir = path.join(REPO_ROOT, "provider")): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return providerSources(p);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [p] : [];
  });
}

export function tokenClient(sim: RunningSimulator, apiToken: string): PveClient {
  const eq = apiToken.indexOf("=");
  return new PveClient({ endpoint: sim.url, credentials: { kind: "token", tokenId: apiToken.slice(0, eq), secret: apiToken.slice(eq + 1) }, tls: { caCert: sim.caCert } });
}

export function passwordClient(sim: RunningSimulator, username: string, password: string): PveClient {
  return new PveClient({ endpoint: sim.url, credentials: { kind: "password", username, password }, tls: { caCert: sim.caCert } });
}

/** Calls the simulator's back door (`/_sim/...`) over HTTPS with the root token. */
export function backdoor(sim: RunningSimulator, method: string, urlPath: string, body?: unknown): Promise<any> {
  const url = new URL(`/_sim${urlPath}`, sim.url);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ca: sim.caCert,
        headers: {
          Authorization: `PVEAPIToken=${sim.rootToken}`,
          ...(payload ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => {
          if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${url.pathname}: ${res.statusCode} ${text}`));
          else resolve(text ? JSON.parse(text).data : undefined);
        });
      },
    );
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

export interface SshSetup {
  key: { public: string; private: string };
  /** Options for startSimulator's `cluster` to accept the key for root. */
  cluster: { sshUsers: Record<string, { keys: string[] }> };
}

export function sshSetup(): SshSetup {
  const key = generateEd25519KeyPair({ comment: "e2e" });
  return { key, cluster: { sshUsers: { root: { keys: [key.public] } } } };
}

/** The provider's connection config for a simulator (API, and SSH when `ssh` is given). */
export function proxmoxConfig(sim: RunningSimulator, ssh?: SshSetup): Record<string, ConfigEntry> {
  const cfg: Record<string, ConfigEntry> = {
    "proxmox:endpoint": { value: sim.url },
    "proxmox:apiToken": { value: sim.rootToken, secret: true },
    "proxmox:caCert": { value: sim.caCert },
  };
  if (ssh) {
    cfg["proxmox:sshUsername"] = { value: "root" };
    cfg["proxmox:sshPrivateKey"] = { value: ssh.key.private, secret: true };
    cfg["proxmox:sshNodes"] = { value: JSON.stringify(Object.fromEntries(sim.nodes.map((n) => [n.name, { host: "127.0.0.1", port: n.sshPort }]))) };
    cfg["proxmox:sshHostKeys"] = { value: JSON.stringify(Object.fromEntries(sim.nodes.map((n) => [n.name, n.hostKeyFingerprint]))) };
  }
  return cfg;
}

/** The operations of a change summary other than `same` (empty: no change). */
export function changesOf(summary: Record<string, number | undefined> | undefined): Record<string, number> {
  return Object.fromEntries(Object.entries(summary ?? {}).filter(([op, n]) => op !== "same" && (n ?? 0) > 0)) as Record<string, number>;
}

/** Lines of a private key long enough to be recognisable (no header/footer). */
export function keyLines(privateKey: string): string[] {
  return privateKey.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"));
}
