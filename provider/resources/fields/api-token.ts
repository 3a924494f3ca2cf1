// The properties of an ApiToken, declared once (../fields.ts explains what derives from this table).

import { checkTokenName, checkUserid } from "../access-names";
import { emptyToUndefined } from "../access/common";
import { table } from "../fields";

export const apiTokenTable = table({
  resource: "ApiToken",
  module: "api-token",
  summary:
    "An API token of a PVE user (`user@realm!tokenid`). Its secret value is known only from the create call and is output (as a Pulumi secret) in `value` and `apiToken`; an imported token has none. With privilege separation (the default), bind roles to the token too (UserRoleBinding `token`).",
  argsDoc: "The inputs of an {@link ApiToken}. Only `userid` and `tokenid` replace the token; the rest is changed in place (the secret value stays the same).",
  id: "the full token id (`fleet@pve!ci`)",
  fields: {
    userid: { kind: "string", required: true, change: "replaces", rule: checkUserid, doc: "The token's user, `name@realm`." },
    tokenid: { kind: "string", required: true, change: "replaces", rule: checkTokenName, doc: "The token id (the part after `!`)." },
    privsep: {
      kind: "boolean",
      present: "state",
      defaultDoc: "true",
      pve: "privsep",
      pveClear: true,
      normalize: (v: boolean) => v !== false,
      doc: "Privilege separation: the token has only what ACLs grant the token itself (within its user's privileges); false: exactly its user's.",
    },
    expire: {
      kind: "integer",
      min: 0,
      present: "state",
      defaultDoc: "0",
      unit: "seconds since the epoch",
      pve: "expire",
      pveClear: 0,
      normalize: (v: number) => (v === 0 ? undefined : v),
      normalizeDoc: "with 0 as none",
      doc: "Expiry; 0: none of its own (it still stops working when its user expires or is disabled).",
    },
    comment: { kind: "string", pve: "comment", pveClear: "", normalize: (v: string) => emptyToUndefined(v), normalizeDoc: "with an empty comment as none", doc: "Free-text comment." },
    fullTokenId: { kind: "string", role: "output", present: true, doc: "`user@realm!tokenid`: the principal to bind roles to (UserRoleBinding `token`)." },
    value: { kind: "string", role: "output", secret: true, doc: "The token value (a UUID); absent for an imported token." },
    apiToken: { kind: "string", role: "output", secret: true, doc: "`user@realm!tokenid=value`, the form `proxmox:apiToken` takes (for another stack); absent for an imported token." },
  },
});
