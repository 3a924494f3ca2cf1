/**
 * An open, authenticated connection to one node (opened by connection.ts): one SFTP channel
 * reused for every file operation, commands with capped output, closing that cannot leave the
 * socket behind. Its messages are scrubbed of the connection's secrets.
 */
import { Client, SFTPWrapper } from "ssh2";
import { SshEndpoint, SshError, describeEndpoint, scrubSecrets } from "./errors";
import type { HostKeyAccepted } from "./hostkeys";

export interface ExecResult {
  code: number | null;
  signal?: string;
  stdout: string;
  stderr: string;
}

const MAX_EXEC_OUTPUT = 64 * 1024;

/** An open, authenticated connection to one node. */
export class SshSession {
  private sftpPromise?: Promise<SFTPWrapper>;
  private closed = false;

  constructor(
    private readonly client: Client,
    readonly endpoint: SshEndpoint,
    readonly username: string,
    readonly hostKey: HostKeyAccepted,
    private readonly secrets: readonly string[],
  ) {
    client.on("close", () => {
      this.closed = true;
    });
  }

  /** The SFTP channel, opened once and reused. */
  sftp(): Promise<SFTPWrapper> {
    if (!this.sftpPromise) {
      this.sftpPromise = new Promise<SFTPWrapper>((resolve, reject) => {
        this.client.sftp((err, sftp) => {
          if (err) {
            reject(
              new SshError(
                "remote",
                `cannot open an SFTP session on node ${describeEndpoint(this.endpoint)}: ${this.scrub(err.message)}; ` +
                  `the node's sshd must offer the sftp subsystem`,
                this.endpoint,
              ),
            );
          } else resolve(sftp);
        });
      });
      this.sftpPromise.catch(() => {
        this.sftpPromise = undefined;
      });
    }
    return this.sftpPromise;
  }

  /** Runs a command (already shell-quoted by the caller); output is capped at 64 KiB each. */
  exec(command: string): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      this.client.exec(command, (err, stream) => {
        if (err) {
          reject(
            new SshError(
              "remote",
              `cannot run a command on node ${describeEndpoint(this.endpoint)}: ${this.scrub(err.message)}`,
              this.endpoint,
            ),
          );
          return;
        }
        let stdout = "";
        let stderr = "";
        stream.on("data", (d: Buffer) => {
          if (stdout.length < MAX_EXEC_OUTPUT) stdout += d.toString("utf8");
        });
        stream.stderr.on("data", (d: Buffer) => {
          if (stderr.length < MAX_EXEC_OUTPUT) stderr += d.toString("utf8");
        });
        stream.on("close", (code: number | null, signal?: string) => {
          resolve({ code: code ?? null, signal: signal ?? undefined, stdout, stderr });
        });
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.client.end();
    } catch {
      // already gone
    }
    // end() waits for the server; make sure the socket cannot outlive the operation.
    setTimeout(() => this.client.destroy(), 2000).unref();
  }

  /** Forcibly drops the connection (used when an operation overruns its bound). */
  destroy(): void {
    this.closed = true;
    this.client.destroy();
  }

  scrub(text: string): string {
    return scrubSecrets(text, this.secrets);
  }
}
