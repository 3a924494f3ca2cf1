// Template: a cloud-init VM template built from a distribution's cloud image, the way the
// machine-controller docs build one by hand (qm create / importdisk / set / template /
// ha-manager add), but through the API:
//
//   1. `download-url` of the image (checksum verified by PVE) into an `import`-capable storage
//      (content `import`; PVE accepts .qcow2/.raw/.vmdk/.ova there, so a `.img` cloud image is
//      stored as `.qcow2`, which is what those files are); skipped when the file is there;
//   2. a VM whose scsi0 is `import-from` that image, a cloud-init drive, a serial console
//      (`serial0=socket`, `vga=serial0`), a virtio NIC on a bridge, the guest agent on, boot
//      from scsi0;
//   3. converted to a template; optionally added to HA with `state=stopped` (so every node can
//      clone it) and to a pool.
//
// Or `adopt: true` with a `vmid` (and node): an existing template is read and its name,
// description and tags are managed. An adopted template is NEVER destroyed on delete unless
// `destroyOnDelete: true`; a built one is destroyed together with the cloud image it downloaded
// (`removeImageOnDelete: false` keeps the image in the storage as a cache for the next build).
//
// Replaces: image, storages, node, vmid, hardware (cores, memory, bridge, diskSize), adopt.
// In place: name, description, tags, and the cloud-init data clones inherit (ipConfigs,
// cicustom). The marker line is the same as VmClone's.

import * as pulumi from "@pulumi/pulumi";
import { codecs, type PveClient } from "../proxmox";
import { InputChecker, known } from "./check";
import { diffResource, isUnknown, normalize } from "./diff";
import { stubProvider, type Lifecycle } from "./dynamic";
import { checkFields, diffRulesOf, outputSlots, withDefaults } from "./fields";
import { templateTable, type TemplateImage } from "./fields/template";
import { TemplateOutputs, type TemplateArgs, type TemplateInputs, type TemplateState } from "./generated/template";
import { createWithVmid, finishTemplate } from "./template/build";
import { checkImage, ensureImage, importFileName, removeImage } from "./template/image";
import { checkTemplateReferences } from "./template/references";
import { cloudInitChange, cloudInitFromConfig, cloudInitValues, normalizeCloudInitData, type CloudInitData } from "./vm/cloud-init-inputs";
import { composeDescription, markerOf } from "./vm/config-map";
import { confirmGone, locateVm } from "./vm/lookup";
import { destroyVm } from "./vm/power";
import { vmContext } from "./vm/vm-context";
import { parseVmId } from "./vm/vm-id";
import { vmidOutput } from "./vm/vmid-output";

export { importFileName } from "./template/image";

export type { TemplateImage } from "./fields/template";
export type { TemplateArgs, TemplateInputs, TemplateState } from "./generated/template";

const rules = diffRulesOf<TemplateInputs>(templateTable);

export const templateLifecycle: Lifecycle<TemplateInputs, TemplateState> = {
  async check(olds, news) {
    const n = news as unknown as Record<string, any>;
    const c = new InputChecker(n);
    const { adopt, vmid } = checkFields(c, templateTable) as Partial<TemplateInputs>;
    if (n.name === undefined || n.name === null) c.fail("name", "name is required."); // the class sets it
    if (adopt && n.vmid === undefined) c.fail("vmid", "adopt needs the vmid of the existing template.");
    if (adopt && n.image !== undefined) c.fail("image", "an adopted template is not built: remove image, or set adopt: false.");
    if (!adopt && !isUnknown(n.adopt) && n.image === undefined) c.fail("image", "image is required to build a template ({ url, checksum?, checksumAlgorithm? }), or set adopt: true with a vmid.");
    checkImage(c, n.image); // ./template/image.ts
    if (adopt && (n.ipConfigs !== undefined || n.cicustom !== undefined)) c.fail(n.ipConfigs !== undefined ? "ipConfigs" : "cicustom", "an adopted template's cloud-init data is not managed: remove ipConfigs and cicustom, or build the template with image (adopt: false).");
    const out: Record<string, any> = withDefaults(templateTable, { ...n, adopt: adopt ?? false });
    if (vmid !== undefined) out.vmid = vmid;
    if (Array.isArray(n.tags) && c.failures.length === 0) out.tags = normalize.tags(n.tags);
    if (typeof n.description === "string") out.description = n.description.replace(/\s+$/, "") || undefined;
    if (c.failures.length === 0) Object.assign(out, cloudInitInputs(n));
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    // What the template refers to must exist: read-only lookups, only for changed references.
    if (c.failures.length === 0) await checkTemplateReferences(c, (olds ?? {}) as Partial<TemplateInputs>, out as TemplateInputs, n);
    return c.result(out as TemplateInputs);
  },

  async diff(_id, olds, news) {
    const d = diffResource(rules, olds, { ...news, vmid: news.vmid ?? olds.vmid }, { deleteBeforeReplace: (o) => news.vmid !== undefined && o.vmid === news.vmid });
    return { changes: d.changes, replaces: d.replaces, deleteBeforeReplace: d.deleteBeforeReplace };
  },

  async create(inputs) {
    const ctx = vmContext();
    const api = ctx.api;
    const description = templateDescription(inputs);
    if (inputs.adopt) {
      const vmid = inputs.vmid as number;
      const found = await readTemplate(api, inputs.node, vmid);
      if (!found.isTemplate) throw new Error(`VM ${vmid} on node '${inputs.node}' is not a template; adopt only takes templates (convert it with qm template ${vmid}, or build one with image).`);
      const set: Record<string, string> = { name: inputs.name };
      if (inputs.tags) set.tags = codecs.formatTags(inputs.tags);
      if (description !== undefined) set.description = description;
      await api.qemu.updateConfigSync(inputs.node, vmid, set);
      return { id: `${inputs.node}/${vmid}`, outs: { ...inputs, vmid } };
    }
    const imageVolume = await ensureImage(ctx, inputs.node, inputs.image as TemplateImage);
    const params: Record<string, string | number> = {
      name: inputs.name,
      memory: inputs.memory,
      cores: inputs.cores,
      scsihw: "virtio-scsi-pci",
      scsi0: `${inputs.storage}:0,import-from=${imageVolume}`,
      ide2: `${inputs.storage}:cloudinit`,
      boot: "order=scsi0",
      serial0: "socket",
      vga: "serial0",
      net0: `virtio,bridge=${inputs.bridge}`,
      agent: "1",
      ...cloudInitValues(inputs),
      ...(inputs.tags?.length ? { tags: codecs.formatTags(inputs.tags) } : {}),
      ...(description !== undefined ? { description } : {}),
      ...(inputs.pool ? { pool: inputs.pool } : {}),
    };
    const vmid = await createWithVmid(ctx, inputs.node, inputs.vmid, params); // ./template/build.ts
    await finishTemplate(ctx, inputs.node, vmid, inputs);
    return { id: `${inputs.node}/${vmid}`, outs: { ...inputs, vmid, imageVolume } };
  },

  async read(id, props) {
    const ctx = vmContext();
    const parsed = parseVmId(id, "Template");
    const vmid = props?.vmid ?? parsed.vmid;
    const where = await locateVm(ctx, vmid);
    if (!where) return confirmGone(ctx, vmid, props?.node ?? parsed.node); // gone, or fails when merely hidden
    const found = await readTemplate(ctx.api, where.node, vmid, props ?? {});
    const { isTemplate: _t, ...live } = found;
    const base: TemplateState = props ?? ({ node: where.node, storage: "local-lvm", adopt: true, destroyOnDelete: false, ha: false, vmid } as TemplateState);
    const state: TemplateState = { ...base, ...live, node: where.node, vmid } as TemplateState;
    if (props?.tags === undefined && state.tags?.length === 0) delete state.tags;
    if (live.description === undefined) delete state.description;
    for (const k of Object.keys(state) as (keyof TemplateState)[]) if (state[k] === undefined) delete state[k];
    return { id, props: state };
  },

  async update(_id, olds, news) {
    const ctx = vmContext();
    const vmid = olds.vmid;
    const where = await locateVm(ctx, vmid);
    const node = where?.node ?? olds.node;
    const description = templateDescription(news);
    const set: Record<string, string> = { name: news.name };
    const del: string[] = [];
    if (news.tags?.length) set.tags = codecs.formatTags(news.tags);
    else if (olds.tags?.length) del.push("tags");
    if (description !== undefined) set.description = description;
    else if (olds.description !== undefined) del.push("description");
    const cloudInit = cloudInitChange(olds, news);
    Object.assign(set, cloudInit.set);
    del.push(...cloudInit.delete);
    await ctx.api.qemu.updateConfigSync(node, vmid, { ...set, ...(del.length ? { delete: del.join(",") } : {}) });
    return { outs: { ...news, vmid, imageVolume: olds.imageVolume } };
  },

  async delete(_id, props) {
    if (props.adopt && !props.destroyOnDelete) return;
    const ctx = vmContext();
    await destroyVm(ctx, props.vmid, props.node, { shutdownTimeoutSeconds: 0 });
    if (props.removeImageOnDelete !== false && props.imageVolume && !props.adopt) await removeImage(ctx, props.node, props.imageVolume);
  },
};

/** The description PVE stores: the user's text and, for a built template, the marker, whose
 *  origin names the image (so a clone whose agent never answers can be told which). */
function templateDescription(i: TemplateInputs): string | undefined {
  return composeDescription(i.description, i.adopt ? undefined : i.resourceName, undefined, i.image ? importFileName(i.image) : undefined);
}

async function readTemplate(api: PveClient, node: string, vmid: number, declared: CloudInitData = {}): Promise<Partial<TemplateInputs> & { isTemplate: boolean }> {
  const config = await api.qemu.getConfig(node, vmid);
  const { description, resourceName } = markerOf(config);
  return {
    isTemplate: String(config.template ?? "0") === "1",
    name: config.name === undefined ? undefined : String(config.name),
    description,
    resourceName,
    tags: codecs.parseTags(config.tags === undefined ? "" : String(config.tags)),
    cores: Number(config.cores ?? 1),
    memory: Number(/^(?:current=)?(\d+)/.exec(String(config.memory ?? "512"))?.[1] ?? 512),
    bridge: config.net0 === undefined ? undefined : codecs.parseNet(String(config.net0)).bridge,
    ...cloudInitFromConfig(config, declared),
  };
}

/** The declared ipConfigs and cicustom in their canonical form (unknown values kept as they are). */
function cloudInitInputs(n: Record<string, any>): CloudInitData {
  const given: CloudInitData = {};
  if (Array.isArray(n.ipConfigs)) given.ipConfigs = n.ipConfigs;
  if (n.cicustom && typeof n.cicustom === "object") given.cicustom = n.cicustom;
  if ((given.ipConfigs ?? []).some((i) => !known(i) || Object.values(i).some(isUnknown)) || Object.values(given.cicustom ?? {}).some(isUnknown)) return given;
  return normalizeCloudInitData(given);
}

/** A cloud-init VM template (see the top of this file). */
export class Template extends TemplateOutputs {
  constructor(name: string, args: TemplateArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      stubProvider("provider/resources/template.js", "templateLifecycle"),
      name,
      { ...args, ...outputSlots(templateTable), name: args.name ?? name, resourceName: name, vmid: args.vmid },
      opts,
      "proxmox",
      "Template",
    );
    // known at preview when given (the engine's output is unknown until create)
    (this as { vmid: pulumi.Output<number> }).vmid = vmidOutput(args.vmid, this.vmid, this.id);
  }
}
