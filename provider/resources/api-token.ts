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
import { diffResource } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { checkFullTokenId, splitFullTokenId } from "./access-names";
import { compact, emptyToUndefined, gone, readResult, withSecretOutputs } from "./access/common";
import { checkFields, diffRulesOf, outputSlots, pveParams } from "./fields";
import { apiTokenTable } from "./fields/api-token";
import { ApiTokenOutputs, type ApiTokenArgs, type ApiTokenInputs, type ApiTokenState } from "./generated/api-token";

export type { ApiTokenArgs, ApiTokenInputs, ApiTokenState } from "./generated/api-token";

const rules = diffRulesOf<ApiTokenInputs>(apiTokenTable);

/** A token as PVE reports it: its inputs, with privsep and expire always. */
type TokenSettings = Omit<ApiTokenState, "fullTokenId" | "value" | "apiToken">;

function inputsOf(userid: string, tokenid: string, info: ApiTokenInfo): TokenSettings {
  return compact({
    userid,
    tokenid,
    privsep: info.privsep ?? true,
    expire: info.expire ?? 0,
    comment: emptyToUndefined(info.comment),
  });
}

async function readToken(userid: string, tokenid: string): Promise<TokenSettings | undefined> {
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

async function readTokenViaUser(userid: string, tokenid: string, denied: PveApiError): Promise<TokenSettings | undefined> {
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
    const { userid, tokenid } = checkFields(c, apiTokenTable) as Partial<ApiTokenInputs>;
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
      // expire 0 said explicitly: left out, PVE would give the token its user's expiry, which
      // the state would then hold against the declared 0 (a change at every preview)
      created = await client().access.createToken(inputs.userid, inputs.tokenid, { ...pveParams(apiTokenTable, inputs), comment: inputs.comment });
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
    await client().access.updateToken(news.userid, news.tokenid, pveParams(apiTokenTable, news));
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
export class ApiToken extends ApiTokenOutputs {
  constructor(name: string, args: ApiTokenArgs, opts?: pulumi.CustomResourceOptions) {
    super(stubProvider("provider/resources/api-token.js", "apiTokenLifecycle"), name, { ...args, ...outputSlots(apiTokenTable) }, withSecretOutputs(opts, ["value", "apiToken"]), "proxmox", "ApiToken");
  }
}
