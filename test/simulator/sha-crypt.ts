// SHA-256 crypt (`$5$`), the glibc algorithm PVE's `encrypt_pw` uses through Perl's `crypt`
// (COMMON Tools.pm `encrypt_pw`: prefix `5`, an 8-character salt from sha1_base64 with `+` → `X`).
// An independent implementation of Ulrich Drepper's specification "Unix crypt using SHA-256 and
// SHA-512" (glibc crypt/sha256-crypt.c), checked against its test vectors.
import { createHash, randomBytes } from "crypto";

const B64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ROUNDS_DEFAULT = 5000;

const sha256 = (...parts: Buffer[]) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};

/** `n` bytes of `seq` repeated. */
function repeatTo(seq: Buffer, n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = seq[i % seq.length];
  return out;
}

/** `crypt(key, setting)` for a `$5$[rounds=N$]salt[$...]` setting. */
export function sha256Crypt(key: string | Buffer, setting: string): string {
  const m = /^\$5\$(?:rounds=(\d+)\$)?([^$]*)/.exec(setting);
  if (!m) throw new Error(`not a SHA-256 crypt setting: ${setting}`);
  const rounds = m[1] === undefined ? ROUNDS_DEFAULT : Math.min(999_999_999, Math.max(1000, Number(m[1])));
  const saltStr = m[2].slice(0, 16);
  const P = Buffer.isBuffer(key) ? key : Buffer.from(key, "utf8");
  const S = Buffer.from(saltStr, "utf8");

  const B = sha256(P, S, P);
  const aParts: Buffer[] = [P, S, repeatTo(B, P.length)];
  for (let n = P.length; n > 0; n >>= 1) aParts.push(n & 1 ? B : P);
  const A = sha256(...aParts);

  const DP = sha256(...Array.from({ length: P.length }, () => P));
  const Pseq = repeatTo(DP, P.length);
  const DS = sha256(...Array.from({ length: 16 + A[0] }, () => S));
  const Sseq = DS.subarray(0, S.length);

  let C = A;
  for (let i = 0; i < rounds; i++) {
    const parts: Buffer[] = [i & 1 ? Pseq : C];
    if (i % 3) parts.push(Sseq);
    if (i % 7) parts.push(Pseq);
    parts.push(i & 1 ? C : Pseq);
    C = sha256(...parts);
  }

  let out = "";
  const b64 = (b2: number, b1: number, b0: number, n: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let i = 0; i < n; i++) {
      out += B64[w & 0x3f];
      w >>= 6;
    }
  };
  const order = [[0, 10, 20], [21, 1, 11], [12, 22, 2], [3, 13, 23], [24, 4, 14], [15, 25, 5], [6, 16, 26], [27, 7, 17], [18, 28, 8], [9, 19, 29]];
  for (const [a, b, c] of order) b64(C[a], C[b], C[c], 4);
  b64(0, C[31], C[30], 3);
  return `$5$${m[1] !== undefined ? `rounds=${rounds}$` : ""}${saltStr}$${out}`;
}

/** COMMON Tools.pm `encrypt_pw($pw)`: `$5$` with a fresh 8-character salt (no `+`). */
export function encryptPw(pw: string, salt?: string): string {
  const s = salt ?? createHash("sha1").update(randomBytes(16)).digest("base64").slice(0, 8).replace(/\+/g, "X");
  return sha256Crypt(pw, `$5$${s}$`);
}

/** QEMU update_vm_api: a value already hashed by crypt is stored as it is. */
export const isCryptHash = (pw: string) => /^\$(?:[156]|2[ay])(\$.+){2}/.test(pw);
