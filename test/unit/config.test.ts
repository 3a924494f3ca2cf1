import { resolveConnectionSettings, ConnectionSettingsError, clientOptions, splitApiToken, CONFIG_KEYS } from "../../provider/config";

const TOKEN = "ci@pve!pulumi=11111111-2222-4333-8444-555555555555";

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConnectionSettingsError) return e.problems;
    throw e;
  }
  throw new Error("expected a ConnectionSettingsError");
}

describe("connection settings", () => {
  it("reads stack config (proxmox: namespace) with a token", () => {
    const s = resolveConnectionSettings({ "proxmox:endpoint": "https://pve.example.com:8006/", "proxmox:apiToken": TOKEN }, {});
    expect(s.endpoint).toBe("https://pve.example.com:8006");
    expect(s.credentials).toEqual({ kind: "token", tokenId: "ci@pve!pulumi", secret: "11111111-2222-4333-8444-555555555555" });
    expect(s.tls).toEqual({ insecure: false });
    expect(s.maxConcurrentRequests).toBe(8);
    expect(s.sources).toMatchObject({ endpoint: "config", apiToken: "config" });
    expect(clientOptions(s)).toMatchObject({ endpoint: s.endpoint, credentials: s.credentials, maxConcurrentRequests: 8 });
  });

  it("reads bpg's environment variables", () => {
    const s = resolveConnectionSettings({}, {
      PROXMOX_VE_ENDPOINT: "https://10.0.0.2:8006/api2/json",
      PROXMOX_VE_USERNAME: "root@pam",
      PROXMOX_VE_PASSWORD: "pw",
      PROXMOX_VE_OTP: "123456",
      PROXMOX_VE_INSECURE: "true",
      PROXMOX_VE_SSH_USERNAME: "root",
      PROXMOX_VE_SSH_PRIVATE_KEY: "-----BEGIN OPENSSH PRIVATE KEY-----",
      PROXMOX_VE_SSH_AGENT: "1",
      SSH_AUTH_SOCK: "/run/agent.sock",
    });
    expect(s.endpoint).toBe("https://10.0.0.2:8006");
    expect(s.credentials).toEqual({ kind: "password", username: "root@pam", password: "pw", otp: "123456" });
    expect(s.tls.insecure).toBe(true);
    expect(s.ssh).toMatchObject({ username: "root", agent: true, agentSocket: "/run/agent.sock", port: 22, hostKeys: [] });
    expect(s.ssh.privateKey).toContain("OPENSSH");
  });

  it("reads the fleeting plugin's credentials file (realm, username, password, otp)", () => {
    const files: Record<string, string> = { "/etc/gitlab-runner/pve.json": JSON.stringify({ realm: "pve", username: "fleeting", password: "file-pw", otp: "654321" }) };
    const s = resolveConnectionSettings({ endpoint: "https://pve:8006", credentialsFile: "/etc/gitlab-runner/pve.json" }, {}, { readFile: (p) => files[p] });
    expect(s.credentials).toEqual({ kind: "password", username: "fleeting", realm: "pve", password: "file-pw", otp: "654321" });
    expect(s.sources).toMatchObject({ username: "credentialsFile", password: "credentialsFile" });
  });

  it("takes each key from config, then the environment, then the credentials file", () => {
    const env = { PROXMOX_VE_ENDPOINT: "https://env-host:8006", PROXMOX_VE_USERNAME: "env@pve", PROXMOX_VE_PASSWORD: "env-pw", PROXMOX_VE_CREDENTIALS_FILE: "/c.json" };
    const readFile = (): string => JSON.stringify({ username: "file@pve", password: "file-pw", otp: "111111" });
    const s = resolveConnectionSettings({ "proxmox:config:endpoint": "https://cfg-host:8006", "proxmox:password": "cfg-pw" }, env, { readFile });
    expect(s.endpoint).toBe("https://cfg-host:8006");
    expect(s.credentials).toEqual({ kind: "password", username: "env@pve", password: "cfg-pw", otp: "111111" });
    expect(s.sources).toMatchObject({ endpoint: "config", username: "env", password: "config", otp: "credentialsFile" });
  });

  it("prefers an API token, unless the password comes from a higher-precedence source", () => {
    const env = { PROXMOX_VE_ENDPOINT: "https://h:8006", PROXMOX_VE_API_TOKEN: TOKEN };
    expect(resolveConnectionSettings({}, { ...env, PROXMOX_VE_USERNAME: "u@pve", PROXMOX_VE_PASSWORD: "p" }).credentials.kind).toBe("token");
    expect(resolveConnectionSettings({ username: "u@pve", password: "p" }, env).credentials.kind).toBe("password");
    expect(resolveConnectionSettings({ apiTokenId: "ci@pve!xy", apiTokenSecret: "s-e-c-r-e-t" }, env).credentials).toEqual({ kind: "token", tokenId: "ci@pve!xy", secret: "s-e-c-r-e-t" });
  });

  it("reports everything missing in one error, saying how to set each", () => {
    const err = (() => {
      try {
        resolveConnectionSettings({}, {});
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConnectionSettingsError);
    expect(err?.message).toMatch(/^Proxmox VE connection settings are incomplete/);
    expect(err?.message).toContain("missing endpoint (set `pulumi config set proxmox:endpoint https://pve.example.com:8006` or PROXMOX_VE_ENDPOINT)");
    expect(err?.message).toContain("missing credentials");
    expect(err?.message).toContain("PROXMOX_VE_API_TOKEN");
    expect(err?.message).toContain("PROXMOX_VE_CREDENTIALS_FILE");
    expect((err as ConnectionSettingsError).problems).toHaveLength(2);
  });

  it("names a missing password and a username without realm", () => {
    const p = problems(() => resolveConnectionSettings({ endpoint: "https://h:8006", username: "root" }, {}));
    expect(p.join("\n")).toContain("username 'root' has no realm");
    expect(p.join("\n")).toContain("missing password for user 'root'");
  });

  it("validates the endpoint URL", () => {
    const bad = (endpoint: string): string => problems(() => resolveConnectionSettings({ endpoint, apiToken: TOKEN }, {})).join("\n");
    expect(bad("http://pve:8006")).toContain("must use https");
    expect(bad("pve.example.com")).toContain("not a URL");
    expect(bad("https://pve:8006/foo")).toContain("not the path '/foo'");
    expect(bad("https://root:pw@pve:8006")).toContain("must not contain credentials");
    expect(bad("https://root:pw@pve:8006")).not.toContain("pw@");
    expect(bad("https://pve:99999")).toContain("not a URL");
  });

  it("validates the token format without echoing the secret", () => {
    const msg = problems(() => resolveConnectionSettings({ endpoint: "https://h:8006", apiToken: "ci@pve=abcdef-secret-value" }, {})).join("\n");
    expect(msg).toContain("USER@REALM!TOKENID=SECRET");
    expect(msg).not.toContain("abcdef-secret-value");
    expect(splitApiToken("ci@pve!tk 11111111-2222-4333-8444-555555555555")).toEqual({ tokenId: "ci@pve!tk", secret: "11111111-2222-4333-8444-555555555555" });
    expect(splitApiToken("ci@pve!t=")).toBeUndefined();
  });

  it("validates numbers and booleans, and an unreadable credentials file", () => {
    const p = problems(() =>
      resolveConnectionSettings({ endpoint: "https://h:8006", apiToken: TOKEN, insecure: "maybe", maxConcurrentRequests: "0", sshPort: "70000", credentialsFile: "/nope.json" }, {}, {
        readFile: () => {
          throw Object.assign(new Error("nope"), { code: "ENOENT" });
        },
      }),
    ).join("\n");
    expect(p).toContain("insecure must be true or false");
    expect(p).toContain("maxConcurrentRequests must be an integer");
    expect(p).toContain("sshPort must be a port number");
    expect(p).toContain("credentials file '/nope.json'");
    expect(p).toContain("ENOENT");
  });
});

describe("SSH settings for snippets", () => {
  const BASE = { endpoint: "https://h:8006", apiToken: TOKEN };
  const FP1 = "SHA256:" + "A".repeat(43);
  const FP2 = "SHA256:" + "b".repeat(42) + "0";

  it("has safe defaults: verification on, no sudo, 4 nodes at a time, no overrides", () => {
    const s = resolveConnectionSettings(BASE, {});
    expect(s.ssh).toMatchObject({ port: 22, hostKeys: [], nodeHostKeys: {}, nodes: {}, insecureSkipHostKeyCheck: false, sudo: false, concurrency: 4 });
    expect(s.ssh.knownHosts).toBeUndefined();
    expect(s.ssh.privateKeyPassphrase).toBeUndefined();
  });

  it("reads the passphrase, sudo, concurrency and the insecure switch from config and environment", () => {
    const s = resolveConnectionSettings({ ...BASE, "proxmox:sshPrivateKeyPassphrase": "pass phrase", "proxmox:sshSudo": "true" }, {
      PROXMOX_VE_SSH_CONCURRENCY: "2",
      PROXMOX_VE_SSH_INSECURE_SKIP_HOST_KEY_CHECK: "1",
    });
    expect(s.ssh).toMatchObject({ privateKeyPassphrase: "pass phrase", sudo: true, concurrency: 2, insecureSkipHostKeyCheck: true });
    expect(s.sources).toMatchObject({ sshPrivateKeyPassphrase: "config", sshConcurrency: "env" });
  });

  it("reads per-node addresses and ports from sshNodes (JSON), an address alone being allowed", () => {
    const s = resolveConnectionSettings({ ...BASE, sshNodes: JSON.stringify({ pve1: { host: "10.0.0.1", port: 2201 }, pve2: { port: "2202" }, pve3: "10.0.0.3" }) }, {});
    expect(s.ssh.nodes).toEqual({ pve1: { host: "10.0.0.1", port: 2201 }, pve2: { port: 2202 }, pve3: { host: "10.0.0.3" } });
  });

  it("reads host keys as a list for every node or as a JSON object per node", () => {
    expect(resolveConnectionSettings({ ...BASE, sshHostKeys: `${FP1}, ${FP2}` }, {}).ssh.hostKeys).toEqual([FP1, FP2]);
    expect(resolveConnectionSettings({ ...BASE, sshHostKeys: JSON.stringify([FP1]) }, {}).ssh.hostKeys).toEqual([FP1]);
    const perNode = resolveConnectionSettings({ ...BASE, sshHostKeys: JSON.stringify({ pve1: FP1, pve2: [FP1, FP2] }) }, {}).ssh;
    expect(perNode.hostKeys).toEqual([]);
    expect(perNode.nodeHostKeys).toEqual({ pve1: [FP1], pve2: [FP1, FP2] });
  });

  it("takes known_hosts as content, or as a file path that it reads", () => {
    const line = "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    expect(resolveConnectionSettings({ ...BASE, sshKnownHosts: line }, {}).ssh.knownHosts).toBe(line);
    const s = resolveConnectionSettings({ ...BASE, sshKnownHosts: "/etc/pve/priv/known_hosts" }, {}, { readFile: (p) => (p === "/etc/pve/priv/known_hosts" ? line + "\n" : "") });
    expect(s.ssh).toMatchObject({ knownHostsFile: "/etc/pve/priv/known_hosts", knownHosts: line + "\n" });
  });

  it("reports every bad SSH setting by name", () => {
    const p = problems(() =>
      resolveConnectionSettings(
        {
          ...BASE,
          sshNodes: JSON.stringify({ pve1: { host: "bad host", port: 0 }, pve2: { hostname: "x" }, pve3: 7 }),
          sshHostKeys: JSON.stringify({ pve1: "MD5:aa" }),
          sshSudo: "sometimes",
          sshInsecureSkipHostKeyCheck: "perhaps",
          sshConcurrency: "100",
          sshKnownHosts: "/missing/known_hosts",
        },
        {},
        { readFile: () => { throw Object.assign(new Error("x"), { code: "ENOENT" }); } },
      ),
    ).join("\n");
    expect(p).toContain("sshNodes.pve1.host must be a host name or IP address");
    expect(p).toContain("sshNodes.pve1.port must be a port number");
    expect(p).toContain("sshNodes.pve2 has unknown keys hostname");
    expect(p).toContain("sshNodes.pve3 must be");
    expect(p).toContain("sshHostKeys.pve1: 'MD5:aa' is not a SHA256 fingerprint");
    expect(p).toContain("sshSudo must be true or false");
    expect(p).toContain("sshInsecureSkipHostKeyCheck must be true or false");
    expect(p).toContain("sshConcurrency must be an integer from 1 to 64");
    expect(p).toContain("sshKnownHosts file '/missing/known_hosts' cannot be read (ENOENT)");
    expect(problems(() => resolveConnectionSettings({ ...BASE, sshNodes: "pve1=10.0.0.1" }, {})).join()).toContain("sshNodes must be a JSON object");
  });

  it("lists the new keys among the config keys configure() copies", () => {
    for (const key of ["sshPrivateKeyPassphrase", "sshNodes", "sshInsecureSkipHostKeyCheck", "sshSudo", "sshConcurrency"]) {
      expect(CONFIG_KEYS).toContain(key);
    }
  });
});
