// CloudInitSnippet: a cloud-init file (user-data, network-config...) in a storage's
// `snippets` directory on every node that may run the VMs. PVE's API cannot upload snippets
// (BEHAVIOURS §11), so the file travels over SSH/SFTP (provider/ssh), with the login, key,
// host keys and node addresses from the provider's `proxmox:ssh*` settings, never inputs.
//
// Replacement: the default file name is content-addressed (`<namePrefix>-<12 hex of sha256>.yaml`),
// so new content is a new file, created before the old one is deleted: running VMs keep
// theirs. With a fixed `fileName`, new content rewrites that file in place (atomically, on
// every node): a replace would write the new file and then delete it with the old resource.
// A node-list change updates in place (written to added nodes, removed from dropped ones).
// Without `nodes`, the online nodes at creation are the snippet's from then on: check() records
// them in its inputs, and a replacement (new content) goes to the same nodes (./snippet/predict.ts).
// Read checks every node; `nodes` then lists only nodes where the file is present and intact,
// so the next `pulumi up` rewrites it where it is missing or altered.

import * as pulumi from "@pulumi/pulumi";
import { stubProvider, type Lifecycle } from "./dynamic";
import { UNKNOWN, diffResource, isUnknown, normalize, sameValue } from "./diff";
import { InputChecker } from "./check";
import { connection, providerLogger } from "./context";
import { checkFields, diffRulesOf, outputSlots, withDefaults } from "./fields";
import { cloudInitSnippetTable } from "./fields/cloud-init-snippet";
import { CloudInitSnippetOutputs, type CloudInitSnippetArgs, type CloudInitSnippetInputs as TableInputs, type CloudInitSnippetState } from "./generated/cloud-init-snippet";
import { renderCloudConfig } from "./snippet/cloud-config";
import { checkNodes, nodeEndpoints, onlineNodes, snippetStorage, SnippetStorageError, transportOptions, type SnippetStorage } from "./snippet/placement";
import { predictOutputs } from "./snippet/predict";
import { gone } from "./read-result";
import { MAX_SNIPPET_BYTES, checkSnippetOnNodes, deleteSnippetFromNodes, putSnippetOnNodes, sha256Hex } from "../ssh";

export type { CloudInitSnippetArgs, CloudInitSnippetState } from "./generated/cloud-init-snippet";

/** The inputs as check() returns them, with the two outputs it derives from them and diff()
 *  compares: the file name on the nodes and the SHA-256 of its bytes. */
export type CloudInitSnippetInputs = TableInputs & Pick<CloudInitSnippetState, "file" | "sha256">;

const rules = diffRulesOf<CloudInitSnippetInputs>(cloudInitSnippetTable);

/** A resource name made into a file-name prefix (letters, digits, `.`, `_`, `-`). */
export function namePrefixOf(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/\.{2,}/g, ".").replace(/^[^A-Za-z0-9]+/, "").slice(0, 120);
  return cleaned || "snippet";
}

/** The text written: the content as given, or the rendered cloud-config. */
export function snippetText(inputs: Pick<CloudInitSnippetInputs, "content" | "cloudConfig">): string {
  if (inputs.content !== undefined) return inputs.content;
  return renderCloudConfig(inputs.cloudConfig ?? {});
}

export function defaultFileName(prefix: string, sha256: string): string {
  return `${prefix}-${sha256.slice(0, 12)}.yaml`;
}

function sorted(nodes: readonly string[]): string[] {
  return normalize.stringSet([...nodes]);
}

function stateOf(inputs: CloudInitSnippetInputs, st: SnippetStorage, targetNodes: string[], nodes: string[], size: number): CloudInitSnippetState {
  const { nodes: _given, ...rest } = inputs;
  void _given;
  const volumeId = `${inputs.storage}:snippets/${inputs.file}`;
  return {
    ...rest,
    nodes: sorted(nodes),
    targetNodes: sorted(targetNodes),
    volumeId,
    cicustom: `user=${volumeId}`,
    path: `${st.dir}/${inputs.file}`,
    size,
  };
}

/** Everything a lifecycle step needs to reach the nodes. */
async function placement(storage: string, nodes: readonly string[] | undefined) {
  const { settings, client: api } = connection();
  const st = await snippetStorage(api, storage);
  const all = await api.nodes.list();
  const target = nodes ? sorted(nodes) : (await onlineNodes(api)).filter((n) => !st.nodes || st.nodes.includes(n));
  if (target.length === 0) throw new Error(`no online node has storage '${storage}' to place the snippet on`);
  await checkNodes(api, st, target);
  const opts = transportOptions(settings, providerLogger);
  const endpoints = (list: readonly string[]) => nodeEndpoints(settings, list, all.length);
  return { st, target, opts, endpoints };
}

/** The nodes that hold a physical copy: one for a shared storage, else each node. */
function physical(st: SnippetStorage, nodes: readonly string[]): string[] {
  return st.shared ? nodes.slice(0, 1) : [...nodes];
}

function parseId(id: string): { storage: string; file: string } {
  const m = /^([A-Za-z][A-Za-z0-9\-_.]*):snippets\/([^/]+)$/.exec(id);
  if (!m) throw new Error(`'${id}' is not a snippet volume id: expected <storage>:snippets/<file name>, e.g. local:snippets/user-data.yaml`);
  return { storage: m[1], file: m[2] };
}

/** The storage and file of a snippet's id, and the storage as it is now. A storage that cannot
 *  hold snippets for one of the `tolerated` reasons comes back as that error (decided by its
 *  reason, never its text); any other failure is thrown. */
async function snippetAt(id: string, tolerated: readonly SnippetStorageError["reason"][]) {
  const { storage, file } = parseId(id);
  const { client: api } = connection();
  let st: SnippetStorage | SnippetStorageError;
  try {
    st = await snippetStorage(api, storage);
  } catch (e) {
    if (!(e instanceof SnippetStorageError && tolerated.includes(e.reason))) throw e;
    st = e;
  }
  return { storage, file, api, st };
}

export const cloudInitSnippetLifecycle: Lifecycle<CloudInitSnippetInputs, CloudInitSnippetState> = {
  async check(olds, news) {
    const c = new InputChecker(news);
    const { nodes, content, cloudConfig, fileName, namePrefix: prefix } = checkFields(c, cloudInitSnippetTable) as Partial<CloudInitSnippetInputs>;
    if (Array.isArray(nodes) && new Set(nodes).size !== nodes.length) c.fail("nodes", `nodes lists a node more than once: ${nodes.join(", ")}`);
    const which = c.exclusive(["content", "cloudConfig"], { required: true });

    let text: string | undefined;
    if (which === "content" && content !== undefined) text = content;
    if (which === "cloudConfig" && cloudConfig !== undefined && c.failures.length === 0) text = renderCloudConfig(cloudConfig);
    const sha256 = text !== undefined ? sha256Hex(text) : undefined;
    if (text !== undefined && Buffer.byteLength(text, "utf8") > MAX_SNIPPET_BYTES) c.fail(which ?? "content", `the snippet is larger than ${MAX_SNIPPET_BYTES} bytes`);

    const file = fileName ?? (isUnknown(news.fileName) ? UNKNOWN : sha256 ? defaultFileName(prefix ?? "snippet", sha256) : UNKNOWN);
    const out: CloudInitSnippetInputs = {
      storage: withDefaults(cloudInitSnippetTable, news).storage,
      ...(news.nodes !== undefined ? { nodes: Array.isArray(nodes) ? sorted(nodes) : news.nodes } : {}),
      ...(news.content !== undefined ? { content: news.content } : {}),
      ...(news.cloudConfig !== undefined ? { cloudConfig: news.cloudConfig } : {}),
      ...(news.fileName !== undefined ? { fileName: news.fileName } : {}),
      ...(news.namePrefix !== undefined ? { namePrefix: news.namePrefix } : {}),
      file,
      sha256: sha256 ?? UNKNOWN,
    };
    // Outputs that follow from the inputs alone (./snippet/predict.ts): a preview of an update or
    // a replacement shows the old outputs against these, and other resources use them.
    const before: Partial<CloudInitSnippetState> = olds ?? {};
    const known = Array.isArray(nodes) && !isUnknown(nodes) ? sorted(nodes) : undefined;
    Object.assign(out, await predictOutputs(c, before, { storage: out.storage, file, text, nodesGiven: news.nodes !== undefined, nodes: known }));
    return c.result(out);
  },

  async diff(_id, olds, news) {
    // The file's identity: another storage (the table's rule) or another name is another file.
    const d = diffResource(rules, olds, news);
    const changed = [...d.changed];
    const replaces = [...d.replaces];
    if (isUnknown(news.file) || !sameValue(olds.file, news.file)) {
      changed.push("file");
      replaces.push("file");
    }
    // Same name, other bytes (fixed fileName): rewritten in place.
    if (isUnknown(news.sha256) || olds.sha256 !== news.sha256) changed.push("sha256");
    for (const key of ["content", "cloudConfig", "fileName", "namePrefix"] as const) {
      if (isUnknown(news[key]) || !sameValue(olds[key], news[key])) changed.push(key);
    }
    // Nodes: where it should be (the input, else the nodes chosen at creation) against where
    // it is (after a refresh, only the nodes holding it intact).
    const wanted = news.nodes ?? olds.targetNodes;
    if (isUnknown(wanted) || !sameValue(sorted(wanted ?? []), sorted(olds.nodes ?? []))) changed.push("nodes");
    return { changes: changed.length > 0, replaces, deleteBeforeReplace: false, stables: [] };
  },

  async create(inputs) {
    const { st, target, opts, endpoints } = await placement(inputs.storage, inputs.nodes);
    const text = snippetText(inputs);
    const ref = { dir: st.dir, name: inputs.file };
    const onto = physical(st, target);
    const out = await putSnippetOnNodes(endpoints(onto), opts, ref, text);
    if (out.error) {
      // Nothing half-written: take it back from the nodes where it went.
      const undo = out.succeeded.length ? await deleteSnippetFromNodes(endpoints(out.succeeded), opts, ref).catch((e: Error) => e) : undefined;
      const left = undo instanceof Error ? out.succeeded : (undo?.failed ?? []);
      throw new Error(
        `${out.error.message}` +
          (out.succeeded.length ? `\nthe file was removed again from ${out.succeeded.filter((n) => !left.includes(n)).join(", ") || "no node"}` : "") +
          (left.length ? `; it could not be removed from ${left.join(", ")} (${ref.dir}/${ref.name})` : ""),
      );
    }
    const size = Buffer.byteLength(text, "utf8");
    return { id: `${inputs.storage}:snippets/${inputs.file}`, outs: stateOf(inputs, st, target, target, size) };
  },

  async read(id, props) {
    const { storage, file, api, st } = await snippetAt(id, ["missing"]);
    if (st instanceof SnippetStorageError) return gone<CloudInitSnippetState>();
    const targets = props?.targetNodes?.length ? props.targetNodes : await onlineNodes(api).then((ns) => ns.filter((n) => !st.nodes || st.nodes.includes(n)));
    const { opts, endpoints } = await placement(storage, targets);
    const ref = { dir: st.dir, name: file };
    const onto = physical(st, targets);
    const out = await checkSnippetOnNodes(endpoints(onto), opts, ref, props?.sha256);
    if (out.error) throw out.error;
    const intact = out.results.flatMap((r) => (r.ok && r.value.state === "present" ? [r.node] : []));
    const present = st.shared ? (intact.length ? targets : []) : intact;
    const size = out.results.find((r) => r.ok && r.value.size !== undefined);
    const base: CloudInitSnippetInputs = props
      ? { ...(props as unknown as CloudInitSnippetInputs) }
      : { storage, file, fileName: file, sha256: (size?.ok && size.value.sha256) || "" };
    if (!props && present.length === 0) return gone<CloudInitSnippetState>();
    const state = stateOf({ ...base, storage, file }, st, targets, present, props?.size ?? (size?.ok ? size.value.size ?? 0 : 0));
    if (props) return { id, props: state }; // refresh: the stored inputs stay
    // import: the inputs a program needs to own the file as it is (a fixed name, all its nodes)
    return { id, props: state, inputs: { storage, fileName: file, nodes: present } as any };
  },

  async update(_id, olds, news) {
    const { st, target, opts, endpoints } = await placement(news.storage, news.nodes ?? olds.targetNodes);
    const text = snippetText(news);
    const ref = { dir: st.dir, name: news.file };
    const rewrite = olds.sha256 !== news.sha256;
    const present = new Set(olds.nodes ?? []);
    const toWrite = physical(st, rewrite ? target : target.filter((n) => !present.has(n)));
    const dropped = st.shared ? [] : (olds.targetNodes ?? []).concat(olds.nodes ?? []).filter((n, i, a) => !target.includes(n) && a.indexOf(n) === i);
    const problems: string[] = [];
    let written: string[] = [];
    if (toWrite.length) {
      const out = await putSnippetOnNodes(endpoints(toWrite), opts, ref, text);
      written = out.succeeded;
      if (out.error) problems.push(out.error.message);
    }
    let removed: string[] = [];
    if (dropped.length) {
      const out = await deleteSnippetFromNodes(endpoints(dropped), opts, ref);
      removed = out.succeeded;
      if (out.error) problems.push(out.error.message);
    }
    if (problems.length) {
      throw new Error(
        `${problems.join("\n")}\n(written to ${written.join(", ") || "no node"}${dropped.length ? `; removed from ${removed.join(", ") || "no node"}` : ""}; run \`pulumi up\` again once the nodes are reachable: it finishes the change)`,
      );
    }
    return { outs: stateOf(news, st, target, target, Buffer.byteLength(text, "utf8")) };
  },

  async delete(id, props) {
    const { storage, file, st } = await snippetAt(id, ["missing", "noSnippets", "disabled"]);
    if (st instanceof SnippetStorageError) {
      // The storage is gone (or no longer holds snippets): nothing of ours to remove through it.
      providerLogger.warn(`snippet ${id}: ${st.problem}; not removing files`);
      return;
    }
    const nodes = sorted([...(props.targetNodes ?? []), ...(props.nodes ?? [])]);
    if (nodes.length === 0) return;
    const { opts, endpoints } = await placement(storage, nodes.filter((n) => !st.nodes || st.nodes.includes(n)));
    const out = await deleteSnippetFromNodes(endpoints(physical(st, nodes)), opts, { dir: st.dir, name: file });
    if (out.error) throw out.error;
  },
};

/** A cloud-init file (user-data, network-config...) in a storage's `snippets` directory on every node
 *  that may run the VMs, uploaded over SSH/SFTP. The default file name is content-addressed, so new
 *  content is a new file created before the old one is deleted; pass `volumeId` to a VM's `cicustom`. */
export class CloudInitSnippet extends CloudInitSnippetOutputs {
  constructor(name: string, args: CloudInitSnippetArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      stubProvider("provider/resources/cloud-init-snippet.js", "cloudInitSnippetLifecycle"),
      name,
      {
        ...args,
        namePrefix: args.namePrefix ?? (args.fileName === undefined ? namePrefixOf(name) : undefined),
        // Listed even when not given, so that the output `nodes` exists (the nodes it is on).
        nodes: args.nodes,
        ...outputSlots(cloudInitSnippetTable),
      },
      opts,
      "proxmox",
      "CloudInitSnippet",
    );
  }
}
