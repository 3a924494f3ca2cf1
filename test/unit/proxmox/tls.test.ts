import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PveClient } from "../../../provider/proxmox/client";
import { PveApiError } from "../../../provider/proxmox/errors";
import { destroyAgents } from "../../../provider/proxmox/http";
import { loadCaCert } from "../../../provider/proxmox/tls";
import { startHttpsServer, testPki, type TestServer } from "../helpers/https-server";
import { RecordingLogger } from "../helpers/fake-clock";

let server: TestServer;
const token = { kind: "token" as const, tokenId: "ci@pve!tls", secret: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee" };

beforeAll(async () => {
  server = await startHttpsServer(() => ({ body: { data: { version: "9.2.10", release: "9.2", repoid: "43df2e01" } } }));
});
afterAll(async () => {
  await server.close();
  destroyAgents();
});

describe("TLS", () => {
  it("verifies the server against a custom CA given as PEM text", async () => {
    const client = new PveClient({ endpoint: server.endpoint, credentials: token, tls: { caCert: testPki().caCert } });
    await expect(client.cluster.version()).resolves.toMatchObject({ version: "9.2.10" });
  });

  it("verifies the server against a custom CA given as a file path", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pve-ca-"));
    const file = path.join(dir, "pve-root-ca.pem");
    fs.writeFileSync(file, testPki().caCert);
    const client = new PveClient({ endpoint: server.endpoint, credentials: token, tls: { caCert: file } });
    await expect(client.cluster.version()).resolves.toMatchObject({ release: "9.2" });
    fs.rmSync(dir, { recursive: true });
  });

  it("fails closed without the CA, and says how to fix it (caCert or insecure)", async () => {
    const client = new PveClient({ endpoint: server.endpoint, credentials: token, tls: {}, readRetry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxElapsedMs: 1 } });
    const err = await client.cluster.version().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveApiError);
    expect((err as PveApiError).kind).toBe("tls");
    expect((err as PveApiError).message).toMatch(/proxmox:caCert/);
    expect((err as PveApiError).message).toMatch(/insecure/);
    expect((err as PveApiError).message).toContain(server.endpoint);
  });

  it("fails closed against the wrong CA, and does not retry a TLS failure", async () => {
    const client = new PveClient({ endpoint: server.endpoint, credentials: token, tls: { caCert: testPki().otherCaCert } });
    await expect(client.cluster.version()).rejects.toMatchObject({ kind: "tls" });
    expect(client.stats.requests).toBe(1);
  });

  it("skips verification only when asked, and warns once per endpoint through the logger", async () => {
    const logger = new RecordingLogger();
    const a = new PveClient({ endpoint: server.endpoint, credentials: token, tls: { insecure: true }, logger });
    const b = new PveClient({ endpoint: server.endpoint, credentials: token, tls: { insecure: true }, logger });
    await a.cluster.version();
    await b.cluster.version();
    await a.cluster.version();
    expect(logger.warnings).toHaveLength(1);
    expect(logger.warnings[0]).toMatch(/verification is disabled for https:\/\/127\.0\.0\.1/);
  });

  it("rejects a caCert that is neither PEM nor a readable PEM file, naming the problem", () => {
    expect(() => loadCaCert("/nonexistent/ca.pem")).toThrow(/cannot read the file '\/nonexistent\/ca.pem'.*ENOENT/);
    expect(() => loadCaCert("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----")).toThrow(/not a valid PEM certificate/);
  });
});
