import {
  HostKeyError,
  SshEndpoint,
  fingerprintOfPublicKey,
  keyTypeOfBlob,
  knownHostsName,
  normalizeFingerprint,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
  validateHostKeyPolicy,
  verifyHostKey,
} from "../../../provider/ssh";

// Vectors made with OpenSSH 9.2: ssh-keygen -lf, and ssh-keygen -H for the hashed lines.
const ED_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII5QXurQP3S0joQf+z0YBsaTy0FkYaf5UVv6ZtNRpnrv vec";
const ED_FP = "SHA256:D+SWIQw6NhX55/akglvIirAO3Rg7mK9EeqFq9/2td5I";
const RSA_PUB =
  "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCm++ZmQsmN3SroTgjGhggJxs7MZx7ipw+gkXQTNloMeqyxzuYz3LDbJNxPiGCjCkrYS/nBwmKcFVvKaxOkzx0z3ETfkRYoxgV4bJG++oNrntTU6QsiWZoHgAUWnkjVPitJM5F9o+hgovZD1/V7mo2PaBmdUTCKRRnwtGWUecULgQ== vec";
const RSA_FP = "SHA256:E6Mb/0+TU4egPyjot6mRJ17rGiPjfjrD4yPVd73tSPU";
/** `[pve1.example]:2222` → ED key, `pve2` → RSA key, hashed by ssh-keygen -H. */
const HASHED = [
  "|1|xKES4/nQomaQqUCLPQg9kbJLljU=|mHjER/yMjJe+54iDDUnuQWcgCEM= " + ED_PUB.split(" ").slice(0, 2).join(" "),
  "|1|ALGWPSZUujmEuDYowtp6a39YvUU=|Wu89JAss/ktbNmUPld6e1p/IJyk= " + RSA_PUB.split(" ").slice(0, 2).join(" "),
].join("\n");

const blob = (pub: string): Buffer => Buffer.from(pub.split(" ")[1], "base64");
const ED = blob(ED_PUB);
const RSA = blob(RSA_PUB);
const ep = (node: string, host = node, port = 22): SshEndpoint => ({ node, host, port });

function thrown(fn: () => unknown): HostKeyError {
  try {
    fn();
  } catch (e) {
    return e as HostKeyError;
  }
  throw new Error("expected a throw");
}

describe("fingerprints", () => {
  it("match ssh-keygen -l (SHA256, base64 without padding)", () => {
    expect(fingerprintOfPublicKey(ED_PUB)).toBe(ED_FP);
    expect(fingerprintOfPublicKey(RSA_PUB)).toBe(RSA_FP);
    expect(keyTypeOfBlob(ED)).toBe("ssh-ed25519");
    expect(keyTypeOfBlob(Buffer.from([0, 0]))).toBe("unknown");
  });

  it("normalise what users paste and refuse other formats", () => {
    expect(normalizeFingerprint(` ${ED_FP}= `)).toBe(ED_FP);
    expect(normalizeFingerprint(ED_FP.replace("SHA256", "sha256"))).toBe(ED_FP);
    expect(normalizeFingerprint("MD5:12:34")).toBeUndefined();
    expect(normalizeFingerprint("SHA256:short")).toBeUndefined();
    const problems = validateHostKeyPolicy({
      fingerprints: [ED_FP, "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89"],
      nodeFingerprints: { pve1: ["nope"] },
      knownHosts: "pve1 ssh-ed25519 !!notbase64\n",
    });
    expect(problems).toHaveLength(3);
    expect(problems[0]).toContain("MD5 fingerprints are not accepted");
    expect(problems[1]).toContain("sshHostKeys.pve1");
    expect(problems[2]).toContain("sshKnownHosts: line 1");
  });

});

describe("known_hosts parsing", () => {
  it("reads plain, [host]:port, wildcard, negated, hashed and marked lines; reports bad ones", () => {
    const text = [
      "# comment",
      "",
      `pve1,10.0.0.1 ${ED_PUB}`,
      `[pve2]:2222 ${RSA_PUB.split(" ").slice(0, 2).join(" ")}`,
      `@revoked * ${RSA_PUB}`,
      `@cert-authority *.example ${ED_PUB}`,
      "@bogus pve3 ssh-ed25519 AAAA",
      "pve3 ssh-rsa " + ED_PUB.split(" ")[1],
      "pve4 ssh-ed25519",
      "|2|abc|def ssh-ed25519 " + ED_PUB.split(" ")[1],
    ].join("\n");
    const parsed = parseKnownHosts(text);
    expect(parsed.entries.map((e) => e.line)).toEqual([3, 4, 5, 6]);
    expect(parsed.entries[0]).toMatchObject({ keyType: "ssh-ed25519", fingerprint: ED_FP, hosts: { patterns: ["pve1", "10.0.0.1"] } });
    expect(parsed.entries[2].marker).toBe("revoked");
    expect(parsed.entries[3].marker).toBe("cert-authority");
    expect(parsed.errors).toEqual([
      "line 7: unknown marker '@bogus'",
      "line 8: key type 'ssh-rsa' does not match the key itself ('ssh-ed25519')",
      "line 9: expected '<hosts> <key type> <base64 key>'",
      "line 10: unsupported hashed host format",
    ]);
  });

  it("uses [host]:port off port 22", () => {
    expect(knownHostsName("pve1", 22)).toBe("pve1");
    expect(knownHostsName("10.0.0.1", 2222)).toBe("[10.0.0.1]:2222");
  });
});

describe("verifyHostKey", () => {
  it("accepts a per-node pin, a global pin, and known_hosts by address or node name", () => {
    expect(verifyHostKey({ nodeFingerprints: { pve1: [ED_FP] } }, ep("pve1"), ED).via).toBe("pinned");
    expect(verifyHostKey({ fingerprints: [RSA_FP, ED_FP + "="] }, ep("pve1"), ED).via).toBe("pinned");
    const kh = `10.0.0.1 ${ED_PUB}\n[pve2]:2222 ${RSA_PUB}\n`;
    expect(verifyHostKey({ knownHosts: kh }, ep("pve1", "10.0.0.1"), ED)).toMatchObject({
      via: "known_hosts",
      fingerprint: ED_FP,
      keyType: "ssh-ed25519",
      publicKey: ED_PUB.split(" ").slice(0, 2).join(" "),
    });
    expect(verifyHostKey({ knownHosts: kh }, ep("pve2", "192.0.2.7", 2222), RSA).via).toBe("known_hosts");
  });

  it("matches hashed known_hosts entries made by ssh-keygen -H", () => {
    expect(verifyHostKey({ knownHosts: HASHED }, ep("pve1", "pve1.example", 2222), ED).via).toBe("known_hosts");
    expect(verifyHostKey({ knownHosts: HASHED }, ep("pve2"), RSA).via).toBe("known_hosts");
    // Same host on port 22 is a different known_hosts name: unknown, not accepted.
    const e = thrown(() => verifyHostKey({ knownHosts: HASHED }, ep("pve9", "pve1.example", 22), ED));
    expect(e.kind).toBe("host-key-unknown");
  });

  it("honours wildcards and negation", () => {
    const kh = `*.lab,!bad.lab ${ED_PUB}\n`;
    expect(verifyHostKey({ knownHosts: kh }, ep("n", "pve1.lab"), ED).via).toBe("known_hosts");
    expect(thrown(() => verifyHostKey({ knownHosts: kh }, ep("n", "bad.lab"), ED)).kind).toBe("host-key-unknown");
    expect(verifyHostKey({ knownHosts: `pve?.lab ${ED_PUB}` }, ep("n", "PVE3.lab"), ED).via).toBe("known_hosts");
  });

  it("fails closed with nothing configured, naming node, address and the fingerprint to pin", () => {
    const e = thrown(() => verifyHostKey({}, ep("pve1", "127.0.0.1", 2222), ED));
    expect(e).toBeInstanceOf(HostKeyError);
    expect(e.kind).toBe("host-key-unknown");
    expect(e.message).toContain("node 'pve1' (127.0.0.1:2222)");
    expect(e.message).toContain("no host keys are configured");
    expect(e.message).toContain(`pin it with proxmox:sshHostKeys / sshKnownHosts: ${ED_FP}`);
    expect(e.presentedFingerprint).toBe(ED_FP);
    expect(e.presentedPublicKey).toBe(ED_PUB.split(" ").slice(0, 2).join(" "));
  });

  it("calls a key missing from a global list unknown, not changed", () => {
    const e = thrown(() => verifyHostKey({ fingerprints: [RSA_FP] }, ep("pve1"), ED));
    expect(e.kind).toBe("host-key-unknown");
    expect(e.message).toContain("is not among the trusted keys");
  });

  it("says CHANGED with expected and got when the node's pin or known_hosts entry differs", () => {
    const e = thrown(() => verifyHostKey({ nodeFingerprints: { pve1: [RSA_FP] } }, ep("pve1", "10.0.0.1"), ED));
    expect(e.kind).toBe("host-key-changed");
    expect(e.message).toContain("has CHANGED");
    expect(e.message).toContain(`expected ${RSA_FP} (proxmox:sshHostKeys.pve1)`);
    expect(e.message).toContain(`got ssh-ed25519 ${ED_FP}`);
    expect(e.message).toContain("man-in-the-middle");
    expect(e.expectedFingerprints).toEqual([RSA_FP]);
    const k = thrown(() => verifyHostKey({ knownHosts: `pve1 ${RSA_PUB}` }, ep("pve1"), ED));
    expect(k.kind).toBe("host-key-changed");
    expect(k.message).toContain(`expected ssh-rsa ${RSA_FP} (sshKnownHosts line 1)`);
  });

  it("refuses a @revoked key even when it is pinned", () => {
    const policy = { fingerprints: [ED_FP], knownHosts: `@revoked * ${ED_PUB}\n` };
    const e = thrown(() => verifyHostKey(policy, ep("pve1"), ED));
    expect(e.kind).toBe("host-key-revoked");
    expect(e.message).toContain("REVOKED");
  });

  it("ignores @cert-authority lines (host certificates are not supported)", () => {
    expect(thrown(() => verifyHostKey({ knownHosts: `@cert-authority * ${ED_PUB}` }, ep("pve1"), ED)).kind).toBe(
      "host-key-unknown",
    );
  });

  it("skips only when told to, and warns with the fingerprint", () => {
    const warnings: string[] = [];
    const logger = { debug: () => undefined, info: () => undefined, error: () => undefined, warn: (m: string) => warnings.push(m) };
    expect(verifyHostKey({ insecureSkipHostKeyCheck: true }, ep("pve1"), ED, logger).via).toBe("insecure");
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("NOT verified");
    expect(warnings[0]).toContain(ED_FP);
  });

  it("prefers the host-key types known_hosts holds for the node", () => {
    expect(preferredHostKeyAlgorithms({ knownHosts: `pve2 ${RSA_PUB}\npve1 ${ED_PUB}` }, ep("pve2"))).toEqual([
      "rsa-sha2-512",
      "rsa-sha2-256",
      "ssh-rsa",
    ]);
    expect(preferredHostKeyAlgorithms({}, ep("pve2"))).toEqual([]);
  });
});
