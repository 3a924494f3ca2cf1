/**
 * Cloud-init snippets on PVE nodes, over SFTP: write (atomically, verified), check, delete.
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
import * as path from "path";
import { SshEndpoint, SshError, describeEndpoint } from "./errors";
import { SshSession } from "./connection";
import { Sftp, isNoSuchFile, isPermissionDenied, remoteError, SFTP_STATUS } from "./sftp";
import { contentBytes, sha256Hex } from "./hash";

export const SNIPPET_FILE_MODE = 0o644;
export const MAX_SNIPPET_NAME_LENGTH = 200;
/** Snippets are small text files; anything bigger is a mistake, not a cloud-init config. */
export const MAX_SNIPPET_BYTES = 16 * 1024 * 1024;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Why a snippet file name is not acceptable, or undefined when it is. PVE accepts
 * `snippets/<name>` for any name without `/` (Plugin.pm parse_volname); we are stricter,
 * because the name also ends up in `cicustom` property strings and on remote command lines:
 * letters, digits, `.`, `_`, `-`, starting with a letter or digit, no `..`, at most 200.
 */
export function validateSnippetName(name: unknown): string | undefined {
  if (typeof name !== "string") return "the snippet name must be a string";
  if (name.length === 0) return "the snippet name is empty";
  if (name.length > MAX_SNIPPET_NAME_LENGTH) {
    return `the snippet name is ${name.length} characters long; at most ${MAX_SNIPPET_NAME_LENGTH} are allowed`;
  }
  if (/[/\\]/.test(name)) return `the snippet name '${printable(name)}' contains a path separator; give a file name only`;
  if (name.includes("..")) return `the snippet name '${printable(name)}' contains '..'`;
  if (name.startsWith(".")) return `the snippet name '${printable(name)}' starts with '.'; hidden names are reserved for temporary files`;
  if (/[\s\u0000-\u001f\u007f]/.test(name)) return `the snippet name '${printable(name)}' contains whitespace or control characters`;
  if (!NAME_RE.test(name)) {
    return `the snippet name '${printable(name)}' may only contain letters, digits, '.', '_' and '-', and must start with a letter or digit`;
  }
  return undefined;
}

/**
 * Why a remote directory is not acceptable, or undefined when it is: absolute, normalised
 * (no `.`/`..` segments, no doubled or trailing slash), not `/`, no control characters.
 */
export function validateSnippetDir(dir: unknown): string | undefined {
  if (typeof dir !== "string" || dir.length === 0) return "the snippets directory must be a non-empty path";
  if (!dir.startsWith("/")) return `the snippets directory '${printable(dir)}' must be an absolute path`;
  if (/[\u0000-\u001f\u007f]/.test(dir)) return "the snippets directory contains control characters";
  if (dir.length > 4096) return "the snippets directory path is too long";
  if (dir.split("/").some((seg) => seg === ".." || seg === ".")) {
    return `the snippets directory '${printable(dir)}' must not contain '.' or '..' segments`;
  }
  if (path.posix.normalize(dir) !== dir || (dir.length > 1 && dir.endsWith("/"))) {
    return `the snippets directory '${printable(dir)}' is not normalised (doubled or trailing '/')`;
  }
  if (dir === "/") return "the snippets directory must not be '/'";
  return undefined;
}

/** The snippets directory of a directory-backed storage: `<path>/snippets` (PVE's layout). */
export function snippetsDirOfStoragePath(storagePath: string): string {
  const base = storagePath.length > 1 ? storagePath.replace(/\/+$/, "") : storagePath;
  const dir = `${base}/snippets`;
  const why = validateSnippetDir(dir);
  if (why) throw new SshError("invalid", `storage path '${printable(storagePath)}': ${why}`);
  return dir;
}

function printable(s: string): string {
  const cut = s.length > 80 ? s.slice(0, 80) + "..." : s;
  return cut.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

/** Single-quotes a string for a POSIX shell. */
export function shellQuote(s: string): string {
  if (s.includes("\u0000")) throw new SshError("invalid", "a NUL byte cannot be passed on a command line");
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface SnippetRef {
  /** Remote directory, e.g. `/var/lib/vz/snippets` (see snippetsDirOfStoragePath). */
  dir: string;
  /** File name inside the directory, e.g. `user-data-web1.yaml`. */
  name: string;
}

export interface SnippetWriteOptions {
  /** Use `sudo -n install` / `sudo -n mv` through a private temporary file in `tmpDir`. */
  sudo?: boolean;
  /** Where the sudo path stages the upload. Default `/tmp`. */
  tmpDir?: string;
}

/** Throws an "invalid" SshError when the name or directory is not acceptable. */
export function assertSnippetRef(ref: SnippetRef): void {
  const why = validateSnippetName(ref.name) ?? validateSnippetDir(ref.dir);
  if (why) throw new SshError("invalid", why);
}

export interface SnippetWriteResult {
  node: string;
  path: string;
  size: number;
  sha256: string;
  mode: number;
}

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

function tempSuffix(): string {
  return randomBytes(6).toString("hex");
}

async function ensureDirectory(sftp: Sftp, endpoint: SshEndpoint, dir: string): Promise<void> {
  let st;
  try {
    st = await sftp.stat(dir);
  } catch (e) {
    throw remoteError(
      endpoint,
      "looking up the snippets directory",
      dir,
      e,
      isNoSuchFile(e) ? "enable 'snippets' content on the storage (PVE creates the directory) or check the storage path" : "",
    );
  }
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
  const expected = { size: data.length, sha256: sha256Hex(data) };
  const endpoint = session.endpoint;
  const sftp = new Sftp(await session.sftp());
  await ensureDirectory(sftp, endpoint, ref.dir);
  const finalPath = `${ref.dir}/${ref.name}`;
  const tmpPath = `${ref.dir}/.${ref.name}.tmp-${tempSuffix()}`;

  if (opts.sudo) return putWithSudo(session, sftp, finalPath, tmpPath, data, expected, opts.tmpDir ?? "/tmp");

  let created = false;
  try {
    let handle: Buffer;
    try {
      handle = await sftp.open(tmpPath, "wx", SNIPPET_FILE_MODE);
    } catch (e) {
      throw remoteError(
        endpoint,
        "creating",
        tmpPath,
        e,
        isPermissionDenied(e)
          ? `'${session.username}' cannot write to ${ref.dir}; give it write access or set sshSudo: true (passwordless sudo)`
          : "",
      );
    }
    created = true;
    try {
      await sftp.writeAll(handle, data);
      if (sftp.hasFsync) await sftp.fsync(handle);
    } catch (e) {
      await sftp.close(handle).catch(() => undefined);
      throw remoteError(endpoint, "writing", tmpPath, e, "the disk may be full");
    }
    try {
      await sftp.close(handle);
    } catch (e) {
      throw remoteError(endpoint, "closing", tmpPath, e);
    }
    try {
      // Explicitly: the mode given to open() is subject to the server's umask.
      await sftp.chmod(tmpPath, SNIPPET_FILE_MODE);
    } catch (e) {
      throw remoteError(endpoint, "setting mode 0644 on", tmpPath, e);
    }
    await verifyContent(sftp, endpoint, tmpPath, expected);
    await renameOver(sftp, endpoint, tmpPath, finalPath);
    created = false;
  } finally {
    if (created) await sftp.unlinkIfExists(tmpPath).catch(() => undefined);
  }
  return confirmFinal(sftp, endpoint, finalPath, expected);
}

async function verifyContent(
  sftp: Sftp,
  endpoint: SshEndpoint,
  filePath: string,
  expected: { size: number; sha256: string },
): Promise<void> {
  let got;
  try {
    got = await sftp.hashFile(filePath, MAX_SNIPPET_BYTES);
  } catch (e) {
    throw remoteError(endpoint, "reading back", filePath, e);
  }
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
    try {
      await sftp.posixRename(from, to);
      return;
    } catch (e) {
      throw remoteError(endpoint, "renaming into place", to, e);
    }
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
  try {
    await sftp.unlinkIfExists(to);
    await sftp.rename(from, to);
  } catch (e) {
    throw remoteError(endpoint, "replacing", to, e);
  }
}

async function confirmFinal(
  sftp: Sftp,
  endpoint: SshEndpoint,
  finalPath: string,
  expected: { size: number; sha256: string },
): Promise<SnippetWriteResult> {
  let st;
  try {
    st = await sftp.stat(finalPath);
  } catch (e) {
    throw remoteError(endpoint, "checking", finalPath, e);
  }
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

// ---------------------------------------------------------------------------------------
// sudo

async function sudo(session: SshSession, args: string[], what: string): Promise<void> {
  const command = ["sudo", "-n", "--", ...args].map((a, i) => (i < 3 ? a : shellQuote(a))).join(" ");
  const res = await session.exec(command);
  if (res.code === 0) return;
  const endpoint = session.endpoint;
  const stderr = session.scrub(res.stderr.trim()).slice(0, 500);
  const noPassword = /password is required|a terminal is required|no tty present|askpass/i.test(stderr);
  const notInstalled = res.code === 127 && /sudo/.test(stderr);
  const hint = notInstalled
    ? "sudo is not installed on the node"
    : noPassword
      ? `'${session.username}' needs passwordless sudo (sudo -n) for install, mv and rm on the node`
      : `the command failed${stderr ? `: ${stderr}` : ` with exit code ${res.code}`}`;
  throw new SshError(
    "sudo",
    `${what} with sudo -n on node ${describeEndpoint(endpoint)} as '${session.username}' failed: ${hint}`,
    endpoint,
  );
}

async function putWithSudo(
  session: SshSession,
  sftp: Sftp,
  finalPath: string,
  tmpPath: string,
  data: Buffer,
  expected: { size: number; sha256: string },
  tmpDir: string,
): Promise<SnippetWriteResult> {
  const endpoint = session.endpoint;
  const why = validateSnippetDir(tmpDir);
  if (why) throw new SshError("invalid", `sshTmpDir: ${why}`);
  const staged = `${tmpDir}/.pve-snippet-${tempSuffix()}`;
  let stagedCreated = false;
  let tmpCreated = false;
  try {
    let handle: Buffer;
    try {
      handle = await sftp.open(staged, "wx", 0o600);
    } catch (e) {
      throw remoteError(endpoint, "staging the snippet in", staged, e);
    }
    stagedCreated = true;
    try {
      await sftp.writeAll(handle, data);
    } finally {
      await sftp.close(handle).catch(() => undefined);
    }
    tmpCreated = true; // from here on, clean up the hidden name too (rm -f is harmless)
    await sudo(session, ["install", "-m", "0644", "--", staged, tmpPath], `copying the snippet to ${tmpPath}`);
    await verifyContent(sftp, endpoint, tmpPath, expected);
    await sudo(session, ["mv", "-f", "--", tmpPath, finalPath], `renaming the snippet into place at ${finalPath}`);
    tmpCreated = false;
  } finally {
    if (stagedCreated) await sftp.unlinkIfExists(staged).catch(() => undefined);
    if (tmpCreated) await sudo(session, ["rm", "-f", "--", tmpPath], "cleaning up").catch(() => undefined);
  }
  return confirmFinal(sftp, endpoint, finalPath, expected);
}

// ---------------------------------------------------------------------------------------
// check and delete

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
    await sudo(session, ["rm", "-f", "--", filePath], `deleting ${filePath}`);
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
