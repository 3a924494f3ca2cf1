/**
 * `sshkeys` must be percent-encoded so only `[-%a-zA-Z0-9_.!~*'()]` remain
 * (spaces, +, /, =, @ and newlines encoded); PVE keeps the encoded form in the config.
 */
export function encodeSshKeys(keys: string | ReadonlyArray<string>): string {
  const text = typeof keys === "string" ? keys : keys.join("\n");
  return encodeURIComponent(text);
}

export function decodeSshKeys(encoded: string): string[] {
  return decodeURIComponent(encoded)
    .split(/\r?\n/)
    .map((k) => k.trim())
    .filter(Boolean);
}
