/**
 * Cloud-init snippets on PVE nodes, over SFTP: write (snippet-write.ts: atomically, verified),
 * check and delete (here). Names and directories are checked in snippet-ref.ts, sudo commands
 * run through sudo.ts; everything callers use is re-exported here.
 */
import type { SshSession } from "./session";
import { Sftp, isNoSuchFile, isPermissionDenied, remoteError } from "./sftp";
import { MAX_SNIPPET_BYTES, assertSnippetRef, type SnippetRef } from "./snippet-ref";
import type { SnippetWriteOptions } from "./snippet-write";
import { runSudo } from "./sudo";

export {
  MAX_SNIPPET_BYTES,
  MAX_SNIPPET_NAME_LENGTH,
  assertSnippetRef,
  snippetsDirOfStoragePath,
  validateSnippetDir,
  validateSnippetName,
  type SnippetRef,
} from "./snippet-ref";
export { SNIPPET_FILE_MODE, putSnippet, renameOver, type SnippetWriteOptions, type SnippetWriteResult } from "./snippet-write";
export { shellQuote } from "./sudo";

export type SnippetState = "present" | "missing" | "altered";

export interface SnippetCheck {
  node: string;
  path: string;
  /** `altered` when the content's hash differs from the one expected (or it is not a file). */
  state: SnippetState;
  size?: number;
  sha256?: string;
  /** Permission bits (e.g. 0o644). */
  mode?: number;
}

export interface SnippetDeleteResult {
  node: string;
  path: string;
  /** False when there was nothing to delete (which is fine). */
  existed: boolean;
}

/**
 * Reads what is on one node. With `sha256` given, a file with other content is `altered`;
 * without it (import), any regular file is `present`.
 */
export async function checkSnippet(session: SshSession, ref: SnippetRef, sha256?: string): Promise<SnippetCheck> {
  assertSnippetRef(ref);
  const endpoint = session.endpoint;
  const sftp = new Sftp(await session.sftp());
  const filePath = `${ref.dir}/${ref.name}`;
  let st;
  try {
    st = await sftp.statOrUndefined(filePath);
  } catch (e) {
    throw remoteError(endpoint, "looking up", filePath, e);
  }
  if (!st) return { node: endpoint.node, path: filePath, state: "missing" };
  const mode = st.mode & 0o7777;
  if (!st.isFile()) return { node: endpoint.node, path: filePath, state: "altered", mode };
  let got;
  try {
    got = await sftp.hashFile(filePath, MAX_SNIPPET_BYTES);
  } catch (e) {
    if (isNoSuchFile(e)) return { node: endpoint.node, path: filePath, state: "missing" };
    throw remoteError(endpoint, "reading", filePath, e);
  }
  const state: SnippetState = sha256 === undefined || sha256.toLowerCase() === got.sha256 ? "present" : "altered";
  return { node: endpoint.node, path: filePath, state, size: got.size, sha256: got.sha256, mode };
}

/** Removes a snippet from one node; a file that is already missing is fine. */
export async function deleteSnippet(
  session: SshSession,
  ref: SnippetRef,
  opts: SnippetWriteOptions = {},
): Promise<SnippetDeleteResult> {
  assertSnippetRef(ref);
  const endpoint = session.endpoint;
  const sftp = new Sftp(await session.sftp());
  const filePath = `${ref.dir}/${ref.name}`;
  if (opts.sudo) {
    let st;
    try {
      st = await sftp.statOrUndefined(filePath);
    } catch (e) {
      if (!isPermissionDenied(e)) throw remoteError(endpoint, "looking up", filePath, e);
      st = {} as object;
    }
    if (!st) return { node: endpoint.node, path: filePath, existed: false };
    await runSudo(session, ["rm", "-f", "--", filePath], `deleting ${filePath}`);
    return { node: endpoint.node, path: filePath, existed: true };
  }
  try {
    const existed = await sftp.unlinkIfExists(filePath);
    return { node: endpoint.node, path: filePath, existed };
  } catch (e) {
    throw remoteError(
      endpoint,
      "deleting",
      filePath,
      e,
      isPermissionDenied(e) ? `'${session.username}' cannot write to ${ref.dir}; give it write access or set sshSudo: true` : "",
    );
  }
}
