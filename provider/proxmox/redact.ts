/**
 * Removes secrets from text that may reach an error message or a log line.
 * Known secret values are replaced wherever they occur; credential-shaped strings
 * (token headers, tickets, CSRF tokens) are replaced even when nobody registered them.
 */
export const REDACTED = "[redacted]";

/** Request parameters whose values are secrets (PVE API parameter names). */
export const SECRET_PARAM_NAMES: ReadonlySet<string> = new Set([
  "password",
  "new-password",
  "confirmation-password",
  "cipassword",
  "otp",
  "tfa-challenge",
  "value",
  "ticket",
  "CSRFPreventionToken",
]);

const CREDENTIAL_PATTERNS: RegExp[] = [
  /PVEAPIToken[= ]\S+/g,
  /PVEAuthCookie=[^;\s]+/g,
  /PVE:[^:\s]+:[0-9A-Fa-f]{8}::[A-Za-z0-9+/=]+/g,
  /PVE:!tfa![^\s"]*/g,
  /\b[0-9A-F]{8}:[A-Za-z0-9+/]{40,}={0,2}/g,
  /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi,
];

/** Secrets shorter than this are not substituted on their own (they would mangle ordinary words). */
const MIN_SECRET_LENGTH = 3;

export function redact(text: string, secrets: Iterable<string | undefined> = []): string {
  let out = text;
  const sorted = [...secrets]
    .filter((s): s is string => typeof s === "string" && s.length >= MIN_SECRET_LENGTH)
    .sort((a, b) => b.length - a.length);
  for (const secret of sorted) {
    out = out.split(secret).join(REDACTED);
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join(REDACTED);
  }
  for (const pattern of CREDENTIAL_PATTERNS) out = out.replace(pattern, REDACTED);
  return out;
}

/** The values of secret parameters in a request, so an echo of them can be removed. */
export function secretParamValues(params: Record<string, unknown> | undefined): string[] {
  if (!params) return [];
  const values: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (SECRET_PARAM_NAMES.has(key) && value !== undefined && value !== null) values.push(String(value));
  }
  return values;
}
