// One SSH server per node on 127.0.0.1 (ssh2 `Server`), public-key authentication, and an
// SFTP subsystem rooted in the node's file tree: the client sees the node's absolute paths
// (`/var/lib/vz/snippets/x.yaml`), stored under `<tmp>/<node>/...`. The host key is an
// Ed25519 key derived from the seed and the node name, so its fingerprint is stable for a
// seed (`SHA256:<base64, no padding>` like OpenSSH). Like OpenSSH's sftp-server, plain
// RENAME refuses to overwrite, `posix-rename@openssh.com` overwrites; non-root users may
// only write under their home and /tmp (the PVE storage dirs are root-owned, mode 755).

import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { Server, utils, Connection, SFTPWrapper } from "ssh2";
import type { Sim } from "./sim";
import type { Cluster } from "./state/cluster";

const STATUS = { OK: 0, EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, OP_UNSUPPORTED: 8 };
const OPEN = { READ: 1, WRITE: 2, APPEND: 4, CREAT: 8, TRUNC: 16, EXCL: 32 };

function sshString(b: Buffer | string): Buffer {
  const buf = typeof b === "string" ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(buf.length);
  return Buffer.concat([len, buf]);
}

/** A deterministic Ed25519 host key in OpenSSH private key format, and its fingerprint. */
export function hostKeyFor(seed: number, node: string): { privateKey: string; fingerprint: string; publicKey: string } {
  const secret = crypto.createHash("sha256").update(`pve-sim host key:${seed}:${node}`).digest();
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), secret]);
  const key = crypto.createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  const pub = crypto.createPublicKey(key).export({ format: "der", type: "spki" }).subarray(-32);
  const pubBlob = Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]);
  const check = crypto.createHash("sha256").update(secret).digest().subarray(0, 4);
  let priv = Buffer.concat([check, check, pubBlob, sshString(Buffer.concat([secret, pub])), sshString(`root@${node}`)]);
  let pad = 1;
  while (priv.length % 8 !== 0) priv = Buffer.concat([priv, Buffer.from([pad++])]);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"), sshString("none"), sshString("none"), sshString(""),
    Buffer.from([0, 0, 0, 1]), sshString(pubBlob), sshString(priv),
  ]);
  const b64 = body.toString("base64").replace(/(.{70})/g, "$1\n").replace(/\n$/, "");
  const privateKey = `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
  const fingerprint = "SHA256:" + crypto.createHash("sha256").update(pubBlob).digest("base64").replace(/=+$/, "");
  return { privateKey, fingerprint, publicKey: `ssh-ed25519 ${pubBlob.toString("base64")} root@${node}` };
}

interface Handle {
  fd?: number;
  file: string;
  dir?: { entries: string[]; sent: boolean };
}

function attrsOf(st: fs.Stats) {
  return { mode: st.mode, uid: st.uid, gid: st.gid, size: st.size, atime: Math.floor(st.atimeMs / 1000), mtime: Math.floor(st.mtimeMs / 1000) };
}

function errStatus(e: any): number {
  if (e?.code === "ENOENT") return STATUS.NO_SUCH_FILE;
  if (e?.code === "EACCES" || e?.code === "EPERM") return STATUS.PERMISSION_DENIED;
  return STATUS.FAILURE;
}

/** Advertise the OpenSSH extensions we serve in the SFTP VERSION packet (ssh2's server
 *  sends a bare version 3). */
function advertiseExtensions(sftp: SFTPWrapper): void {
  const proto = (sftp as any)._protocol;
  const orig = proto.channelData;
  const outId = (sftp as any).outgoing.id;
  proto.channelData = function (id: number, data: Buffer) {
    if (id === outId && data.length === 9 && data[4] === 2) {
      proto.channelData = orig;
      const payload = Buffer.concat([Buffer.from([2, 0, 0, 0, 3]), sshString("posix-rename@openssh.com"), sshString("1")]);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(payload.length);
      return orig.call(this, id, Buffer.concat([len, payload]));
    }
    return orig.call(this, id, data);
  };
}

export interface SshNodeServer {
  node: string;
  port: number;
  fingerprint: string;
  close(): Promise<void>;
}

export async function startSshServer(sim: Sim, c: Cluster, node: string): Promise<SshNodeServer> {
  const hk = hostKeyFor(sim.options.seed, node);
  const users = c.opts.sshUsers ?? {};
  const parsedKeys = new Map<string, any[]>();
  for (const [u, def] of Object.entries(users)) {
    parsedKeys.set(u, def.keys.map((k) => utils.parseKey(k)).filter((k) => !(k instanceof Error)));
  }
  const conns = new Set<Connection>();
  const server = new Server({ hostKeys: [hk.privateKey], ident: "OpenSSH_9.2p1 Debian-2+deb12u5" }, (client) => {
    conns.add(client);
    client.on("close", () => conns.delete(client));
    client.on("error", () => undefined);
    let user = "";
    client.on("authentication", (ctx) => {
      if (ctx.method !== "publickey") return ctx.reject(["publickey"]);
      const keys = parsedKeys.get(ctx.username) ?? [];
      const match = keys.find((k) => k.type === ctx.key.algo && k.getPublicSSH().equals(ctx.key.data));
      if (!match) return ctx.reject(["publickey"]);
      if (ctx.signature && ctx.blob) {
        if (match.verify(ctx.blob, ctx.signature, (ctx as any).hashAlgo) !== true) return ctx.reject(["publickey"]);
        user = ctx.username;
        return ctx.accept();
      }
      return ctx.accept();
    });
    client.on("ready", () => {
      client.on("session", (acceptSession) => {
        const session = acceptSession();
        session.on("sftp", (acceptSftp) => {
          const sftp = acceptSftp();
          advertiseExtensions(sftp);
          serveSftp(sftp, c, node, user);
        });
        session.on("exec", (accept, _reject, info) => {
          const stream = accept();
          const r = runCommand(c, node, user, info.command);
          if (r.stdout) stream.write(r.stdout);
          if (r.stderr) stream.stderr.write(r.stderr);
          stream.exit(r.code);
          stream.end();
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    node, port, fingerprint: hk.fingerprint,
    close: () =>
      new Promise<void>((resolve) => {
        for (const cl of conns) cl.end();
        server.close(() => resolve());
      }),
  };
}

function writable(c: Cluster, node: string, user: string, abs: string): boolean {
  if (user === "root") return true;
  const norm = path.posix.normalize(abs);
  return norm.startsWith(`/home/${user}/`) || norm.startsWith("/tmp/");
}

function serveSftp(sftp: SFTPWrapper, c: Cluster, node: string, user: string): void {
  const handles = new Map<number, Handle>();
  let next = 1;
  const home = user === "root" ? "/root" : `/home/${user}`;
  fs.mkdirSync(c.hostPath(node, home), { recursive: true });
  fs.mkdirSync(c.hostPath(node, "/tmp"), { recursive: true });
  const abs = (p: string) => path.posix.normalize(p.startsWith("/") ? p : `${home}/${p}`);
  const host = (p: string) => c.hostPath(node, abs(p));
  const mkHandle = (h: Handle) => {
    const id = next++;
    handles.set(id, h);
    const b = Buffer.alloc(4);
    b.writeUInt32BE(id);
    return b;
  };
  const getHandle = (b: Buffer) => (b.length === 4 ? handles.get(b.readUInt32BE(0)) : undefined);
  const deny = (id: number, p: string) => {
    if (writable(c, node, user, abs(p))) return false;
    sftp.status(id, STATUS.PERMISSION_DENIED, "Permission denied");
    return true;
  };

  sftp.on("OPEN", (id, filename, flags, attrs) => {
    const writing = (flags & (OPEN.WRITE | OPEN.APPEND | OPEN.CREAT | OPEN.TRUNC)) !== 0;
    if (writing && deny(id, filename)) return;
    let mode = "r";
    if (flags & OPEN.WRITE) {
      if (flags & OPEN.APPEND) mode = flags & OPEN.READ ? "a+" : "a";
      else if (flags & OPEN.TRUNC) mode = flags & OPEN.READ ? "w+" : "w";
      else if (flags & OPEN.CREAT) mode = fs.existsSync(host(filename)) ? "r+" : flags & OPEN.READ ? "w+" : "w";
      else mode = "r+";
      if (flags & OPEN.EXCL) mode = mode.replace(/^[rw]/, "w") + "x";
    }
    try {
      const fd = fs.openSync(host(filename), mode, attrs?.mode ?? 0o644);
      sftp.handle(id, mkHandle({ fd, file: host(filename) }));
    } catch (e) {
      sftp.status(id, errStatus(e));
    }
  });
  sftp.on("WRITE", (id, handle, offset, data) => {
    const h = getHandle(handle);
    if (!h?.fd) return sftp.status(id, STATUS.FAILURE);
    try {
      fs.writeSync(h.fd, data, 0, data.length, offset);
      sftp.status(id, STATUS.OK);
    } catch (e) {
      sftp.status(id, errStatus(e));
    }
  });
  sftp.on("READ", (id, handle, offset, length) => {
    const h = getHandle(handle);
    if (!h?.fd) return sftp.status(id, STATUS.FAILURE);
    const buf = Buffer.alloc(length);
    const n = fs.readSync(h.fd, buf, 0, length, offset);
    if (n === 0) return sftp.status(id, STATUS.EOF);
    sftp.data(id, buf.subarray(0, n));
  });
  sftp.on("CLOSE", (id, handle) => {
    const h = getHandle(handle);
    if (!h) return sftp.status(id, STATUS.FAILURE);
    if (h.fd !== undefined) fs.closeSync(h.fd);
    handles.delete(handle.readUInt32BE(0));
    sftp.status(id, STATUS.OK);
  });
  sftp.on("FSTAT", (id, handle) => {
    const h = getHandle(handle);
    if (!h?.fd) return sftp.status(id, STATUS.FAILURE);
    sftp.attrs(id, attrsOf(fs.fstatSync(h.fd)));
  });
  const setstat = (id: number, file: string, attrs: any) => {
    try {
      if (attrs.mode !== undefined) fs.chmodSync(file, attrs.mode & 0o7777);
      if (attrs.size !== undefined) fs.truncateSync(file, attrs.size);
      if (attrs.atime !== undefined && attrs.mtime !== undefined) fs.utimesSync(file, attrs.atime, attrs.mtime);
      sftp.status(id, STATUS.OK);
    } catch (e) {
      sftp.status(id, errStatus(e));
    }
  };
  sftp.on("FSETSTAT", (id, handle, attrs) => {
    const h = getHandle(handle);
    if (!h) return sftp.status(id, STATUS.FAILURE);
    setstat(id, h.file, attrs);
  });
  sftp.on("SETSTAT", (id, p, attrs) => {
    if (deny(id, p)) return;
    setstat(id, host(p), attrs);
  });
  const stat = (id: number, p: string, lstat: boolean) => {
    try {
      sftp.attrs(id, attrsOf(lstat ? fs.lstatSync(host(p)) : fs.statSync(host(p))));
    } catch (e) {
      sftp.status(id, errStatus(e));
    }
  };
  sftp.on("STAT", (id, p) => stat(id, p, false));
  sftp.on("LSTAT", (id, p) => stat(id, p, true));
  sftp.on("OPENDIR", (id, p) => {
    try {
      const entries = fs.readdirSync(host(p));
      sftp.handle(id, mkHandle({ file: host(p), dir: { entries, sent: false } }));
    } catch (e) {
      sftp.status(id, errStatus(e));
    }
  });
  sftp.on("READDIR", (id, handle) => {
    const h = getHandle(handle);
    if (!h?.dir) return sftp.status(id, STATUS.FAILURE);
    if (h.dir.sent) return sftp.status(id, STATUS.EOF);
    h.dir.sent = true;
    const list = h.dir.entries.map((name) => {
      const st = fs.lstatSync(path.join(h.file, name));
      const longname = `${st.isDirectory() ? "d" : "-"}rw-r--r--    1 root     root     ${String(st.size).padStart(8)} Jan  1 00:00 ${name}`;
      return { filename: name, longname, attrs: attrsOf(st) as any };
    });
    sftp.name(id, list);
  });
  sftp.on("REMOVE", (id, p) => {
    if (deny(id, p)) return;
    try {
      fs.unlinkSync(host(p));
      sftp.status(id, STATUS.OK);
    } catch (e) {
      sftp.status(id, errStatus(e));
    }
  });
  sftp.on("RMDIR", (id, p) => {
    if (deny(id, p)) return;
    try {
      fs.rmdirSync(host(p));
      sftp.status(id, STATUS.OK);
    } catch (e) {
      sftp.status(id, errStatus(e));
    }
  });
  sftp.on("MKDIR", (id, p, attrs) => {
    if (deny(id, p)) return;
    try {
      fs.mkdirSync(host(p), { mode: attrs?.mode ?? 0o755 });
      sftp.status(id, STATUS.OK);
    } catch (e) {
      sftp.status(id, e && (e as any).code === "EEXIST" ? STATUS.FAILURE : errStatus(e));
    }
  });
  sftp.on("REALPATH", (id, p) => {
    const a = abs(p === "." || p === "" ? home : p);
    sftp.name(id, [{ filename: a, longname: a, attrs: {} as any }]);
  });
  sftp.on("RENAME", (id, from, to) => {
    if (deny(id, from) || deny(id, to)) return;
    if (fs.existsSync(host(to))) return sftp.status(id, STATUS.FAILURE, "Failure");
    try {
      fs.renameSync(host(from), host(to));
      sftp.status(id, STATUS.OK);
    } catch (e) {
      sftp.status(id, errStatus(e));
    }
  });
  sftp.on("EXTENDED", (id, name, data) => {
    if (name !== "posix-rename@openssh.com" || !data) return sftp.status(id, STATUS.OP_UNSUPPORTED);
    const l1 = data.readUInt32BE(0);
    const from = data.subarray(4, 4 + l1).toString();
    const l2 = data.readUInt32BE(4 + l1);
    const to = data.subarray(8 + l1, 8 + l1 + l2).toString();
    if (deny(id, from) || deny(id, to)) return;
    try {
      fs.renameSync(host(from), host(to));
      sftp.status(id, STATUS.OK);
    } catch (e) {
      sftp.status(id, errStatus(e));
    }
  });
}

/** A tiny exec: `sha256sum <file>`, `cat <file>`, `rm -f <file>`, `mkdir -p <dir>`,
 *  `chmod <octal> <file>`, `mv [-f] <a> <b>`, `test -f <file>`; anything else exits 127. */
export function runCommand(c: Cluster, node: string, user: string, command: string): { code: number; stdout?: string; stderr?: string } {
  const argv = command.trim().split(/\s+/).map((a) => a.replace(/^'(.*)'$/, "$1"));
  const [cmd, ...args] = argv;
  const file = (p: string) => c.hostPath(node, p);
  const canWrite = (p: string) => user === "root" || writable(c, node, user, p);
  try {
    switch (cmd) {
      case "sha256sum":
        return { code: 0, stdout: args.map((a) => `${crypto.createHash("sha256").update(fs.readFileSync(file(a))).digest("hex")}  ${a}\n`).join("") };
      case "cat":
        return { code: 0, stdout: args.map((a) => fs.readFileSync(file(a), "utf8")).join("") };
      case "test":
        return { code: args[0] === "-f" && fs.existsSync(file(args[1])) && fs.statSync(file(args[1])).isFile() ? 0 : 1 };
      case "rm": {
        const files = args.filter((a) => !a.startsWith("-"));
        if (!files.every(canWrite)) return { code: 1, stderr: `rm: cannot remove '${files[0]}': Permission denied\n` };
        files.forEach((a) => fs.rmSync(file(a), { force: args.includes("-f") }));
        return { code: 0 };
      }
      case "mkdir": {
        const dirs = args.filter((a) => !a.startsWith("-"));
        if (!dirs.every(canWrite)) return { code: 1, stderr: `mkdir: cannot create directory '${dirs[0]}': Permission denied\n` };
        dirs.forEach((a) => fs.mkdirSync(file(a), { recursive: args.includes("-p") }));
        return { code: 0 };
      }
      case "chmod":
        if (!canWrite(args[1])) return { code: 1, stderr: `chmod: changing permissions of '${args[1]}': Operation not permitted\n` };
        fs.chmodSync(file(args[1]), parseInt(args[0], 8));
        return { code: 0 };
      case "mv": {
        const [a, b] = args.filter((x) => !x.startsWith("-"));
        if (!canWrite(a) || !canWrite(b)) return { code: 1, stderr: `mv: cannot move '${a}' to '${b}': Permission denied\n` };
        fs.renameSync(file(a), file(b));
        return { code: 0 };
      }
      default:
        return { code: 127, stderr: `bash: ${cmd}: command not found\n` };
    }
  } catch (e: any) {
    return { code: 1, stderr: `${cmd}: ${e.code === "ENOENT" ? `${args[args.length - 1]}: No such file or directory` : e.message}\n` };
  }
}

/** Starts one server per node when the simulator starts (unless `cluster.ssh === false`). */
export function registerSsh(sim: Sim, c: Cluster): void {
  if (c.opts.ssh === false) return;
  const servers: SshNodeServer[] = [];
  sim.onStart(async () => {
    for (const n of c.nodeNames()) {
      const s = await startSshServer(sim, c, n);
      servers.push(s);
      sim.nodeSsh.set(n, { sshPort: s.port, hostKeyFingerprint: s.fingerprint });
    }
  });
  sim.onStop(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });
}
