/**
 * What a snippet is called and where it lives: the checks on its file name and directory
 * (made before anything is dialled) and the snippets directory of a storage.
 */
import * as path from "path";
import { SshError } from "./errors";

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

export interface SnippetRef {
  /** Remote directory, e.g. `/var/lib/vz/snippets` (see snippetsDirOfStoragePath). */
  dir: string;
  /** File name inside the directory, e.g. `user-data-web1.yaml`. */
  name: string;
}

/** Throws an "invalid" SshError when the name or directory is not acceptable. */
export function assertSnippetRef(ref: SnippetRef): void {
  const why = validateSnippetName(ref.name) ?? validateSnippetDir(ref.dir);
  if (why) throw new SshError("invalid", why);
}
