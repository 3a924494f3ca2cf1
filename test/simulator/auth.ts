// Authentication as pveproxy does it (BEHAVIOURS.md §1 "Auth failures", "Ticket login",
// "Using the ticket", "API token"): API tokens, tickets (cookie or Authorization header),
// CSRF tokens for ticket writes, ticket login/renewal with optional OTP.

import { createHmac, randomBytes, timingSafeEqual } from "crypto";
import type { IncomingHttpHeaders } from "http";
import type { Sim } from "./sim";
import { splitTokenId, UserRec } from "./state/access";
import { AuthContext, PveError } from "./types";

export const TICKET_LIFETIME_S = 2 * 3600;
/** Ticket timestamps may lie a little in the future (clock skew), as in PVE::Ticket. */
const MIN_TICKET_AGE_S = -300;

export type AuthOutcome =
  | { kind: "ok"; auth: AuthContext; ticket: boolean }
  | { kind: "none" }
  | { kind: "fail"; detail: string };

function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, "0");
}

function safeEq(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function base32Decode(s: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of s.replace(/=+$/, "").toUpperCase()) {
    const i = alphabet.indexOf(c);
    if (i < 0) continue;
    value = (value << 5) | i;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP (SHA-1, 30 s step, 6 digits) at `timeMs`. */
export function totp(secretBase32: string, timeMs: number, stepOffset = 0): string {
  const counter = Math.floor(timeMs / 1000 / 30) + stepOffset;
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(BigInt(counter));
  const h = createHmac("sha1", base32Decode(secretBase32)).update(buf).digest();
  const off = h[h.length - 1] & 0xf;
  const code = ((h.readUInt32BE(off) & 0x7fffffff) % 1_000_000).toString().padStart(6, "0");
  return code;
}

export class Auth {
  private readonly key = randomBytes(32);

  constructor(private readonly sim: Sim) {}

  private sign(data: string): string {
    return createHmac("sha256", this.key).update(data).digest("base64").replace(/=+$/, "");
  }

  /** `PVE:<userid>:<8HEX time>::<base64 signature>` (PVE::Ticket `assemble_rsa_ticket`). */
  createTicket(userid: string): string {
    const data = `PVE:${userid}:${hex8(this.sim.nowSeconds())}`;
    return `${data}::${this.sign(data)}`;
  }

  /** The partial ticket of the TFA step (`PVE:!tfa!<userid>:...`). */
  createTfaTicket(userid: string): string {
    return this.createTicket(`!tfa!${userid}`);
  }

  /** Returns the ticket's user id, or undefined when forged or outside its lifetime. */
  verifyTicket(ticket: string): string | undefined {
    const m = /^(PVE:([^:]+):([0-9A-F]{8}))::(.+)$/.exec(ticket);
    if (!m) return undefined;
    if (!safeEq(this.sign(m[1]), m[4])) return undefined;
    const age = this.sim.nowSeconds() - parseInt(m[3], 16);
    if (age < MIN_TICKET_AGE_S || age > TICKET_LIFETIME_S) return undefined;
    return m[2];
  }

  /** `<8HEX>:<base64 HMAC>` (PVE::Ticket `assemble_csrf_prevention_token`). */
  csrfToken(userid: string): string {
    const ts = hex8(this.sim.nowSeconds());
    return `${ts}:${this.sign(`${ts}:${userid}`)}`;
  }

  verifyCsrf(userid: string, token: string | undefined): boolean {
    if (!token) return false;
    const m = /^([0-9A-F]{8}):(\S+)$/.exec(token);
    if (!m) return false;
    if (!safeEq(this.sign(`${m[1]}:${userid}`), m[2])) return false;
    const age = this.sim.nowSeconds() - parseInt(m[1], 16);
    return age >= MIN_TICKET_AGE_S && age <= TICKET_LIFETIME_S;
  }

  private userUsable(u: UserRec | undefined): string | undefined {
    if (!u) return "no such user";
    if (!u.enable) return `user '${u.userid}' is disabled`;
    if (u.expire && u.expire < this.sim.nowSeconds()) return `user '${u.userid}' access expired`;
    return undefined;
  }

  /** Reads the credentials of a request (token header, ticket cookie or header). */
  authenticate(headers: IncomingHttpHeaders): AuthOutcome {
    const authz = typeof headers.authorization === "string" ? headers.authorization.trim() : "";
    const tok = /^PVEAPIToken[= ](\S+?)=(\S+)$/.exec(authz);
    if (tok) return this.authToken(tok[1], tok[2]);
    let ticket: string | undefined;
    const hdrTicket = /^PVEAuthCookie=(\S+)$/.exec(authz);
    if (hdrTicket) ticket = hdrTicket[1];
    if (!ticket && typeof headers.cookie === "string") {
      for (const part of headers.cookie.split(";")) {
        const [k, ...v] = part.trim().split("=");
        if (k === "PVEAuthCookie") {
          ticket = v.join("=");
          break;
        }
      }
    }
    if (!ticket) return { kind: "none" };
    try {
      ticket = decodeURIComponent(ticket);
    } catch {
      // not URL-encoded
    }
    const userid = this.verifyTicket(ticket);
    if (!userid || userid.startsWith("!tfa!")) return { kind: "fail", detail: "permission denied - invalid PVE ticket" };
    const bad = this.userUsable(this.sim.access.user(userid));
    if (bad) return { kind: "fail", detail: bad === "no such user" ? `no such user ('${userid}')` : bad };
    return { kind: "ok", auth: { userid, principal: userid }, ticket: true };
  }

  private authToken(fullId: string, secret: string): AuthOutcome {
    const split = splitTokenId(fullId);
    if (!split) return { kind: "fail", detail: "invalid token ID" };
    const user = this.sim.access.user(split.userid);
    const t = user?.tokens.get(split.token);
    if (!user || !t) return { kind: "fail", detail: `no such token '${split.token}' for user '${split.userid}'` };
    if (!safeEq(t.secret, secret)) return { kind: "fail", detail: "invalid token value!" };
    const bad = this.userUsable(user);
    if (bad) return { kind: "fail", detail: bad };
    if (t.expire && t.expire < this.sim.nowSeconds()) return { kind: "fail", detail: `token '${split.token}' access expired` };
    return { kind: "ok", auth: { userid: split.userid, tokenid: fullId, principal: fullId }, ticket: false };
  }

  /** The 401 reason phrase for a failure (9.1 hides the detail; 8.4 shows it). */
  failureReason(outcome: AuthOutcome): string {
    if (outcome.kind === "none") return "No ticket";
    if (outcome.kind === "fail") return this.sim.options.pveVersion === "8.4" ? outcome.detail : "Authentication failed!";
    return "";
  }

  private checkOtp(u: UserRec, code: string): boolean {
    if (!u.otp) return true;
    const c = code.replace(/^(totp|recovery|yubico):/, "").trim();
    if (u.otp.type === "static") return safeEq(u.otp.secret, c);
    const now = this.sim.now();
    return [-1, 0, 1].some((off) => safeEq(totp(u.otp!.secret, now, off), c));
  }

  /** POST /access/ticket. Failures: 401 `authentication failure`. */
  login(params: Record<string, any>): Record<string, unknown> {
    const fail = () => new PveError(401, "authentication failure");
    let username = String(params.username);
    if (params.realm && !username.includes("@")) username = `${username}@${params.realm}`;
    const password = String(params.password);
    const u = this.sim.access.user(username);
    if (!u || this.userUsable(u)) throw fail();

    if (params["tfa-challenge"] !== undefined) {
      // Second step of a TFA login: the partial ticket plus `password` = the OTP code.
      const uid = this.verifyTicket(String(params["tfa-challenge"]));
      if (uid !== `!tfa!${username}` || !this.checkOtp(u, password)) throw fail();
      return this.ticketResponse(username);
    }

    const renewing = password.startsWith("PVE:") && this.verifyTicket(password) === username;
    if (!renewing) {
      if (!this.sim.access.checkPassword(username, password)) throw fail();
      if (u.otp) {
        if (params.otp === undefined) {
          return { username, ticket: this.createTfaTicket(username), NeedTFA: 1 };
        }
        if (!this.checkOtp(u, String(params.otp))) throw fail();
      }
    }
    if (params.path !== undefined && params.privs !== undefined) {
      const auth = { userid: username, principal: username };
      for (const p of String(params.privs).split(/[,;\s]+/).filter(Boolean)) {
        if (!this.sim.access.has(auth, String(params.path), p)) throw fail();
      }
    }
    return this.ticketResponse(username);
  }

  private ticketResponse(username: string): Record<string, unknown> {
    return {
      username,
      ticket: this.createTicket(username),
      CSRFPreventionToken: this.csrfToken(username),
      clustername: this.sim.options.clusterName,
      cap: this.capabilities(username),
    };
  }

  /** The GUI capability map (`cap`) of the ticket answer, by area. */
  capabilities(userid: string): Record<string, Record<string, number>> {
    const areas: Record<string, { paths: string[]; prefixes: string[] }> = {
      vms: { paths: ["/vms"], prefixes: ["VM.", "Permissions.Modify"] },
      storage: { paths: ["/storage"], prefixes: ["Datastore.", "Permissions.Modify"] },
      access: { paths: ["/access/groups", "/access"], prefixes: ["User.Modify", "Group.Allocate", "Permissions.Modify", "Realm."] },
      nodes: { paths: ["/nodes"], prefixes: ["Sys.", "Permissions.Modify"] },
      dc: { paths: ["/"], prefixes: ["Sys.Audit", "SDN.", "Sys.Modify"] },
      sdn: { paths: ["/sdn"], prefixes: ["SDN.", "Permissions.Modify"] },
      mapping: { paths: ["/mapping"], prefixes: ["Mapping.", "Permissions.Modify"] },
    };
    const out: Record<string, Record<string, number>> = {};
    const auth = { userid, principal: userid };
    for (const [area, { paths, prefixes }] of Object.entries(areas)) {
      const privs: Record<string, number> = {};
      const candidates = new Set(paths);
      for (const p of this.sim.access.acls.keys()) if (paths.some((base) => p === base || p.startsWith(base + "/"))) candidates.add(p);
      for (const p of candidates) {
        for (const priv of this.sim.access.privileges_of(auth.principal, p).keys()) {
          if (prefixes.some((pre) => priv.startsWith(pre))) privs[priv] = 1;
        }
      }
      out[area] = privs;
    }
    return out;
  }
}
