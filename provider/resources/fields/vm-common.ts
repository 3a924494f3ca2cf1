// Field-table entries VmClone and Template share: tags, and the cloud-init network and custom
// data a template passes on to its clones. Each resource gives its own doc text and default.

import { pveNames } from "../check";
import { normalize } from "../diff";
import type { CustomField, ListField } from "../fields";
import { checkCicustom, checkIpConfigs } from "../vm/cloud-init-inputs";

type Words = { doc: string; defaultDoc?: string };

export function tagsField(words: Words): ListField {
  return {
    kind: "list",
    of: "string",
    item: (t: unknown) => (typeof t === "string" && pveNames.tag.test(t) ? undefined : `tag '${String(t)}' is not valid: letters, digits, _ - + . (not starting with - + .).`),
    normalize: normalize.tags,
    normalizeDoc: "as PVE stores tags (lower case, sorted, repeats removed)",
    ...words,
  };
}

export function ipConfigsField(words: Words): CustomField {
  return { kind: "custom", type: "IpConfigInput[]", argsType: "pulumi.Input<pulumi.Input<IpConfigInput>[]>", check: (c) => checkIpConfigs(c), ...words };
}

export function cicustomField(words: Words): CustomField {
  return {
    kind: "custom",
    type: "CiCustom",
    argsType: "pulumi.Input<{ [K in keyof CiCustom]?: pulumi.Input<string> }>",
    check: (c, property) => checkCicustom(c, c.inputs[property]),
    ...words,
  };
}
