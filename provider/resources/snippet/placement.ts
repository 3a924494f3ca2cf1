// Where a snippet goes: the storage (must be file-based with `snippets` content, available
// on the nodes), the nodes (given, or every online node), each node's SSH address, and the
// SSH options from the provider's settings. Nothing here is a resource input except the
// storage and node names: credentials and addresses come from `proxmox:ssh*` config.

import type { ConnectionSettings } from "../../config";
import type { PveClient } from "../../proxmox/client";
import type { StorageConfig } from "../../proxmox/storage";
import { toBool } from "../../proxmox/coerce";
import { SshEndpoint, SnippetTransportOptions, resolveEndpoint, snippetsDirOfStoragePath } from "../../ssh";
import type { Logger } from "../../util/logger";

export interface SnippetStorage {
  storage: string;
  type: string;
  /** `<path>/snippets`. */
  dir: string;
  /** Shared storages (NFS, a dir marked shared) hold one copy that every node sees. */
  shared: boolean;
  content: string[];
  /** Nodes the storage is restricted to (undefined: all). */
  nodes?: string[];
}

/** Why a storage cannot take snippets; callers decide by `reason`, never by the message. */
export class SnippetStorageError extends Error {
  /** The message is `problem; fix`: what is wrong (for a log line that needs no fix), then how to fix it. */
  constructor(
    readonly reason: "missing" | "noSnippets" | "noPath" | "disabled",
    readonly problem: string,
    fix: string,
  ) {
    super(`${problem}; ${fix}`);
    this.name = "SnippetStorageError";
  }
}

function list(value: unknown): string[] {
  return String(value ?? "")
    .split(/[,;\s]+/)
    .filter((x) => x !== "");
}

/** A PVE boolean (1/0, "1"/"0", on/off...); absent is false. */
function flag(value: unknown): boolean {
  return toBool(value) ?? false;
}

/** The storage definition, checked for snippets: throws an error saying how to fix it. */
export async function snippetStorage(api: PveClient, storage: string): Promise<SnippetStorage> {
  const all: StorageConfig[] = await api.storage.list();
  const s = all.find((x) => x.storage === storage);
  if (!s) {
    const ids = all.map((x) => x.storage).sort();
    throw new SnippetStorageError(
      "missing",
      `storage '${storage}' does not exist (or the API user lacks Datastore.Audit on /storage/${storage})`,
      `storages visible: ${ids.length ? ids.join(", ") : "none"}`,
    );
  }
  const content = list(s.content);
  const type = String(s.type ?? "unknown");
  if (!content.includes("snippets")) {
    const fix = [...content, "snippets"].join(",");
    throw new SnippetStorageError(
      "noSnippets",
      `storage '${storage}' (${type}) does not have 'snippets' content (its content types: ${content.join(", ") || "none"})`,
      `enable it with \`pvesm set ${storage} --content ${fix}\`, or declare the storage with the Storage resource and add 'snippets' to its content`,
    );
  }
  if (typeof s.path !== "string" || s.path === "") {
    throw new SnippetStorageError("noPath", `storage '${storage}' (${type}) has no file system path, so it cannot hold snippets`, "use a dir, NFS or CIFS storage");
  }
  if (flag(s.disable)) throw new SnippetStorageError("disabled", `storage '${storage}' is disabled`, `enable it (\`pvesm set ${storage} --disable 0\`) before writing snippets to it`);
  const nodes = s.nodes !== undefined ? list(s.nodes) : undefined;
  return { storage, type, dir: snippetsDirOfStoragePath(s.path), shared: flag(s.shared) || type === "nfs" || type === "cifs" || type === "cephfs", content, nodes };
}

/** Online node names, sorted. */
export async function onlineNodes(api: PveClient): Promise<string[]> {
  return (await api.nodes.list()).filter((n) => n.status === "online").map((n) => n.node).sort();
}

/** Fails when a node is not in the cluster or the storage is not available on it. */
export async function checkNodes(api: PveClient, st: SnippetStorage, nodes: readonly string[]): Promise<void> {
  const known = (await api.nodes.list()).map((n) => n.node);
  const unknown = nodes.filter((n) => !known.includes(n));
  if (unknown.length) throw new Error(`node${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} ${unknown.length > 1 ? "are" : "is"} not in the cluster (nodes: ${known.sort().join(", ")})`);
  const outside = st.nodes ? nodes.filter((n) => !st.nodes!.includes(n)) : [];
  if (outside.length) {
    throw new Error(
      `storage '${st.storage}' is not available on ${outside.join(", ")} (it is restricted to ${st.nodes!.join(", ")}); ` +
        `add the node${outside.length > 1 ? "s" : ""} to the storage's nodes or drop ${outside.length > 1 ? "them" : "it"} from the snippet's nodes`,
    );
  }
}

/**
 * SSH address of each node: `proxmox:sshNodes` overrides win; otherwise a single-node cluster
 * is reached at the API endpoint's host, and nodes of a larger cluster at their node name
 * (the name PVE nodes use for each other; it must resolve from where Pulumi runs).
 */
export function nodeEndpoints(settings: ConnectionSettings, nodes: readonly string[], clusterSize: number): SshEndpoint[] {
  const apiHost = new URL(settings.endpoint).hostname.replace(/^\[(.*)\]$/, "$1");
  return nodes.map((node) =>
    resolveEndpoint(node, {
      overrides: settings.ssh.nodes,
      address: clusterSize === 1 ? apiHost : undefined,
      defaultPort: settings.ssh.port,
    }),
  );
}

/** Transport options from the provider's SSH settings; throws when no usable login is set. */
export function transportOptions(settings: ConnectionSettings, logger?: Logger): SnippetTransportOptions {
  const ssh = settings.ssh;
  const username = ssh.username ?? "root";
  const agentSocket = ssh.agent || settings.sources.sshAgentSocket === "config" ? ssh.agentSocket : undefined;
  return {
    username,
    ...(ssh.privateKey ? { privateKey: ssh.privateKey } : {}),
    ...(ssh.privateKeyPassphrase ? { passphrase: ssh.privateKeyPassphrase } : {}),
    ...(agentSocket ? { agentSocket } : {}),
    ...(ssh.password ? { password: ssh.password } : {}),
    hostKeys: {
      fingerprints: ssh.hostKeys,
      nodeFingerprints: ssh.nodeHostKeys,
      ...(ssh.knownHosts !== undefined ? { knownHosts: ssh.knownHosts } : {}),
      insecureSkipHostKeyCheck: ssh.insecureSkipHostKeyCheck,
    },
    sudo: ssh.sudo,
    concurrency: ssh.concurrency,
    ...(logger ? { logger } : {}),
  };
}
