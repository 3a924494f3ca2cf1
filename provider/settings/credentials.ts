/**
 * Which credentials the provider logs in with: an API token (`apiToken`, or `apiTokenId` with
 * `apiTokenSecret`) unless username and password come from a higher-precedence source.
 */
import { TOKEN_ID_PATTERN } from "../proxmox/auth";
import type { PveCredentials } from "../proxmox/client";
import { rankOf, type SettingLookup } from "./sources";
import { splitApiToken } from "./values";

/** The credentials, or undefined with the reasons in `s.problems`. */
export function resolveCredentials(s: SettingLookup): PveCredentials | undefined {
  const tokenHit = s.find("apiToken");
  const tokenIdHit = s.cfg.apiTokenId !== undefined ? { value: s.cfg.apiTokenId, source: "config" as const } : undefined;
  const userHit = s.find("username");
  const passwordHit = s.find("password");
  const tokenRank = Math.min(rankOf(tokenHit?.source), tokenIdHit ? 0 : 9);
  const userRank = rankOf(userHit?.source);
  const useToken = (tokenHit || tokenIdHit) && !(userHit && passwordHit && userRank < tokenRank);

  if (useToken) {
    if (tokenIdHit) {
      s.sources.apiTokenId = "config";
      const secret = s.cfg.apiTokenSecret;
      if (!TOKEN_ID_PATTERN.test(tokenIdHit.value)) {
        s.problems.push(`apiTokenId '${tokenIdHit.value}' is not a token id: expected USER@REALM!TOKENID, e.g. ci@pve!pulumi`);
      } else if (!secret) {
        s.problems.push(`missing apiTokenSecret for token '${tokenIdHit.value}' (set \`pulumi config set --secret proxmox:apiTokenSecret <uuid>\`)`);
      } else {
        s.sources.apiTokenSecret = "config";
        return { kind: "token", tokenId: tokenIdHit.value, secret };
      }
    } else if (tokenHit) {
      s.sources.apiToken = tokenHit.source;
      const split = splitApiToken(tokenHit.value);
      if (split) return { kind: "token", ...split };
      const where = tokenHit.source === "config" ? "proxmox:apiToken" : "PROXMOX_VE_API_TOKEN";
      s.problems.push(`${where} is not an API token: expected USER@REALM!TOKENID=SECRET, e.g. ci@pve!pulumi=xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (the value is not shown because it may be secret)`);
    }
    return undefined;
  }
  if (userHit || passwordHit) return passwordCredentials(s);
  s.problems.push(
    "missing credentials (set an API token with `pulumi config set --secret proxmox:apiToken 'user@realm!tokenid=SECRET'` or PROXMOX_VE_API_TOKEN; " +
      "or a username and password with proxmox:username and `pulumi config set --secret proxmox:password ...`, or PROXMOX_VE_USERNAME and PROXMOX_VE_PASSWORD; " +
      "or a credentials file with proxmox:credentialsFile or PROXMOX_VE_CREDENTIALS_FILE)",
  );
  return undefined;
}

function passwordCredentials(s: SettingLookup): PveCredentials | undefined {
  const username = s.get("username");
  const password = s.get("password");
  const realm = s.get("realm") ?? s.cfg.realm;
  const otp = s.get("otp");
  if (!username) {
    s.problems.push("missing username for the password (set `pulumi config set proxmox:username root@pam` or PROXMOX_VE_USERNAME)");
  } else if (!username.includes("@") && !realm) {
    s.problems.push(`username '${username}' has no realm: write it as user@realm (e.g. ${username}@pam or ${username}@pve)`);
  }
  if (!password) {
    s.problems.push(`missing password${username ? ` for user '${username}'` : ""} (set \`pulumi config set --secret proxmox:password ...\` or PROXMOX_VE_PASSWORD, or use an API token)`);
  }
  if (!username || !password) return undefined;
  return { kind: "password", username, password, ...(otp ? { otp } : {}), ...(realm ? { realm } : {}) };
}
