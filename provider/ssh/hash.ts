import { createHash } from "crypto";

/** SHA-256 of snippet content as lower-case hex: what the transport verifies and the resource stores. */
export function sha256Hex(content: string | Uint8Array): string {
  return createHash("sha256").update(typeof content === "string" ? Buffer.from(content, "utf8") : content).digest("hex");
}

/** Content as the bytes that are written: strings are UTF-8. */
export function contentBytes(content: string | Uint8Array): Buffer {
  return typeof content === "string" ? Buffer.from(content, "utf8") : Buffer.from(content);
}
