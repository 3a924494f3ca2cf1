/**
 * Ed25519 key pairs for tests and the demo, in OpenSSH format, that ssh2 and OpenSSH can read.
 *
 * Use this instead of ssh2's `utils.generateKeyPairSync("ed25519")` (ESLint forbids the latter
 * outside this file): ssh2 1.17.0 encodes 1 key pair in 256 wrongly. Its keygen.js reads the
 * public key from the SubjectPublicKeyInfo BIT STRING (one "unused bits" byte 0x00, then the 32
 * key bytes) and strips *every* leading zero byte, so a public key whose first byte is 0x00 is
 * written with 31 bytes, in the public key line and inside the private key. ssh2's own parser
 * then refuses the private key ("Malformed OpenSSH private key") and the public one, and
 * OpenSSH refuses both too. (Upstream: mscdex/ssh2 issues #1390 and #1513, open.)
 *
 * The keys themselves are fine: a correctly encoded key whose public key starts with 0x00 works
 * everywhere (test/unit/ssh/leading-zero-key.test.ts proves it for the provider). Only ssh2's
 * encoder is wrong, and only for exactly those keys, so this generator discards the key pairs it
 * encodes wrongly and draws another: the outcome does not depend on chance, every pair it
 * returns is well formed (checked below, not assumed).
 */
import { utils } from "ssh2";

export interface KeyPairOptions {
  comment?: string;
  /** Encrypts the private key (then `cipher` is required, e.g. "aes256-ctr"). */
  passphrase?: string;
  cipher?: string;
  /** bcrypt KDF rounds; low values keep tests fast. */
  rounds?: number;
}

export interface SshKeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----...` */
  private: string;
  /** `ssh-ed25519 AAAA... comment` */
  public: string;
}

/** The length of the key inside an `ssh-ed25519 <base64>` public key line (32 when well formed). */
export function ed25519PublicKeyLength(publicLine: string): number {
  const blob = Buffer.from(publicLine.trim().split(/\s+/)[1] ?? "", "base64");
  if (blob.length < 4) return -1;
  const typeLen = blob.readUInt32BE(0);
  if (blob.subarray(4, 4 + typeLen).toString() !== "ssh-ed25519" || blob.length < 8 + typeLen) return -1;
  const keyLen = blob.readUInt32BE(4 + typeLen);
  return blob.length === 8 + typeLen + keyLen ? keyLen : -1;
}

/** A new Ed25519 key pair in OpenSSH format; never one of the pairs ssh2 encodes wrongly. */
export function generateEd25519KeyPair(opts: KeyPairOptions = {}): SshKeyPair {
  // Each draw is wrong with probability 1/256; 16 wrong draws in a row (2^-128) do not happen.
  for (let i = 0; i < 16; i++) {
    const pair = utils.generateKeyPairSync("ed25519", opts);
    if (ed25519PublicKeyLength(pair.public) !== 32) continue;
    const parsed = utils.parseKey(pair.private, opts.passphrase);
    if (parsed instanceof Error) throw new Error(`ssh2 generated an ed25519 key it cannot read: ${parsed.message}`);
    return { private: pair.private, public: pair.public };
  }
  throw new Error("ssh2 generated 16 malformed ed25519 key pairs in a row");
}
