/**
 * The SSH part of the connection settings (used by CloudInitSnippet only): credentials, pinned
 * host keys, known_hosts, per-node addresses. Every problem goes to the lookup's list; nothing
 * is dialled here.
 */
import { DEFAULT_SSH_CONCURRENCY, type SshSettings } from "./types";
import type { SettingLookup } from "./sources";

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

function fingerprintList(value: unknown, where: string, problems: string[]): string[] {
  const list = typeof value === "string" ? value.split(/[\s,;]+/).filter(Boolean) : value;
  if (!Array.isArray(list) || !list.every((v) => typeof v === "string")) {
    problems.push(`${where} must be a fingerprint or a list of fingerprints`);
    return [];
  }
  for (const fp of list as string[]) {
    if (!FINGERPRINT.test(fp.trim())) problems.push(`${where}: '${fp}' is not a SHA256 fingerprint like SHA256:<43 base64 characters> (see \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` on the node)`);
  }
  return (list as string[]).map((fp) => fp.trim());
}

/** Host keys: a list for every node, or a JSON object keyed by node name. */
function hostKeysOf(raw: string | undefined, problems: string[]): { hostKeys: string[]; nodeHostKeys: Record<string, string[]> } {
  let hostKeys: string[] = [];
  const nodeHostKeys: Record<string, string[]> = {};
  if (!raw) return { hostKeys, nodeHostKeys };
  if (raw.startsWith("{") || raw.startsWith("[")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      problems.push(`sshHostKeys starts like JSON but is not valid JSON: give a list of fingerprints, or an object {"<node>": "SHA256:..."}`);
    }
    if (Array.isArray(parsed)) hostKeys = fingerprintList(parsed, "sshHostKeys", problems);
    else if (parsed && typeof parsed === "object") {
      for (const [node, v] of Object.entries(parsed as Record<string, unknown>)) nodeHostKeys[node] = fingerprintList(v, `sshHostKeys.${node}`, problems);
    }
  } else {
    hostKeys = fingerprintList(raw, "sshHostKeys", problems);
  }
  return { hostKeys, nodeHostKeys };
}

/** known_hosts: content when it has several words or lines, else a file path. */
function knownHostsOf(raw: string | undefined, problems: string[], readFile: (p: string) => string): { knownHosts?: string; knownHostsFile?: string } {
  if (raw === undefined || raw.trim() === "") return {};
  if (/\s/.test(raw.trim())) return { knownHosts: raw };
  const knownHostsFile = raw.trim();
  try {
    return { knownHostsFile, knownHosts: readFile(knownHostsFile) };
  } catch (e) {
    problems.push(`sshKnownHosts file '${knownHostsFile}' cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"}); give the path of a known_hosts file, or its content`);
    return { knownHostsFile };
  }
}

/** Per-node addresses: `{"pve1": {"host": "10.0.0.1", "port": 22}}` (or `{"pve1": "10.0.0.1"}`). */
function nodesOf(raw: string | undefined, problems: string[]): Record<string, { host?: string; port?: number }> {
  const nodes: Record<string, { host?: string; port?: number }> = {};
  if (!raw) return nodes;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    problems.push(`sshNodes must be a JSON object like {"pve1": {"host": "10.0.0.1", "port": 22}}`);
    return nodes;
  }
  for (const [node, v] of Object.entries(parsed as Record<string, unknown>)) {
    const entry = typeof v === "string" ? { host: v } : v;
    if (!entry || typeof entry !== "object" || Array.isArray(entry)) {
      problems.push(`sshNodes.${node} must be {"host": "<address>", "port": <port>} or an address`);
      continue;
    }
    const { host, port, ...rest } = entry as Record<string, unknown>;
    const out: { host?: string; port?: number } = {};
    if (Object.keys(rest).length > 0) problems.push(`sshNodes.${node} has unknown keys ${Object.keys(rest).join(", ")}: only host and port are read`);
    if (host !== undefined) {
      if (typeof host !== "string" || host.trim() === "" || /\s/.test(host)) problems.push(`sshNodes.${node}.host must be a host name or IP address`);
      else out.host = host;
    }
    if (port !== undefined) {
      const n = typeof port === "string" ? Number(port) : port;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 65535) problems.push(`sshNodes.${node}.port must be a port number, not '${String(port)}'`);
      else out.port = n;
    }
    nodes[node] = out;
  }
  return nodes;
}

/** The SSH settings, read in the order their problems are reported. */
export function resolveSshSettings(s: SettingLookup): SshSettings {
  const agent = s.bool("sshAgent");
  const port = s.int("sshPort", 22, { min: 1, max: 65535, what: "a port number" });
  const { hostKeys, nodeHostKeys } = hostKeysOf(s.get("sshHostKeys")?.trim(), s.problems);
  const { knownHosts, knownHostsFile } = knownHostsOf(s.get("sshKnownHosts"), s.problems, s.readFile);
  const nodes = nodesOf(s.get("sshNodes")?.trim(), s.problems);
  const concurrency = s.int("sshConcurrency", DEFAULT_SSH_CONCURRENCY, { min: 1, max: 64 });
  return {
    username: s.get("sshUsername"),
    password: s.get("sshPassword"),
    privateKey: s.get("sshPrivateKey"),
    privateKeyPassphrase: s.get("sshPrivateKeyPassphrase"),
    agent,
    agentSocket: s.get("sshAgentSocket"),
    port,
    hostKeys,
    nodeHostKeys,
    ...(knownHostsFile ? { knownHostsFile } : {}),
    ...(knownHosts !== undefined ? { knownHosts } : {}),
    nodes,
    insecureSkipHostKeyCheck: s.bool("sshInsecureSkipHostKeyCheck"),
    sudo: s.bool("sshSudo"),
    concurrency,
  };
}
