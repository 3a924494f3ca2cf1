/** How single setting values are read: booleans, API tokens, the endpoint URL. */
import { TOKEN_ID_PATTERN } from "../proxmox/auth";
import { toBool } from "../proxmox/coerce";

/** A boolean setting: PVE's spellings (1/0, true/false, yes/no, on/off); empty is false. */
export function parseBool(value: string): boolean | undefined {
  return value.trim() === "" ? false : toBool(value.trim());
}

/** `user@realm!tokenid=secret` (PVE also accepts a space for the first `=`). */
export function splitApiToken(token: string): { tokenId: string; secret: string } | undefined {
  const m = /^([^=\s]+)[=\s](.+)$/.exec(token.trim());
  if (!m || !TOKEN_ID_PATTERN.test(m[1]) || !m[2].trim()) return undefined;
  return { tokenId: m[1], secret: m[2].trim() };
}

/** `https://host:port` from what the user gave, or undefined with the reasons in `problems`. */
export function normaliseEndpoint(raw: string, problems: string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    problems.push(`endpoint is not a URL: expected https://<host>:8006`);
    return undefined;
  }
  const before = problems.length;
  if (url.protocol !== "https:") problems.push(`endpoint must use https (PVE serves its API over TLS only), e.g. https://${url.hostname || "pve.example.com"}:8006`);
  if (!url.hostname) problems.push("endpoint has no host name");
  if (url.username || url.password) problems.push("endpoint must not contain credentials; set apiToken, or username and password, instead");
  if (url.search || url.hash) problems.push("endpoint must not have a query string or fragment");
  if (!/^\/?(api2\/json\/?)?$/.test(url.pathname)) problems.push(`endpoint must be the server root (https://<host>:8006), not the path '${url.pathname}'`);
  if (problems.length > before) return undefined;
  return `https://${url.host}`;
}
