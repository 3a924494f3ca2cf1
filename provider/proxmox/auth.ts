import type { Clock } from "../util/clock";
import { systemClock } from "../util/clock";
import { PveApiError, type PveIdentity } from "./errors";
import type { HttpMethod, Params } from "./http";

/** Adds credentials to requests. Implementations keep their secrets out of every message. */
export interface Authenticator {
  readonly identity: PveIdentity;
  headers(method: HttpMethod, signal?: AbortSignal): Promise<Record<string, string>>;
  /** Every secret this authenticator holds right now (for redaction). */
  secrets(): string[];
  /** Forget a credential PVE refused; true if getting a fresh one may help. */
  invalidate(): boolean;
}

/** `USER@REALM!TOKENID`, the non-secret part of an API token. */
export const TOKEN_ID_PATTERN = /^[^\s:/@!]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$/;

export class TokenAuth implements Authenticator {
  readonly identity: PveIdentity;

  constructor(
    readonly tokenId: string,
    private readonly secret: string,
  ) {
    this.identity = { kind: "token", id: tokenId };
  }

  async headers(): Promise<Record<string, string>> {
    return { Authorization: `PVEAPIToken=${this.tokenId}=${this.secret}` };
  }

  secrets(): string[] {
    return [this.secret, `${this.tokenId}=${this.secret}`];
  }

  invalidate(): boolean {
    return false;
  }
}

/** What POST /access/ticket answers. */
export interface TicketResponse {
  username: string;
  ticket?: string;
  CSRFPreventionToken?: string;
  clustername?: string;
  NeedTFA?: number | string;
  cap?: Record<string, unknown>;
}

/** Posts to /access/ticket without credentials (the client wires this to its transport). */
export type TicketPoster = (params: Params, signal?: AbortSignal) => Promise<TicketResponse>;

export interface TicketAuthOptions {
  username: string;
  password: string;
  realm?: string;
  otp?: string;
  post: TicketPoster;
  /** For error messages only. */
  endpoint?: string;
  clock?: Clock;
  /** Renew a ticket once it is this old (PVE tickets live 2 h). Default 60 min. */
  renewAfterMs?: number;
  /** Past this age a ticket is not trusted any more: log in again with the password. Default 1 h 50 min. */
  reloginAfterMs?: number;
}

const TICKET_LIFETIME_MS = 2 * 60 * 60 * 1000;

function needsTfa(res: TicketResponse): boolean {
  return Number(res.NeedTFA ?? 0) === 1 || (res.ticket ?? "").startsWith("PVE:!tfa!");
}

/**
 * Username/password login: a ticket sent as the PVEAuthCookie cookie, plus the
 * CSRFPreventionToken header on every request that is not a GET.
 */
export class TicketAuth implements Authenticator {
  readonly identity: PveIdentity;
  private ticket?: string;
  private csrf?: string;
  private obtainedAt = 0;
  private pending?: Promise<void>;
  private readonly clock: Clock;
  private readonly renewAfterMs: number;
  private readonly reloginAfterMs: number;
  /** How many times a ticket was obtained by password and by renewal (for tests and diagnostics). */
  readonly counts = { logins: 0, renewals: 0 };

  constructor(private readonly opts: TicketAuthOptions) {
    const user = opts.username.includes("@") || !opts.realm ? opts.username : `${opts.username}@${opts.realm}`;
    this.identity = { kind: "user", id: user };
    this.clock = opts.clock ?? systemClock;
    this.renewAfterMs = opts.renewAfterMs ?? 60 * 60 * 1000;
    this.reloginAfterMs = opts.reloginAfterMs ?? TICKET_LIFETIME_MS - 10 * 60 * 1000;
  }

  async headers(method: HttpMethod, signal?: AbortSignal): Promise<Record<string, string>> {
    await this.ensureTicket(signal);
    const headers: Record<string, string> = { Cookie: `PVEAuthCookie=${this.ticket}` };
    if (method !== "GET" && this.csrf) headers.CSRFPreventionToken = this.csrf;
    return headers;
  }

  secrets(): string[] {
    return [this.opts.password, this.opts.otp, this.ticket, this.csrf].filter((s): s is string => !!s);
  }

  invalidate(): boolean {
    this.ticket = undefined;
    this.csrf = undefined;
    return true;
  }

  private async ensureTicket(signal?: AbortSignal): Promise<void> {
    const age = this.clock.now() - this.obtainedAt;
    if (this.ticket && age < this.renewAfterMs) return;
    if (!this.pending) {
      const renew = this.ticket !== undefined && age < this.reloginAfterMs;
      this.pending = (renew ? this.renew(signal) : this.login(signal)).finally(() => {
        this.pending = undefined;
      });
    }
    await this.pending;
  }

  /** A login that cannot succeed as configured, reported as PVE's 401 on /access/ticket. */
  private ticketRefused(reason: string): PveApiError {
    return new PveApiError({
      method: "POST",
      path: "/access/ticket",
      endpoint: this.opts.endpoint ?? "",
      status: 401,
      identity: this.identity,
      reason,
      secrets: this.secrets(),
    });
  }

  private accept(res: TicketResponse): void {
    if (!res.ticket || !res.CSRFPreventionToken) {
      throw this.ticketRefused("PVE returned no ticket");
    }
    this.ticket = res.ticket;
    this.csrf = res.CSRFPreventionToken;
    this.obtainedAt = this.clock.now();
  }

  private async renew(signal?: AbortSignal): Promise<void> {
    const current = this.ticket as string;
    try {
      const res = await this.opts.post({ username: this.identity.id, password: current }, signal);
      this.accept(res);
      this.counts.renewals++;
    } catch (err) {
      if (err instanceof PveApiError && err.kind === "auth") {
        await this.login(signal);
        return;
      }
      throw err;
    }
  }

  private async login(signal?: AbortSignal): Promise<void> {
    const { password, otp } = this.opts;
    const first = await this.opts.post(
      { username: this.identity.id, password, ...(otp ? { otp } : {}) },
      signal,
    );
    if (needsTfa(first)) {
      if (!otp) {
        throw this.ticketRefused("this user requires two-factor authentication: set proxmox:otp (PROXMOX_VE_OTP) or use an API token");
      }
      const second = await this.opts.post(
        { username: this.identity.id, "tfa-challenge": first.ticket, password: `totp:${otp}` },
        signal,
      );
      this.accept(second);
    } else {
      this.accept(first);
    }
    this.counts.logins++;
  }
}
