// The properties of a CloudInitSnippet, declared once (../fields.ts explains what derives from
// this table).
//
// What the table cannot say, kept in the resource (../cloud-init-snippet.ts): exactly one of
// `content` and `cloudConfig`, no node listed twice, and the size limit (check()); `file` and
// `sha256` are outputs that check() already derives from the inputs, so the resource's Inputs
// carry them too and its diff() compares them (another `file` replaces the resource, other bytes
// under the same name are rewritten in place); `nodes` is compared with where the file is.

import { validateSnippetName } from "../../ssh";
import { pveNames, type InputChecker } from "../check";
import { isUnknown } from "../diff";
import { table } from "../fields";
import { validateCloudConfig } from "../snippet/cloud-config";

/** `cloudConfig`: known and valid (each problem reported, naming its path), or undefined. When
 *  `content` is set too, check() reports that only one may be set, and this says nothing more. */
function checkCloudConfig(c: InputChecker, property: string): Record<string, unknown> | undefined {
  const value: unknown = c.inputs[property];
  if (value === undefined || value === null || isUnknown(value)) return undefined;
  if (c.inputs.content !== undefined && c.inputs.content !== null) return undefined;
  const problems = validateCloudConfig(value);
  for (const p of problems) c.fail(property, p);
  return problems.length ? undefined : (value as Record<string, unknown>);
}

export const cloudInitSnippetTable = table({
  resource: "CloudInitSnippet",
  module: "cloud-init-snippet",
  summary:
    "A cloud-init file (user-data, network-config...) in a storage's `snippets` directory on every node that may run the VMs, uploaded over SSH/SFTP. The default file name is content-addressed, so new content is a new file created before the old one is deleted; pass `volumeId` to a VM's `cicustom`.",
  argsDoc: "The inputs of a {@link CloudInitSnippet}. Set exactly one of `content` and `cloudConfig`.",
  id: "the file's volume id (`local:snippets/user-data.yaml`)",
  fields: {
    storage: {
      kind: "string",
      default: "local",
      change: "replaces",
      pattern: pveNames.storageId,
      describe: "a PVE storage id (letters, digits, '-', '_', '.'; starting with a letter)",
      doc: "The storage holding the file: one with `snippets` content and a file system path.",
    },
    nodes: {
      kind: "list",
      of: "string",
      nonEmpty: true,
      item: (n: unknown) => (typeof n !== "string" || !pveNames.node.test(n) ? `'${String(n)}' is not a node name` : undefined),
      diffedBy: "resource",
      defaultDoc: "every node online (holding the storage) when it is first created; a replacement keeps them",
      normalizeDoc: "as a set (order does not matter) with the nodes holding the file intact",
      doc: "Nodes to place the file on. As an output: the nodes holding the file intact (after a refresh only those, so the next `pulumi up` rewrites it where it is missing or altered).",
    },
    content: {
      kind: "string",
      change: "replaces",
      diffedBy: "resource",
      doc: "The file's text as is. With a fixed `fileName`, new content rewrites the file in place; otherwise it is a new file.",
    },
    cloudConfig: {
      kind: "custom",
      type: "Record<string, unknown>",
      argsType: "pulumi.Input<Record<string, any>>",
      check: checkCloudConfig,
      change: "replaces",
      diffedBy: "resource",
      doc: "A cloud-config mapping, rendered as `#cloud-config` YAML with sorted keys. With a fixed `fileName`, a change rewrites the file in place; otherwise it is a new file.",
    },
    fileName: {
      kind: "string",
      rule: (v: string) => validateSnippetName(v),
      change: "replaces",
      diffedBy: "resource",
      defaultDoc: "`<namePrefix>-<12 hex of sha256>.yaml`",
      doc: "A fixed file name (letters, digits, `.`, `_`, `-`).",
    },
    namePrefix: {
      kind: "string",
      rule: (v: string) => validateSnippetName(`${v}-000000000000.yaml`),
      change: "replaces",
      diffedBy: "resource",
      defaultDoc: "the resource name (without `fileName`)",
      doc: "Start of the default file name.",
    },
    targetNodes: { kind: "list", of: "string", role: "output", present: true, doc: "Nodes the file belongs on, sorted: the `nodes` input, or the online nodes at creation." },
    file: { kind: "string", role: "output", present: true, doc: "The file name on the nodes (`fileName`, or `<namePrefix>-<12 hex of sha256>.yaml`)." },
    sha256: { kind: "string", role: "output", present: true, doc: "SHA-256 (hex) of the file's bytes." },
    size: { kind: "integer", role: "output", present: true, unit: "bytes", doc: "The file's size." },
    volumeId: { kind: "string", role: "output", present: true, doc: "The file's volume id, e.g. `local:snippets/x.yaml` (also the resource id)." },
    cicustom: { kind: "string", role: "output", present: true, doc: "`user=<volumeId>`, ready for a VM's `cicustom` (as user-data)." },
    path: { kind: "string", role: "output", present: true, doc: "The file's absolute path on the nodes." },
  },
});
