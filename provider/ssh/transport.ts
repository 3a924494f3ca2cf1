/**
 * The snippet transport as the CloudInitSnippet resource uses it: one call per lifecycle
 * step, over every node, at most `concurrency` nodes at a time, one connection per node.
 * Names, paths, credentials and pinned fingerprints are checked before anything is dialled.
 */
import { SshEndpoint, SshError } from "./errors";
import { SshConnectOptions, checkCredentials } from "./connect-options";
import { withSession } from "./connection";
import { validateHostKeyPolicy } from "./hostkeys";
import { NodeOutcome, forEachNode } from "./nodes";
import type { SshSession } from "./session";
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

/** Checks everything, then runs `step` in one session per node, `concurrency` nodes at a time. */
function onEveryNode<T>(
  endpoints: readonly SshEndpoint[],
  opts: SnippetTransportOptions,
  ref: SnippetRef,
  action: string,
  step: (session: SshSession) => Promise<T>,
): Promise<NodeOutcome<T>> {
  preflight(endpoints, opts, ref);
  const byNode = new Map(endpoints.map((e) => [e.node, e]));
  return forEachNode(
    endpoints.map((e) => e.node),
    (node) => withSession(byNode.get(node) as SshEndpoint, opts, step),
    { concurrency: opts.concurrency, action: `${action} snippet ${ref.dir}/${ref.name}` },
  );
}

/** Writes the snippet on every node (atomically, verified); see NodeOutcome for partial failure. */
export async function putSnippetOnNodes(
  endpoints: readonly SshEndpoint[],
  opts: SnippetTransportOptions,
  ref: SnippetRef,
  content: string | Uint8Array,
): Promise<NodeOutcome<SnippetWriteResult>> {
  return onEveryNode(endpoints, opts, ref, "writing", (s) => putSnippet(s, ref, content, opts));
}

/** Checks every node: present, missing, or altered (content differs from `sha256`). */
export async function checkSnippetOnNodes(
  endpoints: readonly SshEndpoint[],
  opts: SnippetTransportOptions,
  ref: SnippetRef,
  sha256?: string,
): Promise<NodeOutcome<SnippetCheck>> {
  return onEveryNode(endpoints, opts, ref, "reading", (s) => checkSnippet(s, ref, sha256));
}

/** Removes the snippet from every node; nodes where it is already gone count as success. */
export async function deleteSnippetFromNodes(
  endpoints: readonly SshEndpoint[],
  opts: SnippetTransportOptions,
  ref: SnippetRef,
): Promise<NodeOutcome<SnippetDeleteResult>> {
  return onEveryNode(endpoints, opts, ref, "deleting", (s) => deleteSnippet(s, ref, opts));
}
