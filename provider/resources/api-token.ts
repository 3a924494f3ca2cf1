// ApiToken: an API token of a user (`user@realm!tokenid`).
//
// The secret value exists once, in PVE's answer to the create call: it becomes the output
// `value` and the ready-made `apiToken` string `user@realm!tokenid=value` (usable as another
// stack's `proxmox:apiToken`), both Pulumi secrets (additionalSecretOutputs), never logged.
// PVE never shows the value again, so read() keeps the one in the state; an imported token has
// no value (`value`/`apiToken` are absent): re-create it (replace) to get one.
//
// Privilege separation is on by default: the token then has only what ACLs grant to the token
// itself (intersected with its user's privileges), so bind roles to the token as well as to
// the user (UserRoleBinding `token:`), or set privsep: false to give it exactly the user's.
//
// Id: the full token id `user@realm!tokenid`; read() also works from the id alone (an import,
// which Pulumi 3.248 cannot do for dynamic-provider resources: see the README).

import * as pulumi from "@pulumi/pulumi";
import type { ApiTokenInfo } from "../proxmox/access";
import { isNotFound, PveApiError } from "../proxmox/errors";
import { InputChecker } from "./check";
import { client } from "./context";
import { diffResource, type DiffRules } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { checkFullTokenId, checkTokenName, checkUserid, splitFullTokenId } from "./access-names";
import { compact, emptyToUndefined, gone, readResult, withSecretOutputs } from "./access/common";

/** The inputs of an {@link ApiToken}. Only `userid` and `tokenid` replace the token; the rest is
 *  changed in place (the secret value stays the same). */
export interface ApiTokenArgs {
  /** The token's user, `name@realm`. Changing it replaces the token. */
  userid: pulumi.Input<string>;
  /** The token id (the part after `!`). Changing it replaces the token. */
  tokenid: pulumi.Input<string>;
  /** Privilege separation: the token has only what ACLs grant the token itself (within its
   *  user's privileges); false: exactly its user's. Default true; changed in place. */
  privsep?: pulumi.Input<boolean>;
  /** Expiry, seconds since the epoch; 0 or absent: none of its own (it still stops working
   *  when its user expires or is disabled). */
  expire?: pulumi.Input<number>;
  /** Free-text comment. Default none; changed in place. */
  comment?: pulumi.Input<string>;
}

export interface ApiTokenInputs {
  userid: string;
  tokenid: string;
  privsep?: boolean;
  expire?: number;
  comment?: string;
}

export interface ApiTokenState extends ApiTokenInputs {
  /** `user@realm!tokenid`. */
  fullTokenId: string;
  /** SECRET: the token value (a UUID). Absent for an imported token. */
  value?: string;
  /** SECRET: `user@realm!tokenid=value`, the form `proxmox:apiToken` takes. */
  apiToken?: string;
}

const rules: DiffRules<ApiTokenInputs> = {
  userid: { replaces: true },
  tokenid: { replaces: true },
  privsep: { normalize: (v: boolean) => v !== false },
  expire: { normalize: (v: number) => (v === 0 ? undefined : v) },
  comment: { normalize: (v: string) => emptyToUndefined(v) },
};

function inputsOf(userid: string, tokenid: string, info: ApiTokenInfo): ApiTokenInputs {
  return compact({
    userid,
    tokenid,
    privsep: info.privsep ?? true,
    expire: info.expire ?? 0,
    comment: emptyToUndefined(info.comment),
  });
}

async function readToken(userid: string, tokenid: string): Promise<ApiTokenInputs | undefined> {
  try {
    return inputsOf(userid, tokenid, await client().access.getToken(userid, tokenid));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    // Reading a token needs User.Modify (or being its user, which a token never is). A
    // read-only principal (PVEAuditor: Sys.Audit) reads the user instead, which lists its tokens.
    if (err instanceof PveApiError && err.status === 403) return readTokenViaUser(userid, tokenid, err);
    throw err;
  }
}

async function readTokenViaUser(userid: string, tokenid: string, denied: PveApiError): Promise<ApiTokenInputs | undefined> {
  let user;
  try {
    user = await client().access.getUser(userid);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    if (err instanceof PveApiError && err.status === 403) throw denied;
    throw err;
  }
  const info = user.tokens?.find((t) => t.tokenid === tokenid);
  return info ? inputsOf(userid, tokenid, info) : undefined;
}

export const apiTokenLifecycle: Lifecycle<ApiTokenInputs, ApiTokenState> = {
  async check(_olds, news) {
    const c = new InputChecker(news as unknown as Record<string, unknown>);
    const userid = c.string("userid", { required: true, rule: checkUserid });
    const tokenid = c.string("tokenid", { required: true, rule: checkTokenName });
    c.boolean("privsep");
    c.integer("expire", { min: 0 });
    c.string("comment");
    // The full id follows from the inputs: known at preview, so a binding to it (UserRoleBinding
    // `token: token.fullTokenId`) is not shown replaced when only the comment or expiry changes.
    const fullTokenId = userid !== undefined && tokenid !== undefined ? `${userid}!${tokenid}` : undefined;
    return c.result<ApiTokenInputs>(compact({ ...news, privsep: news.privsep ?? true, expire: news.expire ?? 0, comment: emptyToUndefined(news.comment), fullTokenId }));
  },

  async diff(_id, olds, news) {
    const d = diffResource(rules, olds, news, { deleteBeforeReplace: (o, n) => o.userid === n.userid && o.tokenid === n.tokenid });
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace };
  },

  async create(inputs) {
    let created;
    try {
      created = await client().access.createToken(inputs.userid, inputs.tokenid, {
        privsep: inputs.privsep ?? true,
        // 0 said explicitly: left out, PVE would give the token its user's expiry, which the
        // state would then hold against the declared 0 (a change at every preview)
        expire: inputs.expire ?? 0,
        comment: inputs.comment,
      });
    } catch (err) {
      if (err instanceof PveApiError && err.kind === "alreadyExists") {
        throw new Error(
          `token '${inputs.userid}!${inputs.tokenid}' already exists. PVE shows a token's value only when it is created, so this stack could not know it: delete it (pveum user token remove ${inputs.userid} ${inputs.tokenid}) or choose another tokenid. (${err.message})`,
        );
      }
      throw err;
    }
    const fullTokenId = created.fullTokenId || `${inputs.userid}!${inputs.tokenid}`;
    const live = (await readToken(inputs.userid, inputs.tokenid)) ?? inputsOf(inputs.userid, inputs.tokenid, created.info);
    return {
      id: fullTokenId,
      outs: compact({ ...live, fullTokenId, value: created.secret, apiToken: `${fullTokenId}=${created.secret}` }),
    };
  },

  async read(id, props) {
    const problem = checkFullTokenId(id);
    if (problem) throw new Error(`'${id}' is not an ApiToken id: ${problem}`);
    const { userid, tokenid } = splitFullTokenId(id);
    const live = await readToken(userid, tokenid);
    if (!live) return gone<ApiTokenState>();
    const state: ApiTokenState = compact({ ...live, fullTokenId: id, value: props?.value, apiToken: props?.apiToken });
    return readResult(id, state, live);
  },

  async update(id, olds, news) {
    await client().access.updateToken(news.userid, news.tokenid, {
      privsep: news.privsep ?? true,
      expire: news.expire ?? 0,
      comment: news.comment ?? "",
    });
    const live = await readToken(news.userid, news.tokenid);
    if (!live) throw new Error(`token '${id}' disappeared during the update`);
    return { outs: compact({ ...live, fullTokenId: id, value: olds.value, apiToken: olds.apiToken }) };
  },

  async delete(_id, props) {
    try {
      await client().access.deleteToken(props.userid, props.tokenid);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  },
};

/** An API token of a PVE user (`user@realm!tokenid`). Its secret value is known only from the
 *  create call and is output (as a Pulumi secret) in `value` and `apiToken`; an imported token has
 *  none. With privilege separation (the default), bind roles to the token too (UserRoleBinding `token`). */
export class ApiToken extends pulumi.dynamic.Resource {
  /** The token's user, `name@realm`. */
  declare readonly userid: pulumi.Output<string>;
  /** The token id (the part after `!`). */
  declare readonly tokenid: pulumi.Output<string>;
  /** Whether privilege separation is on, as read from PVE (true unless set false). */
  declare readonly privsep: pulumi.Output<boolean>;
  /** Expiry, seconds since the epoch, as read from PVE; 0: none of its own. */
  declare readonly expire: pulumi.Output<number>;
  /** The token's comment, as read from PVE; undefined when empty. */
  declare readonly comment: pulumi.Output<string | undefined>;
  /** `user@realm!tokenid`: the principal to bind roles to (UserRoleBinding `token`). */
  declare readonly fullTokenId: pulumi.Output<string>;
  /** SECRET: the token value. */
  declare readonly value: pulumi.Output<string>;
  /** SECRET: `user@realm!tokenid=value`, for another stack's `proxmox:apiToken`. */
  declare readonly apiToken: pulumi.Output<string>;

  constructor(name: string, args: ApiTokenArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      stubProvider("provider/resources/api-token.js", "apiTokenLifecycle"),
      name,
      { ...args, fullTokenId: undefined, value: undefined, apiToken: undefined },
      withSecretOutputs(opts, ["value", "apiToken"]),
      "proxmox",
      "ApiToken",
    );
  }
}
