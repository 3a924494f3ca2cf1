// `npm run simulator`: a standalone simulator with sensible defaults (3 nodes, realistic
// latency, pveproxy's 3 s delay on 401s), starting as a fresh install of the PVE version does
// (`local` without snippets content). Root may log in over SSH (snippets) with a key it writes,
// or the one given with `--ssh-key <private key file>`. Prints how to point a stack at it, SSH
// included; runs until Ctrl-C.

import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { utils } from "ssh2";
import { generateEd25519KeyPair } from "../helpers/ssh-keys";
import { startSimulator } from "./index";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const nodes = Number(arg("nodes") ?? 3);
  const pveVersion = (arg("pve-version") ?? "9.1") as "8.4" | "9.1";
  const port = Number(arg("port") ?? 0);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pve-sim-"));
  const given = arg("ssh-key");
  let keyFile: string;
  let publicKey: string;
  if (given) {
    const parsed = utils.parseKey(fs.readFileSync(given, "utf8"));
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (key instanceof Error) throw new Error(`--ssh-key ${given}: ${key.message}`);
    keyFile = path.resolve(given);
    publicKey = `${key.type} ${key.getPublicSSH().toString("base64")}`;
  } else {
    const pair = generateEd25519KeyPair({ comment: "pve-simulator" });
    keyFile = path.join(dir, "id_ed25519");
    fs.writeFileSync(keyFile, pair.private, { mode: 0o600 });
    publicKey = pair.public;
  }
  const s = await startSimulator({
    nodes,
    pveVersion,
    port,
    seed: Number(arg("seed") ?? Date.now() % 2 ** 31),
    timeFactor: Number(arg("time-factor") ?? 1),
    unauthorizedDelayMs: Number(arg("unauthorized-delay-ms") ?? 3000),
    cluster: { sshUsers: { root: { keys: [publicKey] } } },
  });
  const caFile = path.join(dir, "ca.pem");
  fs.writeFileSync(caFile, s.caCert, { mode: 0o644 });

  const lines = [
    `PVE simulator (PVE ${pveVersion}, ${nodes} nodes) listening on ${s.url}`,
    `  API:         ${s.url}/api2/json`,
    `  root token:  ${s.rootToken}`,
    `  root login:  root@pam / ${s.sim.options.rootPassword}`,
    `  CA file:     ${caFile}`,
    `  back door:   ${s.url}/_sim/state  (Authorization: SimAdmin ${s.adminSecret})`,
    ...s.nodes.map((n) => `  node ${n.name}: ssh port ${n.sshPort || "(none)"}${n.hostKeyFingerprint ? `, host key ${n.hostKeyFingerprint}` : ""}`),
    "",
    "Point a stack at it:",
    `  pulumi config set proxmox:endpoint ${s.url}`,
    `  pulumi config set proxmox:caCert ${caFile}        # or PROXMOX_VE_CA_CERT=${caFile}`,
    `  export PROXMOX_VE_API_TOKEN='${s.rootToken}'`,
    ...(s.nodes.some((n) => n.sshPort)
      ? [
          `  # SSH for snippets, as root with the key ${given ? "given" : "written"} at ${keyFile}`,
          `  pulumi config set proxmox:sshUsername root`,
          `  pulumi config set --secret proxmox:sshPrivateKey -- "$(cat ${keyFile})"`,
          `  pulumi config set proxmox:sshNodes '${JSON.stringify(Object.fromEntries(s.nodes.map((n) => [n.name, { host: "127.0.0.1", port: n.sshPort }])))}'`,
          `  pulumi config set proxmox:sshHostKeys '${JSON.stringify(Object.fromEntries(s.nodes.map((n) => [n.name, n.hostKeyFingerprint])))}'`,
          `  # a fresh install has no snippets content on local: the examples declare a storage for it`,
        ]
      : []),
    "",
    "Ctrl-C to stop.",
  ];
  process.stdout.write(lines.join("\n") + "\n");

  const shutdown = async () => {
    await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown());
  process.on("SIGTERM", () => void shutdown());
}

main().catch((e) => {
  process.stderr.write(`simulator failed to start: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
