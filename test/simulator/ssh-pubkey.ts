// COMMON Tools.pm `validate_ssh_public_keys`: every non-blank line of the (URL-decoded) keys is
// written to a file and run through `ssh-keygen -l -f`; any failure is
// `SSH public key validation error`. ssh-keygen reads an OpenSSH public key line (optionally with
// authorized_keys options in front), decodes the base64 blob and parses it (OpenSSH sshkey.c
// `sshkey_from_blob`): the blob's type string must be the line's, and the key's fields must be
// complete (an Ed25519 key 32 bytes, an RSA modulus at least 1024 bits).

const KEY_TYPES = [
  "ssh-rsa", "ssh-dss", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
  "sk-ecdsa-sha2-nistp256@openssh.com", "sk-ssh-ed25519@openssh.com", "ssh-xmss@openssh.com",
];
const CERT_TYPES = KEY_TYPES.map((t) => t.replace(/(@openssh\.com)?$/, "-cert-v01@openssh.com"));

class Reader {
  private off = 0;
  constructor(private readonly b: Buffer) {}
  string(): Buffer {
    if (this.off + 4 > this.b.length) throw new Error("truncated");
    const n = this.b.readUInt32BE(this.off);
    if (this.off + 4 + n > this.b.length) throw new Error("truncated");
    const s = this.b.subarray(this.off + 4, this.off + 4 + n);
    this.off += 4 + n;
    return s;
  }
  done(): boolean {
    return this.off === this.b.length;
  }
}

/** Whether `ssh-keygen -l` would accept one public key line. */
export function sshPublicKeyLineValid(line: string): boolean {
  const words = line.trim().split(/\s+/);
  // authorized_keys options may precede the key type
  const i = words.findIndex((w) => KEY_TYPES.includes(w) || CERT_TYPES.includes(w));
  if (i < 0 || words[i + 1] === undefined) return false;
  const type = words[i];
  const b64 = words[i + 1];
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 === 1) return false;
  const blob = Buffer.from(b64, "base64");
  try {
    const r = new Reader(blob);
    if (r.string().toString("latin1") !== type) return false;
    if (CERT_TYPES.includes(type)) return true; // the certificate body is not checked further here
    const field = () => r.string();
    switch (type) {
      case "ssh-rsa": {
        field(); // e
        const n = field();
        let bits = n.length * 8;
        for (let k = 0; k < n.length && n[k] === 0; k++) bits -= 8;
        const first = n.find((x) => x !== 0);
        if (first !== undefined) bits -= Math.clz32(first) - 24;
        if (bits < 1024) return false; // SSH_RSA_MINIMUM_MODULUS_SIZE
        break;
      }
      case "ssh-dss":
        field(); field(); field(); field();
        break;
      case "ssh-ed25519":
        if (field().length !== 32) return false;
        break;
      case "sk-ssh-ed25519@openssh.com":
        if (field().length !== 32) return false;
        field(); // application
        break;
      case "ssh-xmss@openssh.com":
        field(); field();
        break;
      default: {
        // ecdsa: curve name, then the point
        const curve = field().toString("latin1");
        if (!type.includes(curve)) return false;
        if (field().length === 0) return false;
        if (type.startsWith("sk-")) field();
      }
    }
    return r.done();
  } catch {
    return false;
  }
}

/** COMMON Tools.pm `validate_ssh_public_keys` on the already URL-decoded keys. */
export function validateSshPublicKeys(raw: string): void {
  for (const line of raw.split("\n")) {
    if (/^\s*$/.test(line)) continue;
    if (!sshPublicKeyLineValid(line)) throw new Error("SSH public key validation error");
  }
}
