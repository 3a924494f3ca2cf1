// Parameter validation after pve-common JSONSchema.pm `validate` / `check_prop` /
// `check_type` / `check_format`, against OUR route definitions (types.ts ParamDef).
// Collects every error, then throws 400 `Parameter verification failed.` with `errors`.
// Returns typed values: integers and numbers as numbers, booleans as 0/1 numbers.

import { ParamDef, ParamDefs, paramError } from "./types";
import { parseHotplugFeatures } from "./qemu-config";

/** Where a parameter came from: form/query values are strings; JSON keeps its types. */
export type RawValue = string | number | boolean | null | unknown[] | Record<string, unknown>;

export function splitList(value: string): string[] {
  return value.split(/[\s,;\0]+/).filter((s) => s !== "");
}

const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;
const NODE_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/;
const STORAGE_RE = /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i;
const USER_RE = /^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+$/;
const ROLE_RE = /^[A-Za-z0-9.\-_]+$/;
const GROUP_RE = /^[A-Za-z0-9.\-_]+$/;
const CONFIGID_RE = /^[a-z][a-z0-9_-]+$/i;
const REALM_RE = /^[A-Za-z][A-Za-z0-9.\-_]+$/;
const POOL_RE = /^[A-Za-z][A-Za-z0-9.\-_]*(\/[A-Za-z][A-Za-z0-9.\-_]*){0,2}$/;
const DNS_LABEL = "[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?";
const DNS_RE = new RegExp(`^(${DNS_LABEL}\\.)*${DNS_LABEL}$`);
const EMAIL_RE = /^[-_a-zA-Z0-9.+]+@[-a-zA-Z0-9.]+$/;
const TAG_RE = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

/** Single-value format checks; each returns an error text (without `invalid format - `). */
const FORMATS: Record<string, (v: string) => string | undefined> = {
  "pve-vmid": (v) => (/^[1-9][0-9]{2,8}$/.test(v) ? undefined : "value does not look like a valid VM ID"),
  "pve-node": (v) => (NODE_RE.test(v) || IPV4.test(v) ? undefined : "value does not look like a valid node name"),
  "pve-storage-id": (v) => (STORAGE_RE.test(v) ? undefined : `storage ID '${v}' contains illegal characters`),
  "pve-poolid": (v) => (POOL_RE.test(v) ? undefined : `pool name '${v}' contains invalid characters`),
  "pve-userid": (v) => {
    if (v.length > 64) return `user name '${v}' is too long`;
    return USER_RE.test(v) ? undefined : `value '${v}' does not look like a valid user name`;
  },
  "pve-tokenid": (v) => (/^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$/.test(v) ? undefined : `value '${v}' does not look like a valid token ID`),
  "pve-roleid": (v) => (ROLE_RE.test(v) ? undefined : `role name '${v}' contains invalid characters`),
  "pve-groupid": (v) => (GROUP_RE.test(v) ? undefined : `group name '${v}' contains invalid characters`),
  "pve-configid": (v) => (CONFIGID_RE.test(v) ? undefined : `invalid configuration ID '${v}'`),
  "pve-realm": (v) => (REALM_RE.test(v) ? undefined : `realm name '${v}' contains invalid characters`),
  "dns-name": (v) => (DNS_RE.test(v) ? undefined : `value does not look like a valid DNS name`),
  urlencoded: (v) => (/^[-%a-zA-Z0-9_.!~*'()]*$/.test(v) ? undefined : `invalid urlencoded string: ${v}`),
  email: (v) => (EMAIL_RE.test(v) ? undefined : "value does not look like a valid email address"),
  "email-opt": (v) => (v === "" || EMAIL_RE.test(v) ? undefined : "value does not look like a valid email address"),
  "pve-tag": (v) => (TAG_RE.test(v) ? undefined : `invalid characters in tag '${v}'`),
  // QEMU QemuServer.pm `pve_verify_hotplug_features` → `parse_hotplug_features`
  "pve-hotplug-features": (v) => {
    try {
      parseHotplugFeatures(v);
      return undefined;
    } catch (e: any) {
      return e.message;
    }
  },
};

/** Formats that are lists of another format. */
const LIST_FORMATS: Record<string, string> = {
  "pve-vmid-list": "pve-vmid",
  "pve-storage-id-list": "pve-storage-id",
  "pve-userid-list": "pve-userid",
  "pve-tokenid-list": "pve-tokenid",
  "pve-roleid-list": "pve-roleid",
  "pve-groupid-list": "pve-groupid",
  "pve-configid-list": "pve-configid",
  "pve-tag-list": "pve-tag",
  "pve-node-list": "pve-node",
};

/** Formats we know and check; anything else (property strings) the handler checks. */
export function knownFormat(format: string): boolean {
  return format in FORMATS || format in LIST_FORMATS;
}

export function checkFormat(format: string, value: string): string | undefined {
  const single = FORMATS[format];
  if (single) {
    const e = single(value);
    return e === undefined ? undefined : `invalid format - ${e}`;
  }
  const item = LIST_FORMATS[format];
  if (item) {
    if (format === "pve-tag-list" && value.trim() === "") return "invalid format - tag list is empty";
    for (const v of splitList(value)) {
      const e = FORMATS[item](v);
      if (e !== undefined) return `invalid format - ${e}`;
    }
  }
  return undefined;
}

function typeError(type: string, got: unknown): string {
  return `type check ('${type}') failed - got '${typeof got === "object" ? JSON.stringify(got) : String(got)}'`;
}

/** Checks one value; returns [error] or [undefined, coerced]. */
export function checkValue(def: ParamDef, raw: RawValue): [string | undefined, unknown?] {
  let value: unknown = raw;
  switch (def.type) {
    case "boolean": {
      if (raw === true || raw === false) value = raw ? 1 : 0;
      else if (raw === 1 || raw === 0 || raw === "1" || raw === "0") value = Number(raw);
      else return [typeError("boolean", raw)];
      break;
    }
    case "integer": {
      if (typeof raw === "number" && Number.isInteger(raw)) value = raw;
      else if (typeof raw === "string" && /^[+-]?\d+$/.test(raw)) value = Number(raw);
      else return [typeError("integer", raw)];
      break;
    }
    case "number": {
      if (typeof raw === "number") value = raw;
      else if (typeof raw === "string" && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) value = Number(raw);
      else return [typeError("number", raw)];
      break;
    }
    case "string": {
      if (typeof raw === "string") value = raw;
      else if (typeof raw === "number") value = String(raw);
      else return [typeError("string", raw)];
      break;
    }
    case "array": {
      if (!Array.isArray(raw)) return [typeError("array", raw)];
      break;
    }
    case "object": {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return [typeError("object", raw)];
      break;
    }
  }
  if (typeof value === "number") {
    if (def.minimum !== undefined && value < def.minimum) return [`value must have a minimum value of ${def.minimum}`];
    if (def.maximum !== undefined && value > def.maximum) return [`value must have a maximum value of ${def.maximum}`];
  }
  if (def.enum && !def.enum.includes(String(value))) {
    return [`value '${String(value)}' does not have a value in the enumeration '${def.enum.join(", ")}'`];
  }
  if (typeof value === "string") {
    if (def.maxLength !== undefined && value.length > def.maxLength) return [`value may only be ${def.maxLength} characters long`];
    if (def.minLength !== undefined && value.length < def.minLength) return [`value must be at least ${def.minLength} characters long`];
    if (def.pattern !== undefined && !new RegExp(`^(?:${def.pattern})$`).test(value)) return [`value does not match the regex pattern`];
  }
  if (def.format && (typeof value === "string" || typeof value === "number")) {
    const e = checkFormat(def.format, String(value));
    if (e) return [e];
  }
  return [undefined, value];
}

/** Validates merged request parameters against `defs`; throws 400 on any error. */
export function validateParams(defs: ParamDefs, input: Record<string, RawValue>): Record<string, any> {
  const errors: Record<string, string> = {};
  const out: Record<string, any> = {};
  for (const [name, raw] of Object.entries(input)) {
    // Indexed schema properties (`net[n]`, `scsi[n]`) accept `net0`, `scsi1`, ... (cluster part).
    const indexed = /^([a-z]+)(\d+)$/.exec(name);
    const def = defs[name] ?? (indexed ? defs[`${indexed[1]}[n]`] : undefined);
    if (!def) {
      errors[name] = "property is not defined in schema and the schema does not allow additional properties";
      continue;
    }
    if (raw === null || raw === undefined) continue;
    const [err, value] = checkValue(def, raw);
    if (err) errors[name] = err;
    else out[name] = value;
  }
  for (const [name, def] of Object.entries(defs)) {
    if (!def.optional && (input[name] === undefined || input[name] === null) && !errors[name]) {
      errors[name] = "property is missing and it is not optional";
    }
    if (def.requires && input[name] !== undefined && input[def.requires] === undefined && !errors[def.requires]) {
      errors[def.requires] = `property is missing and it is not optional`;
    }
  }
  if (Object.keys(errors).length) throw paramError(errors);
  return out;
}
