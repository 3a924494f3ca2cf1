// The read-only principal that CI previews and drift checks run as, declared by the stack itself
// (examples/ci/README.md): user `ci-readonly@pve` with a privilege-separated API token
// `ci-readonly@pve!preview`, both bound to PVEAuditor on `/`. A privilege-separated token holds
// the intersection of its own ACLs and its user's, so both bindings are needed; neither grants
// anything but reading. Call it from your stack's program and export the token:
//
//   const ci = ciReadOnlyAccess();
//   return { ciApiToken: ci.token.apiToken };   // a secret: `pulumi stack output --show-secrets ciApiToken`

import { ApiToken, User, UserRoleBinding } from "pulumi-pve";

export interface CiReadOnlyAccessOptions {
  /** Default `ci-readonly@pve` (the `pve` realm: no Linux account on the nodes). */
  userid?: string;
  /** Default `preview`. */
  tokenid?: string;
}

export function ciReadOnlyAccess(opts: CiReadOnlyAccessOptions = {}): { user: User; token: ApiToken } {
  const user = new User("ci-readonly", { userid: opts.userid ?? "ci-readonly@pve", comment: "CI: pulumi preview and drift checks (read-only)" });
  const token = new ApiToken("ci-preview", { userid: user.userid, tokenid: opts.tokenid ?? "preview", privsep: true, comment: "read-only" });
  new UserRoleBinding("ci-readonly-auditor", { path: "/", user: user.userid, roles: ["PVEAuditor"] });
  new UserRoleBinding("ci-preview-auditor", { path: "/", token: token.fullTokenId, roles: ["PVEAuditor"] });
  return { user, token };
}
