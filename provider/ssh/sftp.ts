/**
 * Promise wrappers over ssh2's SFTP client for the few operations the snippet transport
 * needs, with SFTP status codes turned into messages that name the node and the path.
 */
import { OpenMode, SFTPWrapper, Stats } from "ssh2";
import { createHash } from "crypto";
import { SshEndpoint, SshError, describeEndpoint } from "./errors";

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7). */
export const SFTP_STATUS = {
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  OP_UNSUPPORTED: 8,
} as const;

type SftpErr = Error & { code?: number | string };

export function isNoSuchFile(err: unknown): boolean {
  return (err as SftpErr | undefined)?.code === SFTP_STATUS.NO_SUCH_FILE;
}

export function isPermissionDenied(err: unknown): boolean {
  return (err as SftpErr | undefined)?.code === SFTP_STATUS.PERMISSION_DENIED;
}

/** An SshError for a failed file operation, keeping the SFTP status code for callers. */
export function remoteError(endpoint: SshEndpoint, what: string, path: string, err: unknown, hint = ""): SshError {
  const e = err as SftpErr;
  let reason = e?.message ?? String(err);
  if (isPermissionDenied(err)) reason = "permission denied";
  else if (isNoSuchFile(err)) reason = "no such file or directory";
  const out = new SshError(
    "remote",
    `${what} ${path} on node ${describeEndpoint(endpoint)} failed: ${reason}${hint ? `; ${hint}` : ""}`,
    endpoint,
  );
  (out as SshError & { sftpCode?: unknown }).sftpCode = e?.code;
  return out;
}

function call<T>(fn: (cb: (err: Error | undefined | null, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      fn((err, value) => (err ? reject(err) : resolve(value as T)));
    } catch (e) {
      reject(e);
    }
  });
}

/** Thin promise layer; every method rejects with the raw SFTP error (callers add context). */
export class Sftp {
  constructor(readonly raw: SFTPWrapper) {}

  stat(path: string): Promise<Stats> {
    return call<Stats>((cb) => this.raw.stat(path, cb));
  }

  /** `stat`, but a missing path resolves to undefined. */
  async statOrUndefined(path: string): Promise<Stats | undefined> {
    try {
      return await this.stat(path);
    } catch (e) {
      if (isNoSuchFile(e)) return undefined;
      throw e;
    }
  }

  open(path: string, flags: OpenMode, mode?: number): Promise<Buffer> {
    return call<Buffer>((cb) =>
      mode === undefined ? this.raw.open(path, flags, cb) : this.raw.open(path, flags, { mode }, cb),
    );
  }

  close(handle: Buffer): Promise<void> {
    return call<void>((cb) => this.raw.close(handle, cb));
  }

  chmod(path: string, mode: number): Promise<void> {
    return call<void>((cb) => this.raw.chmod(path, mode, cb));
  }

  unlink(path: string): Promise<void> {
    return call<void>((cb) => this.raw.unlink(path, cb));
  }

  /** Removes a file; a file that is already gone is fine. Returns whether it existed. */
  async unlinkIfExists(path: string): Promise<boolean> {
    try {
      await this.unlink(path);
      return true;
    } catch (e) {
      if (isNoSuchFile(e)) return false;
      throw e;
    }
  }

  /** Whether the server offers `posix-rename@openssh.com` (rename that replaces the target). */
  get hasPosixRename(): boolean {
    return (this.raw as unknown as { _extensions?: Record<string, string> })._extensions?.["posix-rename@openssh.com"] === "1";
  }

  get hasFsync(): boolean {
    return (this.raw as unknown as { _extensions?: Record<string, string> })._extensions?.["fsync@openssh.com"] === "1";
  }

  posixRename(from: string, to: string): Promise<void> {
    return call<void>((cb) => this.raw.ext_openssh_rename(from, to, cb));
  }

  rename(from: string, to: string): Promise<void> {
    return call<void>((cb) => this.raw.rename(from, to, cb));
  }

  fsync(handle: Buffer): Promise<void> {
    return call<void>((cb) => this.raw.ext_openssh_fsync(handle, (err) => cb(err)));
  }

  /** Writes the whole buffer at offset 0 with several requests in flight. */
  writeAll(handle: Buffer, data: Buffer, chunk = 32 * 1024, inFlight = 16): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (data.length === 0) return resolve();
      let next = 0;
      let pending = 0;
      let failed = false;
      const pump = (): void => {
        while (!failed && pending < inFlight && next < data.length) {
          const off = next;
          const len = Math.min(chunk, data.length - off);
          next += len;
          pending++;
          try {
            this.raw.write(handle, data, off, len, off, (err) => {
              pending--;
              if (failed) return;
              if (err) {
                failed = true;
                reject(err);
              } else if (next >= data.length && pending === 0) resolve();
              else pump();
            });
          } catch (e) {
            failed = true;
            reject(e);
          }
        }
      };
      pump();
    });
  }

  /** Size and SHA-256 (hex) of a remote file, read in full. */
  async hashFile(path: string, maxBytes = 64 * 1024 * 1024): Promise<{ size: number; sha256: string }> {
    const handle = await this.open(path, "r");
    const hash = createHash("sha256");
    let size = 0;
    const buf = Buffer.alloc(64 * 1024);
    try {
      for (;;) {
        const n = await new Promise<number>((resolve, reject) => {
          this.raw.read(handle, buf, 0, buf.length, size, (err, bytesRead) => {
            if (err) {
              if ((err as SftpErr).code === SFTP_STATUS.EOF) resolve(0);
              else reject(err);
            } else resolve(bytesRead);
          });
        });
        if (n === 0) break;
        hash.update(buf.subarray(0, n));
        size += n;
        if (size > maxBytes) throw new Error(`file is larger than ${maxBytes} bytes`);
      }
    } finally {
      await this.close(handle).catch(() => undefined);
    }
    return { size, sha256: hash.digest("hex") };
  }
}
