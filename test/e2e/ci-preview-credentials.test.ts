/**
 * The provider says so when the stack config's credentials hide the environment's (the CI
 * pitfall examples/ci/README.md warns about: `proxmox:apiToken` in the stack config wins over a
 * read-only PROXMOX_VE_API_TOKEN), naming the variable and never printing a value.
 */
import { configure, connection } from "../../provider/resources/context";

const ADMIN = "root@pam!admin=11111111-2222-3333-4444-555555555555";
const READ_ONLY = "ci-readonly@pve!preview=66666666-7777-8888-9999-000000000000";

function stderrOf(fn: () => void): string {
  const chunks: string[] = [];
  const spy = jest.spyOn(process.stderr, "write").mockImplementation((c: string | Uint8Array) => {
    chunks.push(String(c));
    return true;
  });
  try {
    fn();
  } finally {
    spy.mockRestore();
  }
  return chunks.join("");
}

describe("credentials for CI previews", () => {
  const saved = process.env.PROXMOX_VE_API_TOKEN;
  afterEach(() => {
    if (saved === undefined) delete process.env.PROXMOX_VE_API_TOKEN;
    else process.env.PROXMOX_VE_API_TOKEN = saved;
  });
  const config = (values: Record<string, string>) => ({ get: (k: string) => values[k] });

  it("uses the environment's token when the stack config holds none", () => {
    process.env.PROXMOX_VE_API_TOKEN = READ_ONLY;
    configure(config({ "proxmox:endpoint": "https://pve.example.com:8006" }));
    const err = stderrOf(() => {
      const { settings } = connection();
      expect(settings.credentials).toMatchObject({ kind: "token", tokenId: "ci-readonly@pve!preview" });
      expect(settings.sources.apiToken).toBe("env");
    });
    expect(err).toBe("");
  });

  it("warns, once and without values, when a stack config token hides PROXMOX_VE_API_TOKEN", () => {
    process.env.PROXMOX_VE_API_TOKEN = READ_ONLY;
    configure(config({ "proxmox:endpoint": "https://pve.example.com:8006", "proxmox:apiToken": ADMIN }));
    const err = stderrOf(() => {
      expect(connection().settings.credentials).toMatchObject({ kind: "token", tokenId: "root@pam!admin" });
    });
    expect(err).toMatch(/PROXMOX_VE_API_TOKEN in the environment is ignored: the stack config's proxmox: credentials win/);
    expect(err).toMatch(/pulumi config rm proxmox:apiToken/);
    expect(err).not.toContain("11111111");
    expect(err).not.toContain("66666666");
    configure(config({ "proxmox:endpoint": "https://pve.example.com:8006", "proxmox:apiToken": ADMIN }));
    expect(stderrOf(() => connection())).toBe("");
  });
});
