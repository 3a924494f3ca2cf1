/**
 * Runs one operation on many nodes with bounded parallelism and collects every outcome, so
 * the caller learns which nodes succeeded even when others failed.
 */
import { Semaphore } from "../util/semaphore";

export const DEFAULT_NODE_CONCURRENCY = 4;

export type NodeResult<T> = { node: string; ok: true; value: T } | { node: string; ok: false; error: Error };

export interface NodeOutcome<T> {
  /** One entry per node, in the order the nodes were given. */
  results: NodeResult<T>[];
  succeeded: string[];
  failed: string[];
  /** Set when any node failed: one error naming every failed node. */
  error?: NodesError;
}

/** One error for a multi-node operation, naming each failed node with its own message. */
export class NodesError extends Error {
  constructor(
    readonly action: string,
    readonly failures: ReadonlyArray<{ node: string; error: Error }>,
    readonly succeeded: readonly string[],
  ) {
    super(NodesError.describe(action, failures, succeeded));
    this.name = "NodesError";
  }

  private static describe(
    action: string,
    failures: ReadonlyArray<{ node: string; error: Error }>,
    succeeded: readonly string[],
  ): string {
    const total = failures.length + succeeded.length;
    const names = failures.map((f) => f.node).join(", ");
    const head =
      `${action} failed on ${failures.length} of ${total} node${total === 1 ? "" : "s"} (${names})` +
      (succeeded.length > 0 ? `; it succeeded on ${succeeded.join(", ")}` : "");
    return `${head}:\n${failures.map((f) => `  ${f.node}: ${f.error.message}`).join("\n")}`;
  }
}

export async function forEachNode<T>(
  nodes: readonly string[],
  fn: (node: string) => Promise<T>,
  opts: { concurrency?: number; action?: string } = {},
): Promise<NodeOutcome<T>> {
  const duplicates = nodes.filter((n, i) => nodes.indexOf(n) !== i);
  if (duplicates.length > 0) throw new Error(`node list names ${duplicates.join(", ")} more than once`);
  const sem = new Semaphore(opts.concurrency ?? DEFAULT_NODE_CONCURRENCY);
  const results = await Promise.all(
    nodes.map((node) =>
      sem.run(async (): Promise<NodeResult<T>> => {
        try {
          return { node, ok: true, value: await fn(node) };
        } catch (e) {
          return { node, ok: false, error: e instanceof Error ? e : new Error(String(e)) };
        }
      }),
    ),
  );
  const succeeded = results.filter((r) => r.ok).map((r) => r.node);
  const failures = results.flatMap((r) => (r.ok ? [] : [{ node: r.node, error: r.error }]));
  const outcome: NodeOutcome<T> = { results, succeeded, failed: failures.map((f) => f.node) };
  if (failures.length > 0) outcome.error = new NodesError(opts.action ?? "the operation", failures, succeeded);
  return outcome;
}
