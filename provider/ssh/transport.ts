/**
 * The snippet transport as the CloudInitSnippet resource uses it: one call per lifecycle
 * step, over every node, at most `concurrency` nodes at a time, one connection per node.
 * Names, paths, credentials and pinned fingerprints are checked before anything is dialled.
 */
import { SshEndpoint, SshError } from "./errors";
import { SshConnectOptions, checkCredentials, withSession } from "./connection";
import { validateHostKeyPolicy } from "./hostkeys";
import { NodeOutcome, forEachNode } from "./nodes";
import {
  SnippetCheck,
  SnippetDeleteResult,
  SnippetRef,
  SnippetWriteOptions,
  SnippetWriteResult,
  assertSnippetRef,
  checkSnippet,
  deleteSnippet,
  putSnippet,
} from "./snippets";

export interface SnippetTransportOptions extends SshConnectOptions, SnippetWriteOptions {
  /** Nodes worked on at once. Default 4. */
  concurrency?: number;
}

function preflight(endpoints: readonly SshEndpoint[], opts: SnippetTransportOptions, ref: SnippetRef): void {
  assertSnippetRef(ref);
  checkCredentials(opts);
  const problems = validateHostKeyPolicy(opts.hostKeys);
  if (problems.length > 0) throw new SshError("invalid", problems.join("; "));
  if (endpoints.length === 0) throw new SshError("invalid", "no nodes given for the snippet");
}

function byNode(endpoints: readonly SshEndpoint[]): Map<string, SshEndpoint> {
  return new Map(endpoints.map((e) => [e.node, e]));
}

/** Writes the snippet on every node (atomically, verified); see NodeOutcome for partial failure. */
export async function putSnippetOnNodes(
  endpoints: readonly SshEndpoint[],
  opts: SnippetTransportOptions,
  ref: SnippetRef,
  content: string | Uint8Array,
): Promise<NodeOutcome<SnippetWriteResult>> {
  preflight(endpoints, opts, ref);
  const map = byNode(endpoints);
  return forEachNode(
    endpoints.map((e) => e.node),
    (node) => withSession(map.get(node) as SshEndpoint, opts, (s) => putSnippet(s, ref, content, opts)),
    { concurrency: opts.concurrency, action: `writing snippet ${ref.dir}/${ref.name}` },
  );
}

/** Checks every node: present, missing, or altered (content differs from `sha256`). */
export async function checkSnippetOnNodes(
  endpoints: readonly SshEndpoint[],
  opts: SnippetTransportOptions,
  ref: SnippetRef,
  sha256?: string,
): Promise<NodeOutcome<SnippetCheck>> {
  preflight(endpoints, opts, ref);
  const map = byNode(endpoints);
  return forEachNode(
    endpoints.map((e) => e.node),
    (node) => withSession(map.get(node) as SshEndpoint, opts, (s) => checkSnippet(s, ref, sha256)),
    { concurrency: opts.concurrency, action: `reading snippet ${ref.dir}/${ref.name}` },
  );
}

/** Removes the snippet from every node; nodes where it is already gone count as success. */
export async function deleteSnippetFromNodes(
  endpoints: readonly SshEndpoint[],
  opts: SnippetTransportOptions,
  ref: SnippetRef,
): Promise<NodeOutcome<SnippetDeleteResult>> {
  preflight(endpoints, opts, ref);
  const map = byNode(endpoints);
  return forEachNode(
    endpoints.map((e) => e.node),
    (node) => withSession(map.get(node) as SshEndpoint, opts, (s) => deleteSnippet(s, ref, opts)),
    { concurrency: opts.concurrency, action: `deleting snippet ${ref.dir}/${ref.name}` },
  );
}
