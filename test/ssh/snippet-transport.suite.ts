/**
 * One suite body for the snippet transport, run against every SSH target: real OpenSSH
 * (test/unit/ssh/transport-openssh.test.ts) and the simulator's per-node SFTP
 * (test/unit/ssh/transport-simulator.test.ts). Everything is observed over SFTP through
 * separate, verified sessions, so the body knows nothing about how a target stores files.
 */
import { createHash } from "crypto";
import * as net from "net";
import { generateEd25519KeyPair } from "../helpers/ssh-keys";
import {
  HostKeyError,
  NodesError,
  SnippetTransportOptions,
  SshEndpoint,
  SshError,
  SshSession,
  checkSnippetOnNodes,
  deleteSnippetFromNodes,
  putSnippetOnNodes,
  resolveEndpoint,
  scanHostKey,
  sha256Hex,
  withSession,
} from "../../provider/ssh";
import { Logger } from "../../provider/util/logger";
import { startSshAgent } from "../helpers/sshd";

export interface TargetNode {
  name: string;
  host: string;
  port: number;
  /** The fingerprint the target says the node presents (computed by the target, not by us). */
  hostKeyFingerprint: string;
}

export interface TransportTarget {
  /** At least three nodes sharing one snippets directory path. */
  nodes: TargetNode[];
  username: string;
  snippetsDir: string;
  /** A node that can run commands (for the sudo path); absent when the target is SFTP-only. */
  exec?: {
    node: TargetNode;
    snippetsDir: string;
    sudoCalls(): string[];
    setSudoDenied(denied: boolean): void;
  };
  /** A non-root login (same client keys) that cannot write the snippets directory. */
  unprivileged?: { username: string };
  stop(): Promise<void>;
}

/** Starts the target with these client public keys (`type base64`) authorised to log in. */
export type StartTarget = (authorizedKeys: string[]) => Promise<TransportTarget>;

const PASSPHRASE = "correct horse battery staple 7731";
const PASSWORD = "pa55word-that-must-not-leak";

/** Lines of a private key that would betray it if they appeared anywhere. */
function keyFragments(privateKey: string): string[] {
  return privateKey
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length >= 16 && !l.startsWith("-----"));
}

function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface SuiteCapabilities {
  /** The target runs commands (exec channel) and has `sudo`: the sudo path is tested. The
   *  target must then provide `exec`, or the suite fails. */
  exec: boolean;
  /** The target lets `unprivileged.username` (a non-root user, same keys) log in. */
  unprivileged: boolean;
}

export function defineTransportSuite(label: string, start: StartTarget, caps: SuiteCapabilities): void {
  describe(`snippet transport against ${label}`, () => {
    const goodKey = generateEd25519KeyPair({ comment: "pulumi-pve-test" });
    const encryptedKey = generateEd25519KeyPair({
      comment: "pulumi-pve-test-enc",
      passphrase: PASSPHRASE,
      cipher: "aes256-ctr",
      rounds: 4,
    });
    const strangerKey = generateEd25519KeyPair({ comment: "not-authorised" });
    const strangerEncrypted = generateEd25519KeyPair({
      passphrase: PASSPHRASE,
      cipher: "aes256-ctr",
      rounds: 4,
    });
    const secrets = [goodKey.private, encryptedKey.private, strangerKey.private, strangerEncrypted.private];

    let target: TransportTarget;
    const logged: string[] = [];
    const logger: Logger = {
      debug: (m) => logged.push(m),
      info: (m) => logged.push(m),
      warn: (m) => logged.push(m),
      error: (m) => logged.push(m),
    };
    /** Every message produced by a failure in this suite, checked for secrets at the end. */
    const seenErrors: string[] = [];
    let counter = 0;
    const freshName = (): string => `t${++counter}-${Date.now().toString(36)}.yaml`;

    beforeAll(async () => {
      target = await start([goodKey.public, encryptedKey.public]);
      expect(target.nodes.length).toBeGreaterThanOrEqual(3);
    }, 60_000);

    afterAll(async () => {
      if (target) await target.stop();
    }, 30_000);

    const pins = (): Record<string, string[]> =>
      Object.fromEntries(
        [...target.nodes, ...(target.exec ? [target.exec.node] : [])].map((n) => [n.name, [n.hostKeyFingerprint]]),
      );
    const endpoint = (n: TargetNode, port = n.port): SshEndpoint =>
      resolveEndpoint(n.name, { overrides: { [n.name]: { host: n.host, port } } });
    const endpoints = (): SshEndpoint[] => target.nodes.slice(0, 3).map((n) => endpoint(n));
    const options = (over: Partial<SnippetTransportOptions> = {}): SnippetTransportOptions => ({
      username: target.username,
      privateKey: goodKey.private,
      hostKeys: { nodeFingerprints: pins() },
      readyTimeoutMs: 5000,
      logger,
      ...over,
    });
    const ref = (name: string, dir = target.snippetsDir): { dir: string; name: string } => ({ dir, name });

    /** Out-of-band access to one node, over its own verified connection. */
    async function onNode<T>(n: TargetNode, fn: (s: SshSession) => Promise<T>): Promise<T> {
      return withSession(endpoint(n), options(), fn);
    }
    function sftpCall<T>(s: SshSession, op: (sftp: any, cb: (err: any, v?: T) => void) => void): Promise<T> {
      return s.sftp().then((sftp) => new Promise<T>((res, rej) => op(sftp, (err, v) => (err ? rej(err) : res(v as T)))));
    }
    const readRemote = (n: TargetNode, path: string): Promise<Buffer | undefined> =>
      onNode(n, (s) =>
        sftpCall<Buffer>(s, (sftp, cb) => sftp.readFile(path, cb)).catch((e: any) => {
          if (e?.code === 2) return undefined;
          throw e;
        }),
      );
    const writeRemote = (n: TargetNode, path: string, data: string): Promise<void> =>
      onNode(n, (s) => sftpCall<void>(s, (sftp, cb) => sftp.writeFile(path, data, cb)));
    const listDir = (n: TargetNode, dir: string): Promise<string[]> =>
      onNode(n, (s) => sftpCall<any[]>(s, (sftp, cb) => sftp.readdir(dir, cb))).then((es) => es.map((e) => e.filename).sort());
    const modeOf = (n: TargetNode, path: string): Promise<number> =>
      onNode(n, (s) => sftpCall<any>(s, (sftp, cb) => sftp.stat(path, cb))).then((st) => st.mode & 0o7777);

    function record(e: unknown): Error {
      const err = e as Error;
      seenErrors.push(String(err?.message), String(err?.stack));
      if (err instanceof NodesError) for (const f of err.failures) seenErrors.push(f.error.message, String(f.error.stack));
      return err;
    }
    async function failureOf(p: Promise<unknown>): Promise<Error> {
      try {
        await p;
      } catch (e) {
        return record(e);
      }
      throw new Error("expected a failure, got success");
    }

    it("reports the host key each node presents, matching the fingerprint the target computed", async () => {
      for (const n of target.nodes) {
        const scanned = await scanHostKey(endpoint(n), { readyTimeoutMs: 5000 });
        expect(scanned.fingerprint).toBe(n.hostKeyFingerprint);
      }
    });

    it("writes a snippet on every node: right content, mode 0644, size and hash reported, no temp left", async () => {
      const name = freshName();
      const content = "#cloud-config\nhostname: web1\npackages: [qemu-guest-agent]\n";
      const outcome = await putSnippetOnNodes(endpoints(), options(), ref(name), content);
      expect(outcome.error).toBeUndefined();
      expect(outcome.succeeded).toEqual(target.nodes.slice(0, 3).map((n) => n.name));
      for (const r of outcome.results) {
        if (!r.ok) throw r.error;
        expect(r.value).toEqual({
          node: r.node,
          path: `${target.snippetsDir}/${name}`,
          size: Buffer.byteLength(content),
          sha256: sha256Hex(content),
          mode: 0o644,
        });
      }
      for (const n of target.nodes.slice(0, 3)) {
        expect((await readRemote(n, `${target.snippetsDir}/${name}`))?.toString("utf8")).toBe(content);
        expect(await modeOf(n, `${target.snippetsDir}/${name}`)).toBe(0o644);
        expect((await listDir(n, target.snippetsDir)).filter((f) => f.includes(name))).toEqual([name]);
      }
    });

    it("writes binary content and an empty file exactly", async () => {
      const bin = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0]);
      const a = freshName();
      const b = freshName();
      const [n] = target.nodes;
      expect((await putSnippetOnNodes([endpoint(n)], options(), ref(a), bin)).error).toBeUndefined();
      expect((await putSnippetOnNodes([endpoint(n)], options(), ref(b), "")).error).toBeUndefined();
      expect(await readRemote(n, `${target.snippetsDir}/${a}`)).toEqual(bin);
      expect((await readRemote(n, `${target.snippetsDir}/${b}`))?.length).toBe(0);
    });

    it("overwrites atomically: a reader during the write sees the old or the new content, never a mix", async () => {
      const name = freshName();
      const path = `${target.snippetsDir}/${name}`;
      const [n] = target.nodes;
      const oldContent = "# old\n" + "a".repeat(2 * 1024 * 1024);
      const newContent = "# new\n" + "b".repeat(3 * 1024 * 1024 + 17);
      const okHashes = new Set([sha256Hex(oldContent), sha256Hex(newContent)]);
      expect((await putSnippetOnNodes([endpoint(n)], options(), ref(name), oldContent)).error).toBeUndefined();

      let writing = true;
      const seen: string[] = [];
      const reader = onNode(n, async (s) => {
        const sftp = await s.sftp();
        do {
          const data = await new Promise<Buffer>((res, rej) => sftp.readFile(path, (e: any, d: Buffer) => (e ? rej(e) : res(d))));
          seen.push(createHash("sha256").update(data).digest("hex"));
        } while (writing);
      });
      const outcome = await putSnippetOnNodes([endpoint(n)], options(), ref(name), newContent);
      writing = false;
      await reader;
      expect(outcome.error).toBeUndefined();
      expect(seen.length).toBeGreaterThan(0);
      for (const h of seen) expect(okHashes.has(h)).toBe(true);
      expect((await readRemote(n, path))?.toString("utf8")).toBe(newContent);
      expect((await listDir(n, target.snippetsDir)).filter((f) => f.includes(name))).toEqual([name]);
    }, 60_000);

    it("reads every node: present, altered and missing, with the hash found", async () => {
      const name = freshName();
      const content = "#cloud-config\nruncmd: [echo hi]\n";
      const [n1, n2, n3] = target.nodes;
      expect((await putSnippetOnNodes(endpoints(), options(), ref(name), content)).error).toBeUndefined();
      await writeRemote(n2, `${target.snippetsDir}/${name}`, "#cloud-config\nruncmd: [echo pwned]\n");
      await onNode(n3, (s) => sftpCall<void>(s, (sftp, cb) => sftp.unlink(`${target.snippetsDir}/${name}`, cb)));

      const outcome = await checkSnippetOnNodes(endpoints(), options(), ref(name), sha256Hex(content));
      expect(outcome.error).toBeUndefined();
      const byNode = Object.fromEntries(outcome.results.map((r) => [r.node, r.ok ? r.value : r.error]));
      expect(byNode[n1.name]).toMatchObject({ state: "present", sha256: sha256Hex(content), mode: 0o644 });
      expect(byNode[n2.name]).toMatchObject({ state: "altered", sha256: sha256Hex("#cloud-config\nruncmd: [echo pwned]\n") });
      expect(byNode[n3.name]).toMatchObject({ state: "missing" });

      // Without an expected hash (import), any file is present and its hash reported.
      const imported = await checkSnippetOnNodes([endpoint(n2)], options(), ref(name));
      expect(imported.results[0]).toMatchObject({ ok: true, value: { state: "present" } });
    });

    it("deletes from every node, and deleting an already-missing file succeeds", async () => {
      const name = freshName();
      expect((await putSnippetOnNodes(endpoints(), options(), ref(name), "x: 1\n")).error).toBeUndefined();
      const first = await deleteSnippetFromNodes(endpoints(), options(), ref(name));
      expect(first.error).toBeUndefined();
      expect(first.results.map((r) => r.ok && r.value.existed)).toEqual([true, true, true]);
      for (const n of target.nodes.slice(0, 3)) expect(await readRemote(n, `${target.snippetsDir}/${name}`)).toBeUndefined();
      const again = await deleteSnippetFromNodes(endpoints(), options(), ref(name));
      expect(again.error).toBeUndefined();
      expect(again.results.map((r) => r.ok && r.value.existed)).toEqual([false, false, false]);
    });

    it("fails closed on a changed host key: CHANGED, expected vs got, and nothing written", async () => {
      const name = freshName();
      const [n1, n2] = target.nodes;
      const hostKeys = { nodeFingerprints: { ...pins(), [n1.name]: [n2.hostKeyFingerprint] } };
      const outcome = await putSnippetOnNodes([endpoint(n1)], options({ hostKeys }), ref(name), "secret: no\n");
      expect(outcome.failed).toEqual([n1.name]);
      const err = record(outcome.results[0].ok ? undefined : outcome.results[0].error);
      expect(err).toBeInstanceOf(HostKeyError);
      expect((err as HostKeyError).kind).toBe("host-key-changed");
      expect(err.message).toContain("CHANGED");
      expect(err.message).toContain(`expected ${n2.hostKeyFingerprint}`);
      expect(err.message).toContain(`got ssh-`);
      expect(err.message).toContain(n1.hostKeyFingerprint);
      expect(err.message).toContain(`${n1.host}:${n1.port}`);
      expect(await readRemote(n1, `${target.snippetsDir}/${name}`)).toBeUndefined();
      expect((await listDir(n1, target.snippetsDir)).filter((f) => f.includes(name))).toEqual([]);
    });

    it("rejects an unknown host key with the fingerprint to pin", async () => {
      const [n1] = target.nodes;
      const outcome = await putSnippetOnNodes([endpoint(n1)], options({ hostKeys: {} }), ref(freshName()), "a: b\n");
      const err = record(outcome.results[0].ok ? undefined : outcome.results[0].error);
      expect((err as SshError).kind).toBe("host-key-unknown");
      expect(err.message).toContain(`'${n1.name}' (${n1.host}:${n1.port})`);
      expect(err.message).toContain(`pin it with proxmox:sshHostKeys / sshKnownHosts: ${n1.hostKeyFingerprint}`);
    });

    it("accepts a key found in known_hosts content ([host]:port form) and refuses a different one there", async () => {
      const [n1, n2] = target.nodes;
      const k1 = await scanHostKey(endpoint(n1), { readyTimeoutMs: 5000 });
      const k2 = await scanHostKey(endpoint(n2), { readyTimeoutMs: 5000 });
      const good = `# cluster nodes\n[${n1.host}]:${n1.port} ${k1.publicKey}\n`;
      const name = freshName();
      const ok = await putSnippetOnNodes([endpoint(n1)], options({ hostKeys: { knownHosts: good } }), ref(name), "k: v\n");
      expect(ok.error).toBeUndefined();
      const bad = `[${n1.host}]:${n1.port} ${k2.publicKey}\n`;
      const outcome = await checkSnippetOnNodes([endpoint(n1)], options({ hostKeys: { knownHosts: bad } }), ref(name));
      const err = record(outcome.results[0].ok ? undefined : outcome.results[0].error);
      expect((err as SshError).kind).toBe("host-key-changed");
      expect(err.message).toContain("sshKnownHosts line 1");
    });

    it("skips verification only when told to, with a warning naming the fingerprint", async () => {
      const [n1] = target.nodes;
      logged.length = 0;
      const outcome = await checkSnippetOnNodes(
        [endpoint(n1)],
        options({ hostKeys: { insecureSkipHostKeyCheck: true } }),
        ref(freshName()),
      );
      expect(outcome.error).toBeUndefined();
      expect(logged.some((m) => m.includes("NOT verified") && m.includes(n1.hostKeyFingerprint))).toBe(true);
    });

    it("reports a rejected client key clearly, without the key", async () => {
      const [n1] = target.nodes;
      const outcome = await putSnippetOnNodes([endpoint(n1)], options({ privateKey: strangerKey.private }), ref(freshName()), "a\n");
      const err = record(outcome.results[0].ok ? undefined : outcome.results[0].error);
      expect((err as SshError).kind).toBe("auth");
      expect(err.message).toContain(
        `SSH authentication as '${target.username}' to ${n1.name} (${n1.host}:${n1.port}) failed: the server rejected the key; check sshUsername and sshPrivateKey`,
      );
      expect(outcome.error?.message).toContain(n1.name);
    });

    it("reports a refused password without the password", async () => {
      const [n1] = target.nodes;
      const outcome = await putSnippetOnNodes(
        [endpoint(n1)],
        options({ privateKey: undefined, password: PASSWORD }),
        ref(freshName()),
        "a\n",
      );
      const err = record(outcome.results[0].ok ? undefined : outcome.results[0].error);
      expect((err as SshError).kind).toBe("auth");
      expect(err.message).toContain("the server rejected the password; check sshUsername and sshPassword");
    });

    it("uses a passphrase-protected key, and refuses a wrong passphrase before connecting", async () => {
      const [n1] = target.nodes;
      const ok = await putSnippetOnNodes(
        [endpoint(n1)],
        options({ privateKey: encryptedKey.private, passphrase: PASSPHRASE }),
        ref(freshName()),
        "enc: 1\n",
      );
      expect(ok.error).toBeUndefined();
      const err = await failureOf(
        putSnippetOnNodes([endpoint(n1)], options({ privateKey: encryptedKey.private, passphrase: "wrong" }), ref(freshName()), "x"),
      );
      expect((err as SshError).kind).toBe("invalid");
      expect(err.message).toMatch(/sshPrivateKey cannot be used/);
      const unauthorised = await putSnippetOnNodes(
        [endpoint(n1)],
        options({ privateKey: strangerEncrypted.private, passphrase: PASSPHRASE }),
        ref(freshName()),
        "x",
      );
      record(unauthorised.error);
      expect(unauthorised.error?.message).toContain("the server rejected the key");
    });

    it("authenticates through an ssh-agent socket alone, and names the agent when it holds no usable key", async () => {
      const [n1] = target.nodes;
      const agent = await startSshAgent([goodKey.private]);
      const empty = await startSshAgent([strangerKey.private]);
      try {
        const name = freshName();
        const ok = await putSnippetOnNodes(
          [endpoint(n1)],
          options({ privateKey: undefined, agentSocket: agent.socket }),
          ref(name),
          "agent: yes\n",
        );
        expect(ok.error).toBeUndefined();
        const bad = await putSnippetOnNodes(
          [endpoint(n1)],
          options({ privateKey: undefined, agentSocket: empty.socket }),
          ref(freshName()),
          "x",
        );
        const err = record(bad.results[0].ok ? undefined : bad.results[0].error);
        expect((err as SshError).kind).toBe("auth");
        expect(err.message).toContain("check sshUsername and sshAgentSocket");
      } finally {
        await agent.stop();
        await empty.stop();
      }
    });

    it("reports an unreachable node quickly, naming address and port", async () => {
      const [n1] = target.nodes;
      const port = await closedPort();
      const t0 = Date.now();
      const outcome = await putSnippetOnNodes([endpoint(n1, port)], options(), ref(freshName()), "a\n");
      expect(Date.now() - t0).toBeLessThan(5000);
      const err = record(outcome.results[0].ok ? undefined : outcome.results[0].error);
      expect((err as SshError).kind).toBe("unreachable");
      expect(err.message).toContain(`cannot reach node '${n1.name}' at ${n1.host}:${port}: connection refused`);
    });

    it("times out a silent server within the bound", async () => {
      // Accepts TCP, never speaks SSH.
      const sockets: net.Socket[] = [];
      const srv = net.createServer((s) => sockets.push(s));
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
      const port = (srv.address() as net.AddressInfo).port;
      try {
        const t0 = Date.now();
        const outcome = await putSnippetOnNodes(
          [resolveEndpoint("pve9", { address: "127.0.0.1", defaultPort: port })],
          options({ readyTimeoutMs: 1000 }),
          ref(freshName()),
          "a\n",
        );
        expect(Date.now() - t0).toBeLessThan(4000);
        const err = record(outcome.results[0].ok ? undefined : outcome.results[0].error);
        expect((err as SshError).kind).toBe("timeout");
        expect(err.message).toContain(`127.0.0.1:${port}`);
      } finally {
        sockets.forEach((s) => s.destroy());
        srv.close();
      }
    });

    it("rejects traversal and unsafe names before any connection", async () => {
      let connections = 0;
      const srv = net.createServer((s) => {
        connections++;
        s.destroy();
      });
      await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
      const port = (srv.address() as net.AddressInfo).port;
      const ep = [resolveEndpoint("pve1", { address: "127.0.0.1", defaultPort: port })];
      try {
        const bad = ["../x.yaml", "..", "a/b.yaml", "/etc/passwd", ".hidden", "a b", "x;rm -rf", "a\\b", "", "a\nb", "x..y"];
        for (const name of bad) {
          for (const op of [
            () => putSnippetOnNodes(ep, options(), { dir: target.snippetsDir, name }, "x"),
            () => checkSnippetOnNodes(ep, options(), { dir: target.snippetsDir, name }),
            () => deleteSnippetFromNodes(ep, options(), { dir: target.snippetsDir, name }),
          ]) {
            const err = await failureOf(op());
            expect((err as SshError).kind).toBe("invalid");
          }
        }
        for (const dir of ["relative/snippets", "/var/lib/vz/../../etc", "/var//lib", "/var/lib/vz/snippets/", "/"]) {
          const err = await failureOf(putSnippetOnNodes(ep, options(), { dir, name: "ok.yaml" }, "x"));
          expect((err as SshError).kind).toBe("invalid");
        }
      } finally {
        srv.close();
      }
      expect(connections).toBe(0);
    });

    it("explains a missing snippets directory", async () => {
      const [n1] = target.nodes;
      const outcome = await putSnippetOnNodes([endpoint(n1)], options(), ref(freshName(), "/var/lib/vz/no-such-storage/snippets"), "a");
      const err = record(outcome.results[0].ok ? undefined : outcome.results[0].error);
      expect(err.message).toContain("enable 'snippets' content");
    });

    it("works on three nodes with bounded parallelism; one failing node is named, the others succeed", async () => {
      const name = freshName();
      const [n1, n2, n3] = target.nodes;
      const dead = await closedPort();
      const eps = [endpoint(n1), endpoint(n2), endpoint(n3, dead)];
      const outcome = await putSnippetOnNodes(eps, options({ concurrency: 2 }), ref(name), "fleet: true\n");
      expect(outcome.succeeded).toEqual([n1.name, n2.name]);
      expect(outcome.failed).toEqual([n3.name]);
      expect(outcome.error).toBeInstanceOf(NodesError);
      record(outcome.error);
      expect(outcome.error?.message).toContain(`failed on 1 of 3 nodes (${n3.name}); it succeeded on ${n1.name}, ${n2.name}`);
      expect(outcome.error?.message).toContain(`${n3.host}:${dead}`);
      expect(await readRemote(n1, `${target.snippetsDir}/${name}`)).toBeDefined();
      expect(await readRemote(n2, `${target.snippetsDir}/${name}`)).toBeDefined();
      expect(await readRemote(n3, `${target.snippetsDir}/${name}`)).toBeUndefined();
    });

    if (caps.unprivileged) {
      it("tells a non-root user without write access to use sudo, and leaves nothing behind", async () => {
        if (!target.unprivileged) throw new Error(`${label} was declared with unprivileged but provides no such user`);
        const [n1] = target.nodes;
        const name = freshName();
        const outcome = await putSnippetOnNodes(
          [endpoint(n1)],
          options({ username: target.unprivileged.username }),
          ref(name),
          "a: 1\n",
        );
        const err = record(outcome.results[0].ok ? undefined : outcome.results[0].error);
        expect((err as SshError).kind).toBe("remote");
        expect(err.message).toContain("permission denied");
        expect(err.message).toContain(`'${target.unprivileged.username}' cannot write to ${target.snippetsDir}`);
        expect(err.message).toContain("sshSudo: true");
        expect((await listDir(n1, target.snippetsDir)).filter((f) => f.includes(name))).toEqual([]);
        // Reading needs no write access.
        const check = await checkSnippetOnNodes([endpoint(n1)], options({ username: target.unprivileged.username }), ref(name));
        expect(check.results[0]).toMatchObject({ ok: true, value: { state: "missing" } });
      });
    }

    // Only defined for targets that can run sudo (the simulator's exec has no sudo).
    if (caps.exec) describe("sudo for non-root users (needs command execution)", () => {
      it("has a target node that can run commands", () => {
        if (!target.exec) throw new Error(`${label} was declared with exec but provides no exec node`);
      });

      it("stages in /tmp, then sudo -n install + mv into place; verified; staging removed", async () => {
        const ex = target.exec!;
        const name = freshName();
        const content = "#cloud-config\nsudo: yes\n";
        const before = ex.sudoCalls().length;
        const outcome = await putSnippetOnNodes([endpoint(ex.node)], options({ sudo: true }), ref(name, ex.snippetsDir), content);
        expect(outcome.error).toBeUndefined();
        const calls = ex.sudoCalls().slice(before);
        expect(calls).toHaveLength(2);
        expect(calls[0]).toMatch(new RegExp(`^-n -- install -m 0644 -- /tmp/\\.pve-snippet-[0-9a-f]+ ${ex.snippetsDir}/\\.${name}\\.tmp-[0-9a-f]+$`));
        expect(calls[1]).toMatch(new RegExp(`^-n -- mv -f -- ${ex.snippetsDir}/\\.${name}\\.tmp-[0-9a-f]+ ${ex.snippetsDir}/${name}$`));
        const staged = calls[0].split(" ")[6];
        expect(await readRemote(ex.node, staged)).toBeUndefined();
        expect((await readRemote(ex.node, `${ex.snippetsDir}/${name}`))?.toString()).toBe(content);
        expect(await modeOf(ex.node, `${ex.snippetsDir}/${name}`)).toBe(0o644);

        const del = await deleteSnippetFromNodes([endpoint(ex.node)], options({ sudo: true }), ref(name, ex.snippetsDir));
        expect(del.results[0]).toMatchObject({ ok: true, value: { existed: true } });
        expect(ex.sudoCalls().slice(-1)[0]).toBe(`-n -- rm -f -- ${ex.snippetsDir}/${name}`);
        expect(await readRemote(ex.node, `${ex.snippetsDir}/${name}`)).toBeUndefined();
      });

      it("explains that passwordless sudo is needed, and leaves nothing behind", async () => {
        const ex = target.exec!;
        const name = freshName();
        ex.setSudoDenied(true);
        try {
          const outcome = await putSnippetOnNodes([endpoint(ex.node)], options({ sudo: true }), ref(name, ex.snippetsDir), "x: 1\n");
          const err = record(outcome.results[0].ok ? undefined : outcome.results[0].error);
          expect((err as SshError).kind).toBe("sudo");
          expect(err.message).toContain("needs passwordless sudo (sudo -n) for install, mv and rm");
        } finally {
          ex.setSudoDenied(false);
        }
        expect((await listDir(ex.node, ex.snippetsDir)).filter((f) => f.includes(name))).toEqual([]);
        const staged = ex
          .sudoCalls()
          .filter((c) => c.includes(name) && c.includes("install"))
          .map((c) => c.split(" ")[6]);
        for (const s of staged) expect(await readRemote(ex.node, s)).toBeUndefined();
      });
    });

    it("never puts a private key or passphrase into an error message, a stack or a log line", () => {
      expect(seenErrors.length).toBeGreaterThan(10);
      const haystack = [...seenErrors, ...logged].join("\n");
      expect(haystack).not.toContain(PASSPHRASE);
      expect(haystack).not.toContain(PASSWORD);
      for (const k of secrets) for (const line of keyFragments(k)) expect(haystack).not.toContain(line);
    });
  });
}
