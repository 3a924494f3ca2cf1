// The properties of a User, declared once (../fields.ts explains what derives from this table).
// `password` is checked by the resource's check() (its length, without ever echoing it, and its
// realm, which depends on `userid`).

import { adoptionFields } from "../adoption";
import { checkGroupid, checkUserid } from "../access-names";
import { emptyToUndefined } from "../access/common";
import { normalize } from "../diff";
import { table, type StringField } from "../fields";

/** A text PUT /access/users/{userid} sets as it is, cleared with "" (it then reads back as absent). */
function text(pve: string, maxLength: number, doc: string): StringField {
  return { kind: "string", maxLength, pve, pveClear: "", normalize: (v: string) => emptyToUndefined(v), normalizeDoc: "with an empty value as none", doc };
}

export const userTable = table({
  resource: "User",
  module: "user",
  summary:
    "A PVE user (`name@realm`): its account settings, groups and, for the `pve` realm, its password (a Pulumi secret; changing it later needs a username/password login, not an API token). `adopt: true` takes an existing user under management.",
  argsDoc: "The inputs of a {@link User}. Only `userid` replaces the user; everything else is applied in place.",
  id: "the user id (`fleet@pve`)",
  fields: {
    userid: { kind: "string", required: true, change: "replaces", rule: checkUserid, doc: "The user id, `name@realm` (e.g. `fleet@pve`). A new id drops the old user's ACLs and tokens." },
    enable: { kind: "boolean", present: "state", pve: "enable", pveClear: true, normalize: (v: boolean) => v !== false, defaultDoc: "true (an adopted user keeps its own)", doc: "Whether the account is enabled." },
    expire: {
      kind: "integer",
      min: 0,
      present: "state",
      unit: "seconds since the epoch",
      pve: "expire",
      pveClear: 0,
      normalize: (v: number) => (v === 0 ? undefined : v),
      normalizeDoc: "with 0 as none",
      defaultDoc: "0 (an adopted user keeps its own)",
      doc: "Account expiry; 0: never.",
    },
    email: { ...text("email", 254, "The user's e-mail address."), pattern: /^[^\s@]+@[^\s@]+$/, describe: "an e-mail address like 'ops@example.com'" },
    firstname: text("firstname", 1024, "The user's first name."),
    lastname: text("lastname", 1024, "The user's last name."),
    comment: text("comment", 2048, "Free-text comment."),
    groups: {
      kind: "list",
      of: "string",
      item: (g: unknown) => (typeof g === "string" ? checkGroupid(g) : "a group id must be a string."),
      normalize: (v: string[]) => (v.length ? normalize.stringSet(v) : undefined),
      normalizeDoc: "as a set (order and repeats do not matter; an empty list as none)",
      doc: "Groups the user is in (they must exist; PVE drops unknown groups on update).",
    },
    password: {
      kind: "custom",
      type: "string",
      secret: true,
      doc: "The password, 8 to 64 characters; only for the `pve` realm (other realms authenticate elsewhere). Changing it later needs a username/password login, not an API token; left out, it is no longer managed (the user keeps it).",
    },
    ...adoptionFields("the existing user `userid`"),
  },
});
