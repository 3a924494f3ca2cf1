/**
 * Writing a cloud-init snippet to one node over SFTP, atomically and verified.
 *
 * Writing never exposes a half-written file: the content goes to a hidden temporary name in
 * the same directory (`.<name>.tmp-<random>`; PVE's storage listing skips dot-files), is
 * set to mode 0644, read back and compared (size and SHA-256), and only then renamed over the
 * final name. On any failure the temporary file is removed.
 *
 * The rename uses `posix-rename@openssh.com` (rename(2), atomically replaces the target)
 * when the server offers it, as OpenSSH's sftp-server does. Plain SFTP rename refuses an
 * existing target, so without the extension an existing file is removed first and the new
 * one renamed in: for that short moment the snippet is missing (never partial).
 *
 * Non-root users that cannot write the directory use `sudo: true`: the content goes to a
 * private file in /tmp, `sudo -n install -m 0644` copies it to the hidden temporary name,
 * it is verified, and `sudo -n mv -f` renames it into place.
 */
import { randomBytes } from "crypto";
import { SshEndpoint, SshError, describeEndpoint } from "./errors";
import { contentBytes, sha256Hex } from "./hash";
import type { SshSession } from "./session";
import { Sftp, isNoSuchFile, isPermissionDenied, remoteError, SFTP_STATUS } from "./sftp";
import { MAX_SNIPPET_BYTES, assertSnippetRef, validateSnippetDir, type SnippetRef } from "./snippet-ref";
import { runSudo } from "./sudo";

export const SNIPPET_FILE_MODE = 0o644;

export interface SnippetWriteOptions {
  /** Use `sudo -n install` / `sudo -n mv` through a private temporary file in `tmpDir`. */
  sudo?: boolean;
  /** Where the sudo path stages the upload. Default `/tmp`. */
  tmpDir?: string;
}

export interface SnippetWriteResult {
  node: string;
  path: string;
  size: number;
  sha256: string;
  mode: number;
}

/** What the written file must read back as. */
interface Digest {
  size: number;
  sha256: string;
}

function tempSuffix(): string {
  return randomBytes(6).toString("hex");
}

/** One remote file operation; its failure becomes an SshError naming `what`, the path and the node. */
async function remote<T>(endpoint: SshEndpoint, what: string, filePath: string, op: () => Promise<T>, hint: (e: unknown) => string = () => ""): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw remoteError(endpoint, what, filePath, e, hint(e));
  }
}

async function ensureDirectory(sftp: Sftp, endpoint: SshEndpoint, dir: string): Promise<void> {
  const st = await remote(endpoint, "looking up the snippets directory", dir, () => sftp.stat(dir), (e) =>
    isNoSuchFile(e) ? "enable 'snippets' content on the storage (PVE creates the directory) or check the storage path" : "",
  );
  if (!st.isDirectory()) {
    throw new SshError("remote", `${dir} on node ${describeEndpoint(endpoint)} is not a directory`, endpoint);
  }
}

/** Writes a snippet to one node (see the module comment for the guarantees). */
export async function putSnippet(
  session: SshSession,
  ref: SnippetRef,
  content: string | Uint8Array,
  opts: SnippetWriteOptions = {},
): Promise<SnippetWriteResult> {
  assertSnippetRef(ref);
  const data = contentBytes(content);
  if (data.length > MAX_SNIPPET_BYTES) {
    throw new SshError("invalid", `snippet '${ref.name}' is ${data.length} bytes; at most ${MAX_SNIPPET_BYTES} are allowed`);
  }
  const expected: Digest = { size: data.length, sha256: sha256Hex(data) };
  const endpoint = session.endpoint;
  const sftp = new Sftp(await session.sftp());
  await ensureDirectory(sftp, endpoint, ref.dir);
  const finalPath = `${ref.dir}/${ref.name}`;
  const tmpPath = `${ref.dir}/.${ref.name}.tmp-${tempSuffix()}`;

  if (opts.sudo) return putWithSudo(session, sftp, finalPath, tmpPath, data, expected, opts.tmpDir ?? "/tmp");

  let created = false;
  try {
    const handle = await remote(endpoint, "creating", tmpPath, () => sftp.open(tmpPath, "wx", SNIPPET_FILE_MODE), (e) =>
      isPermissionDenied(e) ? `'${session.username}' cannot write to ${ref.dir}; give it write access or set sshSudo: true (passwordless sudo)` : "",
    );
    created = true;
    try {
      await sftp.writeAll(handle, data);
      if (sftp.hasFsync) await sftp.fsync(handle);
    } catch (e) {
      await sftp.close(handle).catch(() => undefined);
      throw remoteError(endpoint, "writing", tmpPath, e, "the disk may be full");
    }
    await remote(endpoint, "closing", tmpPath, () => sftp.close(handle));
    // Explicitly: the mode given to open() is subject to the server's umask.
    await remote(endpoint, "setting mode 0644 on", tmpPath, () => sftp.chmod(tmpPath, SNIPPET_FILE_MODE));
    await verifyContent(sftp, endpoint, tmpPath, expected);
    await renameOver(sftp, endpoint, tmpPath, finalPath);
    created = false;
  } finally {
    if (created) await sftp.unlinkIfExists(tmpPath).catch(() => undefined);
  }
  return confirmFinal(sftp, endpoint, finalPath, expected);
}

async function verifyContent(sftp: Sftp, endpoint: SshEndpoint, filePath: string, expected: Digest): Promise<void> {
  const got = await remote(endpoint, "reading back", filePath, () => sftp.hashFile(filePath, MAX_SNIPPET_BYTES));
  if (got.size !== expected.size || got.sha256 !== expected.sha256) {
    throw new SshError(
      "verify",
      `snippet written to ${filePath} on node ${describeEndpoint(endpoint)} does not read back as written ` +
        `(expected ${expected.size} bytes sha256 ${expected.sha256}, read ${got.size} bytes sha256 ${got.sha256}); ` +
        `it was not put in place`,
      endpoint,
    );
  }
}

/** Exported for tests: puts `from` in place of `to` (see the module comment). */
export async function renameOver(sftp: Sftp, endpoint: SshEndpoint, from: string, to: string): Promise<void> {
  if (sftp.hasPosixRename) {
    await remote(endpoint, "renaming into place", to, () => sftp.posixRename(from, to));
    return;
  }
  try {
    await sftp.rename(from, to);
    return;
  } catch (e) {
    // Plain SFTP rename refuses an existing target: remove it, then rename (brief absence).
    const code = (e as { code?: number }).code;
    if (code !== SFTP_STATUS.FAILURE && code !== SFTP_STATUS.OP_UNSUPPORTED && code !== 11 /* FILE_ALREADY_EXISTS */) {
      throw remoteError(endpoint, "renaming into place", to, e);
    }
  }
  await remote(endpoint, "replacing", to, async () => {
    await sftp.unlinkIfExists(to);
    await sftp.rename(from, to);
  });
}

async function confirmFinal(sftp: Sftp, endpoint: SshEndpoint, finalPath: string, expected: Digest): Promise<SnippetWriteResult> {
  const st = await remote(endpoint, "checking", finalPath, () => sftp.stat(finalPath));
  if (st.size !== expected.size) {
    throw new SshError(
      "verify",
      `${finalPath} on node ${describeEndpoint(endpoint)} has ${st.size} bytes right after being put in place, expected ${expected.size}; ` +
        `something else is writing it`,
      endpoint,
    );
  }
  return { node: endpoint.node, path: finalPath, size: st.size, sha256: expected.sha256, mode: st.mode & 0o7777 };
}

async function putWithSudo(
  session: SshSession,
  sftp: Sftp,
  finalPath: string,
  tmpPath: string,
  data: Buffer,
  expected: Digest,
  tmpDir: string,
): Promise<SnippetWriteResult> {
  const endpoint = session.endpoint;
  const why = validateSnippetDir(tmpDir);
  if (why) throw new SshError("invalid", `sshTmpDir: ${why}`);
  const staged = `${tmpDir}/.pve-snippet-${tempSuffix()}`;
  let stagedCreated = false;
  let tmpCreated = false;
  try {
    const handle = await remote(endpoint, "staging the snippet in", staged, () => sftp.open(staged, "wx", 0o600));
    stagedCreated = true;
    try {
      await sftp.writeAll(handle, data);
    } finally {
      await sftp.close(handle).catch(() => undefined);
    }
    tmpCreated = true; // from here on, clean up the hidden name too (rm -f is harmless)
    await runSudo(session, ["install", "-m", "0644", "--", staged, tmpPath], `copying the snippet to ${tmpPath}`);
    await verifyContent(sftp, endpoint, tmpPath, expected);
    await runSudo(session, ["mv", "-f", "--", tmpPath, finalPath], `renaming the snippet into place at ${finalPath}`);
    tmpCreated = false;
  } finally {
    if (stagedCreated) await sftp.unlinkIfExists(staged).catch(() => undefined);
    if (tmpCreated) await runSudo(session, ["rm", "-f", "--", tmpPath], "cleaning up").catch(() => undefined);
  }
  return confirmFinal(sftp, endpoint, finalPath, expected);
}
