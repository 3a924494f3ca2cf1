// User: a Proxmox VE user (`name@realm`), its account settings, groups and, for the `pve`
// realm, its password.
//
// Password: a Pulumi secret, stored encrypted in the state and never logged or put in an
// error. It is set at create (POST /access/users takes `password`). Changing it later goes
// through PUT /access/password, which PVE refuses to API tokens (403, whatever their
// privileges): it works when the provider logs in with a username and password
// (`proxmox:username`/`proxmox:password`), and with an API token the update fails before
// changing anything, saying so. Removing `password` from the program stops managing it (the
// user keeps the password it has). PVE never returns a password, so read() keeps the one in
// the state, and an imported user has none until the program sets one.
//
// Adopt (the import route: Pulumi cannot import dynamic-provider resources): `adopt: true`
// takes an existing user under management (adoption.ts): the declared settings (and a declared
// password, which needs a login, not a token) are applied; undeclared ones are left as they
// are, and a failed adoption puts back what it changed. Delete then RELEASES the user (it stays
// in PVE with its tokens and ACLs) unless `destroyOnDelete: true`.
//
// Id: the user id; read() also works from the id alone.

import * as pulumi from "@pulumi/pulumi";
import { isNotFound, PveApiError } from "../proxmox/errors";
import { InputChecker } from "./check";
import { client } from "./context";
import { diffResource } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { realmOf } from "./access-names";
import { compact, emptyToUndefined, gone, sortedSet, withSecretOutputs } from "./access/common";
import { alreadyExistsError, checkAdoptable, comparable, destroysOnDelete, logReleased, managementOf, manages, nothingToAdoptError } from "./adoption";
import { checkFields, diffRulesOf, outputSlots, pveParams } from "./fields";
import { userTable } from "./fields/user";
import { UserOutputs, type UserArgs, type UserInputs, type UserState } from "./generated/user";

export type { UserArgs, UserInputs, UserState } from "./generated/user";

const rules = diffRulesOf<UserInputs>(userTable);

/** Account fields PUT /access/users/{userid} sets as they are (the table's `pve`). */
const FIELDS = ["enable", "expire", "email", "firstname", "lastname", "comment"] as const;
/** What an adopted user manages only when declared. */
const SETTINGS = [...FIELDS, "groups", "password"];

async function readUser(userid: string): Promise<UserState | undefined> {
  try {
    const u = await client().access.getUser(userid);
    return compact<UserState>({
      userid,
      enable: u.enable ?? true,
      expire: u.expire ?? 0,
      email: emptyToUndefined(u.email),
      firstname: emptyToUndefined(u.firstname),
      lastname: emptyToUndefined(u.lastname),
      comment: emptyToUndefined(u.comment),
      groups: sortedSet(u.groups ?? []),
    });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

function passwordNeedsTicket(userid: string): Error {
  return new Error(
    `cannot change the password of '${userid}': PVE changes passwords only through PUT /access/password, which refuses API tokens (403) and the provider is authenticated with token '${client().identity.id}'. ` +
      `Run this update with a login instead (set proxmox:username and proxmox:password, as secrets), or change the password yourself (\`pveum passwd ${userid}\`). Nothing was changed.`,
  );
}

/** The PUT parameters for `inputs`: every account field, cleared when left out (an adopted
 *  user: the declared ones). */
function userParams(inputs: UserInputs, withGroups: boolean): Record<string, unknown> {
  const out = pveParams(userTable, inputs, FIELDS.filter((k) => manages(inputs, k)));
  if (withGroups) out.groups = inputs.groups ?? [];
  return out;
}

/** `adopt: true`: the existing user with the declared settings applied; on a failure the
 *  fields it changed are put back. */
async function adoptUser(inputs: UserInputs): Promise<UserState> {
  const api = client().access;
  const before = await readUser(inputs.userid);
  if (!before) throw nothingToAdoptError("User", `user '${inputs.userid}'`, "userid");
  if (inputs.password !== undefined && client().identity.kind === "token") throw passwordNeedsTicket(inputs.userid);
  const cmp = comparable({ ...before, adopt: true }, inputs, SETTINGS);
  const fields = diffResource(rules, cmp.olds, cmp.news).changed.filter((k) => (SETTINGS as string[]).includes(k) && k !== "password");
  try {
    if (fields.length) await api.updateUser(inputs.userid, userParams(inputs, fields.includes("groups")));
    if (inputs.password !== undefined) await client().put("/access/password", { userid: inputs.userid, password: inputs.password });
  } catch (err) {
    let undone = "it was left as it was";
    if (fields.length) {
      try {
        await api.updateUser(inputs.userid, userParams({ ...before, adopt: false }, fields.includes("groups")));
      } catch (undo) {
        undone = `putting back its settings failed (${(undo as Error).message})`;
      }
    }
    throw new Error(`${(err as Error).message}\n(user '${inputs.userid}' was not adopted; ${undone}.)`);
  }
  const live = await readUser(inputs.userid);
  if (!live) throw new Error(`user '${inputs.userid}' disappeared while it was being adopted`);
  return compact({ ...live, password: inputs.password, ...managementOf(inputs) });
}

export const userLifecycle: Lifecycle<UserInputs, UserState> = {
  async check(olds, news) {
    const c = new InputChecker(news as unknown as Record<string, unknown>);
    const { userid } = checkFields(c, userTable) as Partial<UserInputs>;
    const password = news.password;
    if (password !== undefined && password !== null) {
      if (typeof password !== "string") {
        c.fail("password", "password must be a string.");
      } else if (password.length < 8 || password.length > 64) {
        // Never echo the value.
        c.fail("password", `password must have 8 to 64 characters (got ${password.length}).`);
      } else if (userid !== undefined && realmOf(userid) !== "pve") {
        c.fail(
          "password",
          `a password can only be set for users of the 'pve' realm; '${userid}' is in realm '${realmOf(userid)}', which authenticates elsewhere (PAM, LDAP, AD, OpenID). Remove password, or use a '@pve' user.`,
        );
      }
    }
    await checkAdoptable(c, olds as Record<string, unknown>, news as UserInputs & Record<string, unknown>, { kind: "User", idProp: "userid", what: (id) => `user '${id}'`, read: readUser });
    return c.result<UserInputs>(
      compact({
        ...news,
        // an adopted user keeps what the program leaves out
        enable: news.enable ?? (news.adopt ? undefined : true),
        expire: news.expire ?? (news.adopt ? undefined : 0),
        email: emptyToUndefined(news.email),
        firstname: emptyToUndefined(news.firstname),
        lastname: emptyToUndefined(news.lastname),
        comment: emptyToUndefined(news.comment),
        groups: sortedSet(news.groups),
      }),
    );
  },

  async diff(_id, olds, news) {
    const cmp = comparable(olds, news, SETTINGS);
    const d = diffResource(rules, cmp.olds, cmp.news, { deleteBeforeReplace: () => true });
    // update() refuses a password change under token auth before changing anything: so does the
    // preview, with the same words (with a login, `up` can do it)
    if (d.replaces.length === 0 && d.changed.includes("password") && news.password !== undefined && client().identity.kind === "token") throw passwordNeedsTicket(news.userid);
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace };
  },

  async create(inputs) {
    if (inputs.adopt) return { id: inputs.userid, outs: await adoptUser(inputs) };
    try {
      await client().access.createUser(inputs.userid, {
        enable: inputs.enable,
        expire: inputs.expire,
        email: inputs.email,
        firstname: inputs.firstname,
        lastname: inputs.lastname,
        comment: inputs.comment,
        groups: inputs.groups?.length ? inputs.groups : undefined,
        password: inputs.password,
      });
    } catch (err) {
      if (err instanceof PveApiError && err.kind === "alreadyExists") throw alreadyExistsError("User", `user '${inputs.userid}'`, "userid", err);
      throw err;
    }
    const live = await readUser(inputs.userid);
    if (!live) throw new Error(`user '${inputs.userid}' was created but cannot be read back`);
    return { id: inputs.userid, outs: compact({ ...live, password: inputs.password, ...managementOf(inputs) }) };
  },

  async read(id, props) {
    const live = await readUser(id);
    if (!live) return gone<UserState>();
    const state = compact<UserState>({ ...live, password: props?.password, ...managementOf(props) });
    return { id, props: state, inputs: state };
  },

  async update(_id, olds, news) {
    const api = client().access;
    const passwordChanged = news.password !== undefined && news.password !== olds.password;
    if (passwordChanged && client().identity.kind === "token") throw passwordNeedsTicket(news.userid);
    const cmp = comparable(olds, news, SETTINGS);
    const fields = diffResource(rules, cmp.olds, cmp.news).changed.filter((k) => (SETTINGS as string[]).includes(k) && k !== "password");
    if (fields.length) await api.updateUser(news.userid, userParams(news, fields.includes("groups")));
    if (passwordChanged) {
      await client().put("/access/password", { userid: news.userid, password: news.password });
    }
    const live = await readUser(news.userid);
    if (!live) throw new Error(`user '${news.userid}' disappeared during the update`);
    return { outs: compact({ ...live, password: news.password, ...managementOf(news) }) };
  },

  async delete(id, props) {
    if (!destroysOnDelete(props)) return logReleased(`user '${id}'`, props.adopt);
    try {
      await client().access.deleteUser(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};

/** A PVE user (`name@realm`): its account settings, groups and, for the `pve` realm, its password
 *  (a Pulumi secret; changing it later needs a username/password login, not an API token).
 *  `adopt: true` takes an existing user under management. */
export class User extends UserOutputs {
  constructor(name: string, args: UserArgs, opts?: pulumi.CustomResourceOptions) {
    super(stubProvider("provider/resources/user.js", "userLifecycle"), name, { ...args, ...outputSlots(userTable) }, withSecretOutputs(opts, ["password"]), "proxmox", "User");
  }
}
