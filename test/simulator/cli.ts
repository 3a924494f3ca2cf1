// `npm run simulator`: a standalone simulator with sensible defaults (3 nodes, realistic
// latency, pveproxy's 3 s delay on 401s). Prints how to point a stack at it; runs until
// Ctrl-C.

import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startSimulator } from "./index";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const nodes = Number(arg("nodes") ?? 3);
  const pveVersion = (arg("pve-version") ?? "9.1") as "8.4" | "9.1";
  const port = Number(arg("port") ?? 0);
  const s = await startSimulator({
    nodes,
    pveVersion,
    port,
    seed: Number(arg("seed") ?? Date.now() % 2 ** 31),
    timeFactor: Number(arg("time-factor") ?? 1),
    unauthorizedDelayMs: Number(arg("unauthorized-delay-ms") ?? 3000),
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pve-sim-"));
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
      ? [`  # SSH (snippets): each node has its own port above; pin the host keys printed there.`]
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
