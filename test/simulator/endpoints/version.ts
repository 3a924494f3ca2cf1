// GET /version (pve-manager API2/Version.pm): version, release, repoid by pveVersion.
// Field set per the recorded PVE 9.2.10 answer (fixtures/version.pve9.2.10.json).

import type { Sim } from "../sim";

const VERSIONS = {
  "9.1": { version: "9.1.4", release: "9.1", repoid: "5ac30304265fbd8e" },
  "8.4": { version: "8.4.1", release: "8.4", repoid: "2a5fa54a8503f96d" },
} as const;

export function register(sim: Sim): void {
  sim.route({
    method: "GET",
    path: "/version",
    params: {},
    permissions: { user: "all" },
    handler: () => ({ ...VERSIONS[sim.options.pveVersion] }),
  });
}
