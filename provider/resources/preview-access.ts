// A preview must fail where `pulumi up` would, and only there.
//
// check() and diff() of unchanged inputs ask PVE nothing (a CI preview of a converged stack makes
// no API call), so without more a preview with a wrong token, an untrusted certificate or an
// unreachable endpoint announced `+ 2 to create` and exited 0, and the `up` then failed. So
// before a preview announces a step that `up` would carry out through the API (a create: check()
// of a resource without a state; an update or a replacement: a diff with changes), the provider
// makes one authenticated request (`GET /version`, which any valid user or token may read), once
// per provider process and endpoint. A 401, a TLS failure, an unreachable endpoint or missing
// connection settings then fail the preview with the error `up` would give, by the same code
// path (`up` runs check() and diff() too). Unchanged resources still cost nothing, and a preview
// (or an up) with nothing to do fails nowhere.
//
// A read-only principal (a CI token with PVEAuditor) may be refused (403) a lookup that check()
// makes to validate a reference: that is tolerated (`up` runs with other credentials), and said
// once as a warning naming the privilege it lacks, so a preview that could not check something
// says what.

import type { PveClient } from "../proxmox/client";
import { PveApiError } from "../proxmox/errors";
import { connection, providerLogger } from "./context";

let probes = new WeakMap<PveClient, Promise<void>>();

/** Resolves when the provider's credentials are accepted by its endpoint; rejects with the
 *  client's error (naming the endpoint and the identity, never a secret) otherwise. */
export function ensureApiReachable(): Promise<void> {
  let conn: ReturnType<typeof connection>;
  try {
    conn = connection();
  } catch (err) {
    return Promise.reject(err);
  }
  let probe = probes.get(conn.client);
  if (!probe) {
    probe = conn.client.cluster.version().then(() => undefined);
    probes.set(conn.client, probe);
  }
  return probe;
}

const warned = new Set<string>();

/** check()'s lookup of `what` failed: a 403 is said once as a warning (the privilege named by
 *  the client's message); anything else is left to the probe above and to `up`. */
export function lookupDenied(what: string, err: unknown): void {
  if (!(err instanceof PveApiError) || err.kind !== "permission") return;
  const message = `could not check ${what}: ${err.message} The preview goes on without this check; \`pulumi up\` checks it with its own credentials.`;
  if (warned.has(message)) return;
  warned.add(message);
  providerLogger.warn(message);
}

/** check() asked the cluster about `what` and the credentials' view held `none` (`no node`):
 *  nothing is reported as missing (PVE filters what a principal may not see), and the warning
 *  names the privilege that would show it. */
export function unseen(what: string[], none: string, privilege: string): void {
  if (what.length === 0) return;
  let who = "these credentials";
  try {
    const id = connection().client.identity;
    who = `${id.kind === "token" ? "token" : "user"} '${id.id}'`;
  } catch {
    /* no connection settings: nothing was asked */
  }
  const message = `could not check ${what.join(", ")}: ${who} ${who === "these credentials" ? "see" : "sees"} ${none} in the cluster (that needs ${privilege}). The preview goes on without this check; \`pulumi up\` checks it with its own credentials.`;
  if (warned.has(message)) return;
  warned.add(message);
  providerLogger.warn(message);
}

/** Forgets the probes and warnings (tests, a reconfigured provider). */
export function clearPreviewAccess(): void {
  probes = new WeakMap();
  warned.clear();
}
