import {
  NodesError,
  SshError,
  checkCredentials,
  forEachNode,
  putSnippetOnNodes,
  resolveEndpoint,
  scrubError,
  scrubSecrets,
  sha256Hex,
  shellQuote,
  snippetsDirOfStoragePath,
  validateSnippetDir,
  validateSnippetName,
} from "../../../provider/ssh";
import { renameOver } from "../../../provider/ssh/snippets";
import { Sftp } from "../../../provider/ssh/sftp";
import { generateEd25519KeyPair } from "../../helpers/ssh-keys";

describe("validateSnippetName", () => {
  it.each(["user-data.yaml", "vm100_user.yml", "A.b-c_d", "x", "web1.cloud-init.yaml", "a".repeat(200)])("accepts %j", (n) => {
    expect(validateSnippetName(n)).toBeUndefined();
  });
  it.each([
    ["", /empty/],
    ["a".repeat(201), /at most 200/],
    ["../etc/passwd", /path separator/],
    ["a/b", /path separator/],
    ["a\\b", /path separator/],
    ["..", /'\.\.'/],
    ["a..b", /'\.\.'/],
    [".hidden", /starts with '\.'/],
    ["a b", /whitespace/],
    ["a\nb", /whitespace or control/],
    ["x;rm", /may only contain/],
    ["$(id)", /may only contain/],
    ["a,b=c", /may only contain/],
    ["-rf", /must start with a letter or digit/],
    ["é.yaml", /may only contain/],
  ])("rejects %j", (n, why) => {
    expect(validateSnippetName(n)).toMatch(why);
  });
  it("rejects non-strings", () => {
    expect(validateSnippetName(undefined)).toMatch(/string/);
  });
});

describe("validateSnippetDir", () => {
  it("accepts absolute normalised paths", () => {
    expect(validateSnippetDir("/var/lib/vz/snippets")).toBeUndefined();
    expect(validateSnippetDir("/mnt/pve/nfs 1/snippets")).toBeUndefined();
  });
  it.each([
    ["", /non-empty/],
    ["var/lib/vz", /absolute/],
    ["/var/lib/../../etc", /'\.\.'/],
    ["/var/./lib", /'\.'/],
    ["/var//lib", /normalised/],
    ["/var/lib/", /normalised/],
    ["/", /must not be '\/'/],
    ["/var/li\nb", /control/],
  ])("rejects %j", (d, why) => {
    expect(validateSnippetDir(d)).toMatch(why);
  });
  it("derives <storage path>/snippets", () => {
    expect(snippetsDirOfStoragePath("/var/lib/vz")).toBe("/var/lib/vz/snippets");
    expect(snippetsDirOfStoragePath("/mnt/pve/shared/")).toBe("/mnt/pve/shared/snippets");
    expect(() => snippetsDirOfStoragePath("relative")).toThrow(SshError);
  });
});

describe("shellQuote and hashing", () => {
  it("single-quotes safely", () => {
    expect(shellQuote("a b")).toBe("'a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(() => shellQuote("a\0b")).toThrow(SshError);
  });
  it("hashes strings as UTF-8 and bytes as given", () => {
    expect(sha256Hex("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(sha256Hex("é")).toBe(sha256Hex(Buffer.from("é", "utf8")));
  });
});

describe("resolveEndpoint", () => {
  it("takes the override, then the cluster address, then the node name; port override or default", () => {
    expect(resolveEndpoint("pve1")).toEqual({ node: "pve1", host: "pve1", port: 22 });
    expect(resolveEndpoint("pve1", { address: "10.0.0.1", defaultPort: 2200 })).toEqual({ node: "pve1", host: "10.0.0.1", port: 2200 });
    expect(resolveEndpoint("pve1", { address: "10.0.0.1", overrides: { pve1: { port: 2222 } } })).toEqual({
      node: "pve1",
      host: "10.0.0.1",
      port: 2222,
    });
    expect(resolveEndpoint("pve1", { address: "10.0.0.1", overrides: { pve1: { host: "jump" } } }).host).toBe("jump");
    expect(() => resolveEndpoint("pve1", { defaultPort: 70000 })).toThrow(/1 to 65535/);
    expect(() => resolveEndpoint("pve1", { address: "a b" })).toThrow(/not a host name/);
  });
});

describe("forEachNode", () => {
  it("bounds parallelism, keeps node order, and names every failed node in one error", async () => {
    let active = 0;
    let peak = 0;
    const outcome = await forEachNode(
      ["pve1", "pve2", "pve3", "pve4", "pve5", "pve6"],
      async (node) => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 20));
        active--;
        if (node === "pve2" || node === "pve5") throw new Error(`boom on ${node}`);
        return node.toUpperCase();
      },
      { concurrency: 2, action: "writing snippet x.yaml" },
    );
    expect(peak).toBe(2);
    expect(outcome.succeeded).toEqual(["pve1", "pve3", "pve4", "pve6"]);
    expect(outcome.failed).toEqual(["pve2", "pve5"]);
    expect(outcome.results[0]).toEqual({ node: "pve1", ok: true, value: "PVE1" });
    expect(outcome.error).toBeInstanceOf(NodesError);
    expect(outcome.error?.message).toBe(
      "writing snippet x.yaml failed on 2 of 6 nodes (pve2, pve5); it succeeded on pve1, pve3, pve4, pve6:\n" +
        "  pve2: boom on pve2\n  pve5: boom on pve5",
    );
    expect(outcome.error?.succeeded).toEqual(["pve1", "pve3", "pve4", "pve6"]);
  });

  it("defaults to 4 at a time and has no error when all succeed", async () => {
    let active = 0;
    let peak = 0;
    const outcome = await forEachNode(
      Array.from({ length: 10 }, (_, i) => `n${i}`),
      async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 5));
        active--;
      },
    );
    expect(peak).toBe(4);
    expect(outcome.error).toBeUndefined();
  });

  it("refuses a node listed twice", async () => {
    await expect(forEachNode(["a", "a"], async () => 1)).rejects.toThrow(/more than once/);
  });
});

describe("renameOver without posix-rename", () => {
  function fakeSftp(existing: Set<string>, posix: boolean): { sftp: Sftp; calls: string[] } {
    const calls: string[] = [];
    const raw: any = {
      _extensions: posix ? { "posix-rename@openssh.com": "1" } : {},
      rename(from: string, to: string, cb: (e?: any) => void) {
        calls.push(`rename ${from} ${to}`);
        if (existing.has(to)) return cb(Object.assign(new Error("Failure"), { code: 4 }));
        existing.delete(from);
        existing.add(to);
        cb();
      },
      ext_openssh_rename(from: string, to: string, cb: (e?: any) => void) {
        calls.push(`posix-rename ${from} ${to}`);
        existing.delete(from);
        existing.add(to);
        cb();
      },
      unlink(p: string, cb: (e?: any) => void) {
        calls.push(`unlink ${p}`);
        if (!existing.delete(p)) return cb(Object.assign(new Error("No such file"), { code: 2 }));
        cb();
      },
    };
    return { sftp: new Sftp(raw), calls };
  }
  const ep = { node: "pve1", host: "127.0.0.1", port: 22 };

  it("uses posix-rename when offered", async () => {
    const { sftp, calls } = fakeSftp(new Set(["/d/.x.tmp-1", "/d/x"]), true);
    await renameOver(sftp, ep, "/d/.x.tmp-1", "/d/x");
    expect(calls).toEqual(["posix-rename /d/.x.tmp-1 /d/x"]);
  });

  it("renames directly when the target is absent, and removes then renames when present", async () => {
    const a = fakeSftp(new Set(["/d/.x.tmp-1"]), false);
    await renameOver(a.sftp, ep, "/d/.x.tmp-1", "/d/x");
    expect(a.calls).toEqual(["rename /d/.x.tmp-1 /d/x"]);
    const files = new Set(["/d/.x.tmp-1", "/d/x"]);
    const b = fakeSftp(files, false);
    await renameOver(b.sftp, ep, "/d/.x.tmp-1", "/d/x");
    expect(b.calls).toEqual(["rename /d/.x.tmp-1 /d/x", "unlink /d/x", "rename /d/.x.tmp-1 /d/x"]);
    expect([...files]).toEqual(["/d/x"]);
  });
});

describe("secrets", () => {
  const key = generateEd25519KeyPair({ passphrase: "s3cret-passphrase", cipher: "aes256-ctr", rounds: 4 });

  it("scrubs whole keys, single key lines and passphrases", () => {
    const line = key.private.split("\n")[2];
    const text = `oops ${key.private} and ${line} and s3cret-passphrase`;
    const out = scrubSecrets(text, [key.private, "s3cret-passphrase"]);
    expect(out).not.toContain(line);
    expect(out).not.toContain("s3cret-passphrase");
    expect(out).toContain("[redacted]");
    const err = scrubError(new Error(`bad ${line}`), [key.private]);
    expect(err.message).toBe("bad [redacted]");
    expect(err.stack).not.toContain(line);
  });

  it("checks credentials before dialling, without echoing them", () => {
    const messages: string[] = [];
    const attempt = (opts: Parameters<typeof checkCredentials>[0]): void => {
      try {
        checkCredentials(opts);
      } catch (e) {
        messages.push((e as Error).message, String((e as Error).stack));
        return;
      }
      messages.push("accepted");
    };
    attempt({ username: "root" });
    attempt({ username: "root", privateKey: key.private });
    attempt({ username: "root", privateKey: key.private, passphrase: "wrong-passphrase-123" });
    attempt({ username: "root", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAnotakeyatall1234\n-----END OPENSSH PRIVATE KEY-----" });
    attempt({ username: "root", privateKey: key.public });
    attempt({ username: "ro ot", privateKey: key.private, passphrase: "s3cret-passphrase" });
    attempt({ username: "root", privateKey: key.private, passphrase: "s3cret-passphrase" });
    expect(messages.filter((m) => m === "accepted")).toHaveLength(1);
    expect(messages[0]).toMatch(/no SSH credentials/);
    expect(messages[2]).toMatch(/sshPrivateKey cannot be used: .*passphrase/);
    const all = messages.join("\n");
    expect(all).not.toContain("s3cret-passphrase");
    expect(all).not.toContain("wrong-passphrase-123");
    expect(all).not.toContain("AAAAnotakeyatall1234");
    for (const l of key.private.split("\n").filter((x) => x.length > 16 && !x.startsWith("-----"))) expect(all).not.toContain(l);
  });

  it("validates everything before any connection", async () => {
    const ep = [resolveEndpoint("pve1", { address: "127.0.0.1", defaultPort: 1 })];
    const base = { username: "root", privateKey: generateEd25519KeyPair().private, hostKeys: {} };
    await expect(putSnippetOnNodes(ep, { ...base, hostKeys: { fingerprints: ["md5"] } }, { dir: "/d", name: "x" }, "")).rejects.toThrow(
      /not a SHA256 fingerprint/,
    );
    await expect(putSnippetOnNodes([], base, { dir: "/d", name: "x" }, "")).rejects.toThrow(/no nodes/);
  });
});
