// What check() can tell of a CloudInitSnippet's outputs before it exists.
//
// For a dynamic provider the engine previews an update or a replacement as the checked inputs, and
// `preview --diff` compares the old outputs with them: every output missing from the checked
// inputs is shown as removed (`- nodes`, `- targetNodes`), and every output another resource uses
// (a VmClone's `cicustom: { user: snippet.volumeId }`) turns unknown, which that resource would
// show as a change. So check() adds the outputs that follow from the inputs: the volume id, the
// path, the size, and where the file goes:
// - the nodes given (`nodes`);
// - else the nodes it was placed on, kept in its inputs since it was created (a replacement for
//   new content goes to the same nodes, as an update does);
// - else, for a new snippet (or one moving to another storage), every online node that has the
//   storage, looked up now: the inputs then name those nodes, so `up` places it exactly there.
// A lookup that cannot be made (no privilege to read, the storage declared by this run without a
// node list...) predicts nothing: create() then chooses, as before.

import { PveApiError } from "../../proxmox/errors";
import type { InputChecker } from "../check";
import { connection } from "../context";
import { declared } from "../declared";
import { isUnknown, normalize } from "../diff";
import { lookupDenied } from "../preview-access";
import { onlineNodes, snippetStorage, type SnippetStorage } from "./placement";

export interface PredictedOutputs {
  volumeId?: string;
  cicustom?: string;
  path?: string;
  size?: number;
  targetNodes?: string[];
  /** Where the file will be: the nodes it belongs on (absent when nothing could be predicted). */
  nodes?: string[];
}

interface Known {
  storage: string;
  file: string;
  /** The text written, when known. */
  text?: string;
  /** Whether `nodes` was given (its value may be unknown in a preview, or invalid). */
  nodesGiven: boolean;
  /** The nodes given, sorted, when known and valid. */
  nodes?: string[];
}

/** The previous checked inputs, as far as the prediction reads them. */
interface Before {
  storage?: unknown;
  path?: unknown;
  targetNodes?: unknown;
}

/** check()'s look at the storage: a storage that cannot hold snippets is an input failure; when
 *  PVE cannot be asked (settings, network, privileges), nothing is reported: create() will say. */
export async function storageForCheck(c: InputChecker, storage: string): Promise<SnippetStorage | undefined> {
  // A Storage resource of the same run (declared.ts): judged by its declared content, no lookup.
  const planned = declared.storage(storage);
  if (planned) {
    if (planned.content && !planned.content.includes("snippets")) c.fail("storage", `storage '${storage}' (declared by this stack) does not have 'snippets' content (its content: ${planned.content.join(", ") || "none"}); add snippets to its content.`);
    return undefined;
  }
  let api;
  try {
    api = connection().client;
  } catch {
    return undefined;
  }
  try {
    return await snippetStorage(api, storage);
  } catch (e) {
    if (!(e instanceof PveApiError)) c.fail("storage", (e as Error).message);
    else lookupDenied(`storage '${storage}' for the snippet`, e);
    return undefined;
  }
}

/** The online nodes a new snippet in `storage` would go to, or undefined when that cannot be told. */
async function defaultNodes(storage: string, st: SnippetStorage | undefined): Promise<string[] | undefined> {
  const planned = declared.storage(storage);
  const restricted = planned ? planned.nodes : st?.nodes;
  if (!planned && !st) return undefined;
  try {
    const online = await onlineNodes(connection().client);
    const nodes = online.filter((n) => !restricted || restricted.includes(n));
    return nodes.length ? nodes : undefined;
  } catch (e) {
    if (e instanceof PveApiError) lookupDenied("the online nodes for the snippet", e);
    return undefined;
  }
}

export async function predictOutputs(c: InputChecker, before: Before, now: Known): Promise<PredictedOutputs> {
  const out: PredictedOutputs = {};
  if (now.text !== undefined) out.size = Buffer.byteLength(now.text, "utf8");
  const storageKnown = !isUnknown(now.storage) && c.failures.length === 0;
  const sameStorage = before.storage === now.storage;
  // The storage is a reference that must exist with `snippets` content: asked (read-only) only
  // when it is new to this resource; the same storage keeps its directory.
  let dir: string | undefined;
  let st: SnippetStorage | undefined;
  if (sameStorage && typeof before.path === "string" && before.path.includes("/")) dir = before.path.slice(0, before.path.lastIndexOf("/"));
  else if (storageKnown) {
    st = await storageForCheck(c, now.storage);
    dir = st?.dir;
  }
  if (storageKnown && !isUnknown(now.file)) {
    out.volumeId = `${now.storage}:snippets/${now.file}`;
    out.cicustom = `user=${out.volumeId}`;
    if (dir !== undefined) out.path = `${dir}/${now.file}`;
  }
  let target = now.nodes; // given (undefined while unknown)
  if (!now.nodesGiven && sameStorage && Array.isArray(before.targetNodes)) target = normalize.stringSet(before.targetNodes as string[]);
  else if (!now.nodesGiven && !sameStorage && storageKnown && c.failures.length === 0) target = await defaultNodes(now.storage, st);
  if (target) {
    out.targetNodes = target;
    out.nodes = target;
  }
  return out;
}
