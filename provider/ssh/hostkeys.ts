/**
 * Host-key verification for the snippet transport: OpenSSH-style SHA256 fingerprints,
 * pinned fingerprints (per node or for every node), and known_hosts content (plain,
 * `[host]:port`, wildcard and hashed `|1|salt|hash` entries, `@revoked` markers).
 *
 * Verification fails closed: with nothing configured every key is "unknown", and the error
 * carries the fingerprint to pin. Skipping it is an explicit option that logs a warning.
 */
import { createHash, createHmac, timingSafeEqual } from "crypto";
import { Logger, silentLogger } from "../util/logger";
import { HostKeyError, SshEndpoint, SshError, describeEndpoint } from "./errors";

export interface HostKeyPolicy {
  /** Fingerprints (`SHA256:...`) trusted for any node (for example every node of a cluster). */
  fingerprints?: readonly string[];
  /** Fingerprints trusted per node name; a node listed here must present one of its own. */
  nodeFingerprints?: Readonly<Record<string, readonly string[]>>;
  /** known_hosts file content (for example a copy of a node's /etc/pve/priv/known_hosts). */
  knownHosts?: string;
  /** Accept any host key. A visible, explicit choice: every connection logs a warning. */
  insecureSkipHostKeyCheck?: boolean;
}

export interface HostKeyAccepted {
  fingerprint: string;
  keyType: string;
  /** `<type> <base64>`, as in a `.pub` file or a known_hosts line after the host names. */
  publicKey: string;
  via: "pinned" | "known_hosts" | "insecure";
}

const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** `SHA256:<base64 without padding>` of an SSH public key blob (wire format), as `ssh-keygen -l` prints it. */
export function fingerprintOfKeyBlob(blob: Buffer): string {
  return "SHA256:" + createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, ...). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return "unknown";
  const len = blob.readUInt32BE(0);
  if (len <= 0 || len > 64 || 4 + len > blob.length) return "unknown";
  return blob.subarray(4, 4 + len).toString("latin1");
}

/** Fingerprint of a public key line (`ssh-ed25519 AAAA... comment`, as in a `.pub` file). */
export function fingerprintOfPublicKey(line: string): string {
  const parts = line.trim().split(/\s+/);
  const b64 = parts.length >= 2 ? parts[1] : parts[0];
  const blob = decodeBase64Strict(b64 ?? "");
  if (!blob || keyTypeOfBlob(blob) === "unknown") throw new SshError("invalid", "not an SSH public key line");
  return fingerprintOfKeyBlob(blob);
}

/**
 * Normalises a fingerprint as a user may paste it (`SHA256:abc...=`, surrounding spaces).
 * Returns undefined when it is not a SHA256 fingerprint.
 */
export function normalizeFingerprint(value: string): string | undefined {
  let v = value.trim();
  if (/^sha256:/i.test(v)) v = "SHA256:" + v.slice(7);
  v = v.replace(/=+$/, "");
  return FINGERPRINT_RE.test(v) ? v : undefined;
}

/** Checks a policy's pinned fingerprints; returns one message per problem (empty when fine). */
export function validateHostKeyPolicy(policy: HostKeyPolicy): string[] {
  const problems: string[] = [];
  const check = (where: string, fp: string): void => {
    if (normalizeFingerprint(fp) === undefined) {
      const hint = /^(MD5:)?([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(fp.trim())
        ? " (MD5 fingerprints are not accepted; use `ssh-keygen -l -E sha256 -f <key>.pub`)"
        : "";
      problems.push(`${where}: '${fp}' is not a SHA256 fingerprint like SHA256:<43 base64 characters>${hint}`);
    }
  };
  for (const fp of policy.fingerprints ?? []) check("sshHostKeys", fp);
  for (const [node, fps] of Object.entries(policy.nodeFingerprints ?? {})) {
    for (const fp of fps) check(`sshHostKeys.${node}`, fp);
  }
  if (policy.knownHosts !== undefined) {
    for (const e of parseKnownHosts(policy.knownHosts).errors) problems.push(`sshKnownHosts: ${e}`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------
// known_hosts

export interface KnownHostEntry {
  /** 1-based line number, for messages. */
  line: number;
  marker?: "revoked" | "cert-authority";
  /** Plain patterns (comma-separated in the file), or a hashed host. */
  hosts: { patterns: string[] } | { salt: Buffer; hash: Buffer };
  keyType: string;
  keyBlob: Buffer;
  fingerprint: string;
}

export interface ParsedKnownHosts {
  entries: KnownHostEntry[];
  /** Lines that could not be read (OpenSSH ignores them; we report them). */
  errors: string[];
}

function decodeBase64Strict(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return undefined;
  const buf = Buffer.from(s, "base64");
  return buf.length > 0 ? buf : undefined;
}

export function parseKnownHosts(text: string): ParsedKnownHosts {
  const entries: KnownHostEntry[] = [];
  const errors: string[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (fields[0].startsWith("@")) {
      const m = fields.shift() as string;
      if (m === "@revoked") marker = "revoked";
      else if (m === "@cert-authority") marker = "cert-authority";
      else {
        errors.push(`line ${lineNo}: unknown marker '${m}'`);
        return;
      }
    }
    if (fields.length < 3) {
      errors.push(`line ${lineNo}: expected '<hosts> <key type> <base64 key>'`);
      return;
    }
    const [hostField, keyType, keyB64] = fields;
    const keyBlob = decodeBase64Strict(keyB64);
    if (!keyBlob) {
      errors.push(`line ${lineNo}: the key is not valid base64`);
      return;
    }
    const embedded = keyTypeOfBlob(keyBlob);
    if (embedded !== keyType) {
      errors.push(`line ${lineNo}: key type '${keyType}' does not match the key itself ('${embedded}')`);
      return;
    }
    let hosts: KnownHostEntry["hosts"];
    if (hostField.startsWith("|1|")) {
      const [, , saltB64, hashB64, extra] = hostField.split("|");
      const salt = decodeBase64Strict(saltB64 ?? "");
      const hash = decodeBase64Strict(hashB64 ?? "");
      if (!salt || !hash || extra !== undefined || hash.length !== 20) {
        errors.push(`line ${lineNo}: malformed hashed host name`);
        return;
      }
      hosts = { salt, hash };
    } else if (hostField.startsWith("|")) {
      errors.push(`line ${lineNo}: unsupported hashed host format`);
      return;
    } else {
      hosts = { patterns: hostField.split(",").filter((p) => p.length > 0) };
    }
    entries.push({ line: lineNo, marker, hosts, keyType, keyBlob, fingerprint: fingerprintOfKeyBlob(keyBlob) });
  });
  return { entries, errors };
}

/** OpenSSH's wildcard match (`*` any run, `?` one character), case-insensitive. */
function wildcardMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    "^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$",
    "i",
  );
  return re.test(name);
}

/** The name a host is looked up under in known_hosts: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function entryMatchesName(entry: KnownHostEntry, name: string): boolean {
  const hosts = entry.hosts;
  if ("salt" in hosts) {
    const mac = createHmac("sha1", hosts.salt).update(name).digest();
    return mac.length === hosts.hash.length && timingSafeEqual(mac, hosts.hash);
  }
  let matched = false;
  for (const p of hosts.patterns) {
    if (p.startsWith("!")) {
      if (wildcardMatch(p.slice(1), name)) return false;
    } else if (wildcardMatch(p, name)) {
      matched = true;
    }
  }
  return matched;
}

/**
 * Names an endpoint is known under: the address dialled and the PVE node name (PVE's own
 * cluster-wide known_hosts lists both), each in `[host]:port` form off port 22.
 */
function lookupNames(endpoint: SshEndpoint): string[] {
  const names = new Set<string>();
  for (const h of [endpoint.host, endpoint.node]) names.add(knownHostsName(h.toLowerCase(), endpoint.port));
  return [...names];
}

/** known_hosts entries (without markers) that apply to an endpoint. */
export function knownHostsFor(parsed: ParsedKnownHosts, endpoint: SshEndpoint): KnownHostEntry[] {
  const names = lookupNames(endpoint);
  return parsed.entries.filter((e) => e.marker === undefined && names.some((n) => entryMatchesName(e, n)));
}

const RSA_ALGOS = ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
/** Host-key algorithms ssh2 can negotiate; other known_hosts types cannot be preferred. */
const NEGOTIABLE = new Set(["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", ...RSA_ALGOS]);

/**
 * Host-key algorithms to prefer for an endpoint: the types known_hosts holds for it come
 * first, so a server with several keys presents the one we can check (as OpenSSH does).
 */
export function preferredHostKeyAlgorithms(policy: HostKeyPolicy, endpoint: SshEndpoint): string[] {
  if (!policy.knownHosts) return [];
  const out: string[] = [];
  for (const e of knownHostsFor(parseKnownHosts(policy.knownHosts), endpoint)) {
    const algos = e.keyType === "ssh-rsa" ? RSA_ALGOS : [e.keyType];
    for (const a of algos) if (NEGOTIABLE.has(a) && !out.includes(a)) out.push(a);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// verification

const PIN_HINT = "pin it with proxmox:sshHostKeys / sshKnownHosts";

/**
 * Decides whether a presented host key is trusted for an endpoint. Throws HostKeyError when
 * it is not; the message names the node, the address and the fingerprint.
 */
export function verifyHostKey(
  policy: HostKeyPolicy,
  endpoint: SshEndpoint,
  keyBlob: Buffer,
  logger: Logger = silentLogger,
): HostKeyAccepted {
  const fingerprint = fingerprintOfKeyBlob(keyBlob);
  const keyType = keyTypeOfBlob(keyBlob);
  const publicKey = `${keyType} ${keyBlob.toString("base64")}`;
  const where = describeEndpoint(endpoint);

  if (policy.insecureSkipHostKeyCheck) {
    logger.warn(
      `SSH host key of node ${where} NOT verified (insecureSkipHostKeyCheck is set): ${keyType} ${fingerprint}. ` +
        `To verify it, ${PIN_HINT}: ${fingerprint}`,
    );
    return { fingerprint, keyType, publicKey, via: "insecure" };
  }

  const parsed = policy.knownHosts !== undefined ? parseKnownHosts(policy.knownHosts) : { entries: [], errors: [] };
  const names = lookupNames(endpoint);
  const revoked = parsed.entries.find(
    (e) => e.marker === "revoked" && e.keyBlob.equals(keyBlob) && matchesRevoked(e, names),
  );
  if (revoked) {
    throw new HostKeyError(
      "host-key-revoked",
      `SSH host key of node ${where} is REVOKED (sshKnownHosts line ${revoked.line}): ${keyType} ${fingerprint}. Refusing to connect.`,
      endpoint,
      fingerprint,
      [],
      publicKey,
    );
  }

  const nodePins = (policy.nodeFingerprints?.[endpoint.node] ?? []).map((f) => normalizeFingerprint(f) ?? f);
  const globalPins = (policy.fingerprints ?? []).map((f) => normalizeFingerprint(f) ?? f);
  if (nodePins.includes(fingerprint) || globalPins.includes(fingerprint)) {
    return { fingerprint, keyType, publicKey, via: "pinned" };
  }
  const known = knownHostsFor(parsed, endpoint);
  if (known.some((e) => e.keyBlob.equals(keyBlob))) return { fingerprint, keyType, publicKey, via: "known_hosts" };

  const expected = [
    ...nodePins.map((f) => ({ fp: f, from: `proxmox:sshHostKeys.${endpoint.node}` })),
    ...known.map((e) => ({ fp: `${e.keyType} ${e.fingerprint}`, from: `sshKnownHosts line ${e.line}` })),
  ];
  if (expected.length > 0) {
    const list = expected.map((x) => `${x.fp} (${x.from})`).join(", ");
    throw new HostKeyError(
      "host-key-changed",
      `SSH host key of node ${where} has CHANGED: expected ${list}, got ${keyType} ${fingerprint}. ` +
        `Someone may be intercepting the connection (man-in-the-middle); no credentials or data were sent. ` +
        `If the node was reinstalled or its keys rotated, check the new key on the node ` +
        `(ssh-keygen -lf /etc/ssh/ssh_host_${keyType.replace(/^ssh-/, "")}_key.pub) and update the pin to: ${fingerprint}`,
      endpoint,
      fingerprint,
      expected.map((x) => x.fp),
      publicKey,
    );
  }
  const why =
    globalPins.length > 0 || parsed.entries.length > 0
      ? "is not among the trusted keys"
      : "cannot be verified: no host keys are configured";
  throw new HostKeyError(
    "host-key-unknown",
    `SSH host key of node ${where} ${why}: it presented ${keyType} ${fingerprint} (known_hosts name ${formatKnownName(endpoint)}). ` +
      `If this is the node's key (compare with ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the node), ` +
      `${PIN_HINT}: ${fingerprint}`,
    endpoint,
    fingerprint,
    [],
    publicKey,
  );
}

function matchesRevoked(entry: KnownHostEntry, names: string[]): boolean {
  // `@revoked * <key>` revokes a key everywhere; otherwise the host patterns apply.
  return names.some((n) => entryMatchesName(entry, n));
}

function formatKnownName(endpoint: SshEndpoint): string {
  return knownHostsName(endpoint.host, endpoint.port);
}
