// `npm run simulator` (cli.ts): starts, prints the URL, the root token and the CA file, and
// a client using exactly those can call the API; SIGTERM stops it and removes the CA file.
//
// `npm run simulator` is `npm run build && node dist/test/simulator/cli.js`. After a build
// (CI runs `npm run build` before jest) the test runs that compiled file; when dist/ is
// missing or older than the simulator's sources it runs cli.ts itself, transpiled on load,
// rather than a stale build.
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import https from "https";
import * as path from "path";
import { createHash } from "crypto";
import { Client } from "ssh2";

const REPO = path.resolve(__dirname, "../../..");
const SRC = path.join(REPO, "test/simulator");
const DIST = path.join(REPO, "dist/test/simulator");

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === "tests" ? [] : sources(p);
    return e.name.endsWith(".ts") ? [p] : [];
  });
}

function distIsFresh(): boolean {
  return sources(SRC).every((src) => {
    const out = path.join(DIST, path.relative(SRC, src)).replace(/\.ts$/, ".js");
    return fs.existsSync(out) && fs.statSync(out).mtimeMs >= fs.statSync(src).mtimeMs;
  });
}

/** Node arguments that run the simulator CLI. */
function cliCommand(): string[] {
  if (distIsFresh()) return [path.join(DIST, "cli.js")];
  const hook = `
    const ts = require("typescript"), fs = require("fs");
    require.extensions[".ts"] = (m, file) => m._compile(ts.transpileModule(fs.readFileSync(file, "utf8"), {
      fileName: file,
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, esModuleInterop: true },
    }).outputText, file);
    require(${JSON.stringify(path.join(SRC, "cli.ts"))});`;
  return ["-e", hook, "--"];
}

/** Collects stdout until `done` matches it, or the process ends or 60 s pass. */
function readUntil(child: ChildProcess, done: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`no '${done}' within 60 s; stdout: ${out}; stderr: ${err}`)), 60_000);
    child.stderr!.on("data", (d) => (err += d));
    child.stdout!.on("data", (d) => {
      out += d;
      if (done.test(out)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`simulator exited (${code}) before printing '${done}'; stdout: ${out}; stderr: ${err}`));
    });
  });
}

/** Logs in as root with `privateKey`; the SHA256 fingerprint of the host key the node served. */
function sshLogin(port: number, privateKey: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let fingerprint = "";
    const conn = new Client();
    conn
      .on("ready", () => {
        conn.end();
        resolve(fingerprint);
      })
      .on("error", reject)
      .connect({
        host: "127.0.0.1",
        port,
        username: "root",
        privateKey,
        hostVerifier: (key: Buffer) => {
          fingerprint = `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
          return true;
        },
      });
  });
}

function get(url: string, ca: string, token: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, agent: false, headers: { Authorization: `PVEAPIToken=${token}` } }, (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
      })
      .on("error", reject);
  });
}

test("npm run simulator prints URL, root token and CA file; an authenticated GET /version works with them", async () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, "package.json"), "utf8"));
  expect(pkg.scripts.simulator).toBe("npm run build && node dist/test/simulator/cli.js");

  const child = spawn(process.execPath, [...cliCommand(), "--nodes", "2", "--seed", "7"], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  try {
    const out = await readUntil(child, /Ctrl-C to stop\./);
    const url = /listening on (https:\/\/127\.0\.0\.1:\d+)\n/.exec(out)?.[1];
    const token = /root token: +(root@pam!sim=[0-9a-f-]{36})\n/.exec(out)?.[1];
    const caFile = /CA file: +(\S+)\n/.exec(out)?.[1];
    expect([url, token, caFile].every(Boolean)).toBe(true);
    expect(out).toContain(`pulumi config set proxmox:endpoint ${url}`);
    expect(out).toContain(`export PROXMOX_VE_API_TOKEN='${token}'`);
    expect(out).toMatch(/node pve1: ssh port \d+, host key SHA256:/);
    // SSH for snippets: the key it wrote logs in as root on every node, the host key it printed is the one served
    const keyFile = /--secret proxmox:sshPrivateKey -- "\$\(cat (\S+)\)"/.exec(out)?.[1];
    const nodes = JSON.parse(/proxmox:sshNodes '([^']+)'/.exec(out)?.[1] ?? "{}");
    const hostKeys = JSON.parse(/proxmox:sshHostKeys '([^']+)'/.exec(out)?.[1] ?? "{}");
    expect(Object.keys(nodes)).toEqual(["pve1", "pve2"]);
    expect(fs.statSync(keyFile!).mode & 0o777).toBe(0o600);
    for (const node of ["pve1", "pve2"]) {
      const seen = await sshLogin(nodes[node].port, fs.readFileSync(keyFile!, "utf8"));
      expect(seen).toBe(hostKeys[node]);
    }

    const ca = fs.readFileSync(caFile!, "utf8");
    expect(ca).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const r = await get(`${url}/api2/json/version`, ca, token!);
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({ version: expect.stringMatching(/^9\.1/), release: "9.1" });
    // the CA is what makes TLS work: without it the connection is refused
    await expect(new Promise((resolve, reject) => https.get(`${url}/api2/json/version`, { agent: false }, resolve).on("error", reject))).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);

    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(fs.existsSync(caFile!)).toBe(false);
    expect(fs.existsSync(keyFile!)).toBe(false);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}, 90_000);
