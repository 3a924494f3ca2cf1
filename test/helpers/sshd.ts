/**
 * Real OpenSSH servers for the snippet-transport tests: one `sshd -D -e` per simulated PVE
 * node, on a free loopback port, with its own ed25519 host key, key authentication only,
 * started and stopped by the test.
 *
 * Each node is chrooted (ChrootDirectory + internal-sftp) into its own directory tree, so
 * every node has its own `/var/lib/vz/snippets` at the same path, as real PVE nodes do.
 * Chrooted nodes serve SFTP only; `startSshdCluster({ exec: true })` starts unchrooted nodes
 * that can run commands (for the sudo path), with a `sudo` shim first on PATH that records
 * its arguments and can be told to refuse like `sudo -n` without a NOPASSWD rule.
 *
 * Needs root (sshd authenticates root and chroots) and /usr/sbin/sshd (Debian
 * openssh-server). When sshd is missing the helper throws: the suite fails, it never skips.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export const SSHD_PATH = process.env.SSHD_PATH ?? "/usr/sbin/sshd";
export const SSH_KEYGEN_PATH = process.env.SSH_KEYGEN_PATH ?? "/usr/bin/ssh-keygen";
/** Where snippets live on each node, as PVE's `local` storage has them. */
export const NODE_SNIPPETS_DIR = "/var/lib/vz/snippets";

export interface SshdNode {
  name: string;
  host: string;
  port: number;
  /** `SHA256:...` as `ssh-keygen -lf` prints it (computed by OpenSSH, not by our code). */
  hostKeyFingerprint: string;
  /** `ssh-ed25519 AAAA...` of the host key. */
  hostPublicKey: string;
  /** Local directory that the node's `/` maps to (the chroot), or "/" when not chrooted. */
  rootDir: string;
  /** The snippets directory as the node (and SFTP) sees it. */
  snippetsDir: string;
  /** Local path of the snippets directory. */
  localSnippetsDir: string;
  /** sshd's stderr so far (for diagnosing a failing test). */
  log(): string;
}

export interface SshdCluster {
  nodes: SshdNode[];
  username: "root";
  baseDir: string;
  /** Arguments the sudo shim was called with, one line per call (exec clusters only). */
  sudoCalls(): string[];
  /** Makes the sudo shim refuse like `sudo -n` does without a NOPASSWD rule. */
  setSudoDenied(denied: boolean): void;
  stopNode(name: string): Promise<void>;
  stop(): Promise<void>;
}

export interface SshdClusterOptions {
  /** Node names. Default pve1, pve2, pve3. */
  nodes?: string[];
  /** Public keys (`type base64 [comment]`) allowed to log in as root. */
  authorizedKeys: string[];
  /** Unchrooted nodes that can run commands, with the sudo shim on PATH. Default false. */
  exec?: boolean;
}

/** Throws a clear error when the real-OpenSSH suite cannot run here. */
export function assertSshdUsable(): void {
  if (!fs.existsSync(SSHD_PATH)) {
    throw new Error(
      `OpenSSH server not found at ${SSHD_PATH}: the real-OpenSSH snippet tests need it. ` +
        `Install it with: apt-get update && apt-get install -y openssh-server (CI's .ci/run does this).`,
    );
  }
  if (!fs.existsSync(SSH_KEYGEN_PATH)) {
    throw new Error(`ssh-keygen not found at ${SSH_KEYGEN_PATH}: install openssh-client (a dependency of openssh-server).`);
  }
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new Error("the real-OpenSSH snippet tests must run as root: sshd needs it to authenticate and to chroot each node");
  }
}

function opensshVersion(): [number, number] {
  let out = "";
  try {
    out = execFileSync(SSHD_PATH, ["-V"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string };
    out = `${err.stdout ?? ""}${err.stderr ?? ""}`;
  }
  const m = /OpenSSH_(\d+)\.(\d+)/.exec(out);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

/** A parent directory whose every component is root-owned and not group/world-writable (chroot rule). */
function chrootSafeParent(): string {
  const candidates = [process.env.SSHD_TEST_ROOT, "/run", "/var/lib", os.homedir()].filter(
    (c): c is string => typeof c === "string" && c.length > 0,
  );
  for (const c of candidates) {
    let ok = fs.existsSync(c);
    let p = path.resolve(c);
    while (ok) {
      const st = fs.statSync(p);
      if (st.uid !== 0 || (st.mode & 0o022) !== 0) ok = false;
      if (p === "/") break;
      p = path.dirname(p);
    }
    if (ok) {
      try {
        fs.accessSync(c, fs.constants.W_OK);
        return c;
      } catch {
        // not writable, try the next one
      }
    }
  }
  throw new Error(
    `no directory suitable for sshd's ChrootDirectory found among ${candidates.join(", ")}; set SSHD_TEST_ROOT to a root-owned directory`,
  );
}

async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function keygen(file: string, comment: string): { publicKey: string; fingerprint: string } {
  execFileSync(SSH_KEYGEN_PATH, ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file], { stdio: "ignore" });
  const publicKey = fs.readFileSync(`${file}.pub`, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
  const lf = execFileSync(SSH_KEYGEN_PATH, ["-l", "-E", "sha256", "-f", `${file}.pub`], { encoding: "utf8" });
  const fingerprint = /(SHA256:[A-Za-z0-9+/]+)/.exec(lf)?.[1];
  if (!fingerprint) throw new Error(`ssh-keygen -l printed no fingerprint: ${lf}`);
  return { publicKey, fingerprint };
}

interface Running {
  node: SshdNode;
  child: ChildProcess;
  exited: Promise<void>;
}

async function startOne(
  name: string,
  baseDir: string,
  authorizedKeysFile: string,
  exec: boolean,
  shimDir: string,
  version: [number, number],
): Promise<Running> {
  const nodeDir = path.join(baseDir, name);
  const rootDir = path.join(nodeDir, "root");
  const localSnippetsDir = path.join(rootDir, NODE_SNIPPETS_DIR);
  fs.mkdirSync(localSnippetsDir, { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.join(rootDir, "tmp"), { recursive: true, mode: 0o1777 });
  fs.chmodSync(path.join(rootDir, "tmp"), 0o1777);
  const hostKey = path.join(nodeDir, "ssh_host_ed25519_key");
  const { publicKey, fingerprint } = keygen(hostKey, `${name}-host`);
  // sshd cannot listen on port 0 and report the port, so the port is picked free beforehand;
  // another process (a parallel jest worker, the simulator, the Pulumi engine) can take it
  // before sshd binds it. Then sshd says so and exits, and a new port is picked: the race is
  // between processes, not a flaky test, and only that exact failure is retried.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await spawnSshd(name, nodeDir, rootDir, localSnippetsDir, hostKey, publicKey, fingerprint, port, authorizedKeysFile, exec, shimDir, version);
    } catch (e) {
      if (!(e instanceof PortTakenError) || attempt >= 5) throw e;
    }
  }
}

class PortTakenError extends Error {}

async function spawnSshd(
  name: string,
  nodeDir: string,
  rootDir: string,
  localSnippetsDir: string,
  hostKey: string,
  publicKey: string,
  fingerprint: string,
  port: number,
  authorizedKeysFile: string,
  exec: boolean,
  shimDir: string,
  version: [number, number],
): Promise<Running> {
  const lines = [
    `ListenAddress 127.0.0.1`,
    `Port ${port}`,
    `HostKey ${hostKey}`,
    `PidFile ${path.join(nodeDir, "sshd.pid")}`,
    `AuthorizedKeysFile ${authorizedKeysFile}`,
    `PermitRootLogin prohibit-password`,
    `PubkeyAuthentication yes`,
    `PasswordAuthentication no`,
    `KbdInteractiveAuthentication no`,
    `StrictModes no`,
    `UsePAM no`,
    `UseDNS no`,
    `MaxStartups 64`,
    `MaxSessions 32`,
    `LoginGraceTime 30`,
    `Subsystem sftp internal-sftp`,
  ];
  if (version[0] > 9 || (version[0] === 9 && version[1] >= 8)) lines.push("PerSourcePenalties no");
  if (exec) lines.push(`SetEnv PATH=${shimDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`);
  else lines.push(`ChrootDirectory ${rootDir}`);
  const config = path.join(nodeDir, "sshd_config");
  fs.writeFileSync(config, lines.join("\n") + "\n", { mode: 0o600 });

  const child = spawn(SSHD_PATH, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd for ${name} did not start within 10 s:\n${stderr}`)), 10_000);
    child.stderr?.on("data", (d: string) => {
      stderr += d;
      if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
      if (/Server listening on/.test(stderr)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${SSHD_PATH}: ${e.message}`));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      const taken = /Address already in use/.test(stderr);
      reject(new (taken ? PortTakenError : Error)(`sshd for ${name} exited with code ${code} before listening:\n${stderr}`));
    });
  });
  const node: SshdNode = {
    name,
    host: "127.0.0.1",
    port,
    hostKeyFingerprint: fingerprint,
    hostPublicKey: publicKey,
    rootDir: exec ? "/" : rootDir,
    snippetsDir: exec ? localSnippetsDir : NODE_SNIPPETS_DIR,
    localSnippetsDir,
    log: () => stderr,
  };
  return { node, child, exited };
}

const SUDO_SHIM = `#!/bin/sh
# Test stand-in for sudo: records its arguments, refuses like 'sudo -n' when told to.
here=$(dirname "$0")
echo "$*" >> "$here/sudo.log"
if [ -e "$here/deny" ]; then
  echo "sudo: a password is required" >&2
  exit 1
fi
[ "$1" = "-n" ] || { echo "sudo shim: expected -n first" >&2; exit 2; }
shift
[ "$1" = "--" ] && shift
exec "$@"
`;

export async function startSshdCluster(opts: SshdClusterOptions): Promise<SshdCluster> {
  assertSshdUsable();
  const version = opensshVersion();
  // Debian's service creates the privilege-separation directory; a bare sshd needs it too.
  fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  const baseDir = fs.mkdtempSync(path.join(chrootSafeParent(), "pve-sshd-test-"));
  fs.chmodSync(baseDir, 0o755);
  const authorizedKeysFile = path.join(baseDir, "authorized_keys");
  fs.writeFileSync(authorizedKeysFile, opts.authorizedKeys.map((k) => k.trim()).join("\n") + "\n", { mode: 0o600 });
  const shimDir = path.join(baseDir, "shim");
  fs.mkdirSync(shimDir, { mode: 0o755 });
  fs.writeFileSync(path.join(shimDir, "sudo"), SUDO_SHIM, { mode: 0o755 });

  const running: Running[] = [];
  const stopRunning = async (r: Running): Promise<void> => {
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([r.exited, new Promise((res) => (timer = setTimeout(res, 3000)))]);
    clearTimeout(timer);
    if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill("SIGKILL");
      await r.exited;
    }
  };
  const stop = async (): Promise<void> => {
    await Promise.all(running.map(stopRunning));
    fs.rmSync(baseDir, { recursive: true, force: true });
  };
  try {
    for (const name of opts.nodes ?? ["pve1", "pve2", "pve3"]) {
      running.push(await startOne(name, baseDir, authorizedKeysFile, opts.exec ?? false, shimDir, version));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const sudoLog = path.join(shimDir, "sudo.log");
  return {
    nodes: running.map((r) => r.node),
    username: "root",
    baseDir,
    sudoCalls: () => (fs.existsSync(sudoLog) ? fs.readFileSync(sudoLog, "utf8").split("\n").filter(Boolean) : []),
    setSudoDenied: (denied) => {
      const flag = path.join(shimDir, "deny");
      if (denied) fs.writeFileSync(flag, "");
      else fs.rmSync(flag, { force: true });
    },
    stopNode: async (name) => {
      const r = running.find((x) => x.node.name === name);
      if (r) await stopRunning(r);
    },
    stop,
  };
}

/** An OpenSSH `ssh-agent` on a temporary socket holding the given (unencrypted) private keys. */
export async function startSshAgent(privateKeys: string[]): Promise<{ socket: string; stop(): Promise<void> }> {
  const agentPath = process.env.SSH_AGENT_PATH ?? "/usr/bin/ssh-agent";
  const addPath = process.env.SSH_ADD_PATH ?? "/usr/bin/ssh-add";
  if (!fs.existsSync(agentPath) || !fs.existsSync(addPath)) {
    throw new Error(`ssh-agent/ssh-add not found (${agentPath}, ${addPath}): install openssh-client`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pve-ssh-agent-"));
  const socket = path.join(dir, "agent.sock");
  const child = spawn(agentPath, ["-D", "-a", socket], { stdio: ["ignore", "ignore", "pipe"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const t0 = Date.now();
    while (!fs.existsSync(socket)) {
      if (child.exitCode !== null) throw new Error("ssh-agent exited at start");
      if (Date.now() - t0 > 5000) throw new Error("ssh-agent did not create its socket within 5 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    privateKeys.forEach((k, i) => {
      const file = path.join(dir, `key${i}`);
      fs.writeFileSync(file, k.endsWith("\n") ? k : `${k}\n`, { mode: 0o600 });
      execFileSync(addPath, ["-q", file], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: "ignore" });
      fs.rmSync(file);
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { socket, stop };
}
