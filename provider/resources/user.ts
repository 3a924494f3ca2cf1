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
// Id: the user id; read() also works from the id alone (an import, which Pulumi 3.248 cannot
// do for dynamic-provider resources: see the README).

import * as pulumi from "@pulumi/pulumi";
import { isNotFound, PveApiError } from "../proxmox/errors";
import { InputChecker } from "./check";
import { client } from "./context";
import { diffResource, normalize, type DiffRules } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { checkGroupid, checkUserid, realmOf } from "./access-names";
import { compact, emptyToUndefined, gone, sortedSet, withSecretOutputs } from "./access/common";

export interface UserArgs {
  /** `name@realm`, e.g. `fleet@pve`. Changing it replaces the user (and drops its ACLs and tokens). */
  userid: pulumi.Input<string>;
  /** Default true. */
  enable?: pulumi.Input<boolean>;
  /** Account expiry, seconds since the epoch; 0 or absent: never. */
  expire?: pulumi.Input<number>;
  email?: pulumi.Input<string>;
  firstname?: pulumi.Input<string>;
  lastname?: pulumi.Input<string>;
  comment?: pulumi.Input<string>;
  /** Groups the user is in (they must exist; PVE drops unknown groups on update). */
  groups?: pulumi.Input<pulumi.Input<string>[]>;
  /** Only for the `pve` realm (other realms authenticate elsewhere). 8 to 64 characters. Secret. */
  password?: pulumi.Input<string>;
}

export interface UserInputs {
  userid: string;
  enable?: boolean;
  expire?: number;
  email?: string;
  firstname?: string;
  lastname?: string;
  comment?: string;
  groups?: string[];
  password?: string;
}

export type UserState = UserInputs;

const text = { normalize: (v: string) => emptyToUndefined(v) };
const rules: DiffRules<UserInputs> = {
  userid: { replaces: true },
  enable: { normalize: (v: boolean) => v !== false },
  expire: { normalize: (v: number) => (v === 0 ? undefined : v) },
  email: text,
  firstname: text,
  lastname: text,
  comment: text,
  groups: { normalize: (v: string[]) => (v.length ? normalize.stringSet(v) : undefined) },
  password: {},
};

const EMAIL = /^[^\s@]+@[^\s@]+$/;

async function readUser(userid: string): Promise<UserInputs | undefined> {
  try {
    const u = await client().access.getUser(userid);
    return compact<UserInputs>({
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

export const userLifecycle: Lifecycle<UserInputs, UserState> = {
  async check(_olds, news) {
    const c = new InputChecker(news as unknown as Record<string, unknown>);
    const userid = c.string("userid", { required: true, rule: checkUserid });
    c.boolean("enable");
    c.integer("expire", { min: 0 });
    c.string("email", { pattern: EMAIL, describe: "an e-mail address like 'ops@example.com'", maxLength: 254 });
    c.string("firstname", { maxLength: 1024 });
    c.string("lastname", { maxLength: 1024 });
    c.string("comment", { maxLength: 2048 });
    c.list<string>("groups", { item: (g) => (typeof g === "string" ? checkGroupid(g) : "a group id must be a string.") });
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
    return c.result<UserInputs>(
      compact({
        ...news,
        enable: news.enable ?? true,
        expire: news.expire ?? 0,
        email: emptyToUndefined(news.email),
        firstname: emptyToUndefined(news.firstname),
        lastname: emptyToUndefined(news.lastname),
        comment: emptyToUndefined(news.comment),
        groups: sortedSet(news.groups),
      }),
    );
  },

  async diff(_id, olds, news) {
    const d = diffResource(rules, olds, news, { deleteBeforeReplace: () => true });
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace };
  },

  async create(inputs) {
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
      if (err instanceof PveApiError && err.kind === "alreadyExists") {
        throw new Error(`user '${inputs.userid}' already exists: this stack cannot adopt it (Pulumi cannot import dynamic-provider resources): choose another userid, or remove it first (pveum user delete ${inputs.userid}). (${err.message})`);
      }
      throw err;
    }
    const live = await readUser(inputs.userid);
    if (!live) throw new Error(`user '${inputs.userid}' was created but cannot be read back`);
    return { id: inputs.userid, outs: compact({ ...live, password: inputs.password }) };
  },

  async read(id, props) {
    const live = await readUser(id);
    if (!live) return gone<UserState>();
    const state = compact<UserState>({ ...live, password: props?.password });
    return { id, props: state, inputs: state };
  },

  async update(_id, olds, news) {
    const api = client().access;
    const passwordChanged = news.password !== undefined && news.password !== olds.password;
    if (passwordChanged && client().identity.kind === "token") throw passwordNeedsTicket(news.userid);
    const d = diffResource(rules, olds, news);
    const fields = d.changed.filter((k) => k !== "password" && k !== "userid");
    if (fields.length) {
      await api.updateUser(news.userid, {
        enable: news.enable ?? true,
        expire: news.expire ?? 0,
        email: news.email ?? "",
        firstname: news.firstname ?? "",
        lastname: news.lastname ?? "",
        comment: news.comment ?? "",
        groups: fields.includes("groups") ? (news.groups ?? []) : undefined,
      });
    }
    if (passwordChanged) {
      await client().put("/access/password", { userid: news.userid, password: news.password });
    }
    const live = await readUser(news.userid);
    if (!live) throw new Error(`user '${news.userid}' disappeared during the update`);
    return { outs: compact({ ...live, password: news.password }) };
  },

  async delete(id) {
    try {
      await client().access.deleteUser(id);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};

export class User extends pulumi.dynamic.Resource {
  declare readonly userid: pulumi.Output<string>;
  declare readonly enable: pulumi.Output<boolean>;
  declare readonly expire: pulumi.Output<number>;
  declare readonly email: pulumi.Output<string | undefined>;
  declare readonly firstname: pulumi.Output<string | undefined>;
  declare readonly lastname: pulumi.Output<string | undefined>;
  declare readonly comment: pulumi.Output<string | undefined>;
  declare readonly groups: pulumi.Output<string[] | undefined>;
  /** Secret. */
  declare readonly password: pulumi.Output<string | undefined>;

  constructor(name: string, args: UserArgs, opts?: pulumi.CustomResourceOptions) {
    super(stubProvider("provider/resources/user.js", "userLifecycle"), name, { ...args }, withSecretOutputs(opts, ["password"]), "proxmox", "User");
  }
}
