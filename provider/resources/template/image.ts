// The cloud image a Template is built from: its file name in the import storage, its download
// (checksum verified by PVE; skipped when the file is there), its check() rules, its removal.

import { createHash } from "crypto";
import * as path from "path";
import { InputChecker, pveNames } from "../check";
import { isUnknown } from "../diff";
import { runTask, type VmContext } from "../vm/vm-context";

/** Hex digits of a digest, per algorithm PVE verifies. */
const CHECKSUM_HEX_DIGITS = { md5: 32, sha1: 40, sha224: 56, sha256: 64, sha384: 96, sha512: 128 } as const;
const IMAGE_KEYS = ["url", "checksum", "checksumAlgorithm", "fileName", "storage"];

/** The image as these helpers take it: TemplateImage (../template.ts, where each property is
 *  documented) without the docs; TemplateImage must fit it (an algorithm the table lacks fails). */
export interface ImageSource {
  url: string;
  checksum?: string;
  checksumAlgorithm?: keyof typeof CHECKSUM_HEX_DIGITS;
  fileName?: string;
  storage?: string;
}

/**
 * The file name PVE accepts in `import` content for this image. Without an explicit fileName
 * it carries a short hash of the URL and checksum, so a different image never reuses a file
 * downloaded for another one (the download is skipped when the file is already there).
 */
export function importFileName(image: ImageSource): string {
  const ext = (name: string) => (/\.(qcow2|raw|vmdk|ova)$/i.exec(name)?.[0] ?? ".qcow2");
  if (image.fileName) {
    const safe = image.fileName.replace(/[^-a-zA-Z0-9_.]/g, "_");
    return /\.(qcow2|raw|vmdk|ova)$/i.test(safe) ? safe : `${safe.replace(/\.img$/i, "")}.qcow2`;
  }
  const base = path.posix.basename(new URL(image.url).pathname).replace(/[^-a-zA-Z0-9_.]/g, "_");
  const stem = base.replace(/\.(img|qcow2|raw|vmdk|ova)$/i, "") || "image";
  const tag = createHash("sha256").update(`${image.url}\n${image.checksum ?? ""}`).digest("hex").slice(0, 8);
  return `${stem}-${tag}${ext(base)}`;
}

/** The image's volume id in the import storage of `node`, downloaded first unless it is there. */
export async function ensureImage(ctx: VmContext, node: string, image: ImageSource): Promise<string> {
  const storage = image.storage ?? "local";
  const filename = importFileName(image);
  const volid = `${storage}:import/${filename}`;
  if (await holdsImport(ctx, node, storage, volid)) return volid;
  await runTask(ctx, () =>
    ctx.api.storage.downloadUrl(node, storage, {
      url: image.url,
      filename,
      content: "import",
      ...(image.checksum ? { checksum: image.checksum, checksumAlgorithm: image.checksumAlgorithm ?? "sha256" } : {}),
    }),
  );
  return volid;
}

/** Deletes the downloaded image `volid` from its import storage, unless it is gone already. */
export async function removeImage(ctx: VmContext, node: string, volid: string): Promise<void> {
  const storage = volid.split(":")[0];
  if (await holdsImport(ctx, node, storage, volid)) {
    await runTask(ctx, () => ctx.api.storage.deleteContent(node, storage, volid));
  }
}

async function holdsImport(ctx: VmContext, node: string, storage: string, volid: string): Promise<boolean> {
  const present = await ctx.api.storage.content(node, storage, { content: "import" });
  return present.some((e) => e.volid === volid);
}

/** check() of `image`: an object whose url is an http(s) URL, with a checksum that fits its
 *  algorithm, a plain file name and a storage id. Unknown values (preview) pass. */
export function checkImage(c: InputChecker, image: unknown): void {
  if (image === undefined || image === null || (typeof image === "string" && isUnknown(image))) return;
  if (typeof image !== "object" || Array.isArray(image)) {
    c.fail("image", `image must be an object { url, checksum?, checksumAlgorithm?, fileName?, storage? }, got ${Array.isArray(image) ? "a list" : typeof image}.`);
    return;
  }
  const img = image as Record<string, unknown>;
  const ic = new InputChecker(Object.fromEntries(IMAGE_KEYS.map((k) => [`image.${k}`, img[k]])));
  ic.string("image.url", {
    required: true,
    pattern: /^https?:\/\/\S+$/,
    describe: "an http(s) URL of the cloud image",
    rule: (v) => {
      try {
        new URL(v);
        return undefined;
      } catch {
        return "not a URL.";
      }
    },
  });
  const algorithm = ic.string("image.checksumAlgorithm", { oneOf: Object.keys(CHECKSUM_HEX_DIGITS) }) as keyof typeof CHECKSUM_HEX_DIGITS | undefined;
  const checksum = ic.string("image.checksum", { pattern: /^[0-9a-fA-F]+$/, describe: "a hex digest" });
  const algo = algorithm ?? (isUnknown(img.checksumAlgorithm) ? undefined : "sha256");
  if (checksum !== undefined && algo !== undefined && checksum.length !== CHECKSUM_HEX_DIGITS[algo]) {
    ic.fail("image.checksum", `image.checksum has ${checksum.length} hex digits; a ${algo} digest has ${CHECKSUM_HEX_DIGITS[algo]}${algorithm ? "" : " (sha256 is the default: set checksumAlgorithm if the digest is another)"}.`);
  }
  ic.string("image.fileName", { rule: (v) => (/[/\\]/.test(v) || v.startsWith(".") ? "a file name without '/' or '\\', not starting with '.', e.g. noble.qcow2." : undefined) });
  ic.string("image.storage", { pattern: pveNames.storageId, describe: "a storage id" });
  for (const k of Object.keys(img)) if (!IMAGE_KEYS.includes(k)) ic.fail(`image.${k}`, `image has no '${k}'; it takes ${IMAGE_KEYS.join(", ")}.`);
  for (const f of ic.failures) c.fail(f.property, f.reason);
}
