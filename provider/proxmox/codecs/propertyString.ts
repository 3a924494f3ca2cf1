import { toBool } from "../coerce";

/**
 * PVE property strings: `key=value` pairs separated by commas, where the schema's default key
 * may be written as a bare value (`local-lvm:vm-100-disk-0,size=32G`, `1,fstrim_cloned_disks=1`).
 * Values may be double-quoted to contain commas.
 */
export type PropertyEntry = [key: string, value: string | undefined];

export function splitPropertyString(text: string): PropertyEntry[] {
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (ch === "," && !quoted) {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts
    .filter((p) => p.length > 0)
    .map((p) => {
      const eq = p.indexOf("=");
      return eq < 0 ? [p, undefined] : [p.slice(0, eq), p.slice(eq + 1)];
    });
}

export function joinPropertyString(entries: PropertyEntry[]): string {
  return entries.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join(",");
}

export type FieldType = "string" | "boolean" | "integer" | "number";

export interface PropertySpec {
  /** The key that may be written without `key=`. */
  defaultKey?: string;
  fields: Record<string, FieldType>;
}

/** What every parsed property string carries besides its typed fields. */
export interface PropertyExtras {
  /** Keys this codec does not type, kept verbatim (null: a bare word without `=`). */
  extra?: Record<string, string | null>;
  /** The order keys appeared in, so formatting gives back the same string. */
  keyOrder?: string[];
  /** The default key was written as `key=value`, not bare. */
  defaultKeyExplicit?: boolean;
}

export type PropertyValue = string | number | boolean;

function convert(type: FieldType, raw: string): PropertyValue | undefined {
  switch (type) {
    case "boolean":
      return toBool(raw);
    case "integer":
      return /^-?\d+$/.test(raw) ? Number(raw) : undefined;
    case "number":
      return /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : undefined;
    default:
      return raw;
  }
}

function render(value: PropertyValue): string {
  if (typeof value === "boolean") return value ? "1" : "0";
  return String(value);
}

/** Parses into typed fields plus extras; values that do not fit their type are kept verbatim in `extra`. */
export function parseWithSpec(entries: PropertyEntry[], spec: PropertySpec): Record<string, unknown> & PropertyExtras {
  const out: Record<string, unknown> & PropertyExtras = {};
  const order: string[] = [];
  const extra: Record<string, string | null> = {};
  for (const [rawKey, rawValue] of entries) {
    let key = rawKey;
    let value = rawValue;
    if (value === undefined && spec.defaultKey && !(spec.defaultKey in out)) {
      value = rawKey;
      key = spec.defaultKey;
    } else if (key === spec.defaultKey) {
      out.defaultKeyExplicit = true;
    }
    order.push(key);
    const type = spec.fields[key];
    const typed = type && value !== undefined ? convert(type, value) : undefined;
    if (typed !== undefined) out[key] = typed;
    else extra[key] = value ?? null;
  }
  if (Object.keys(extra).length) out.extra = extra;
  out.keyOrder = order;
  return out;
}

/** Formats typed fields and extras: first in `keyOrder`, then the rest the way PVE prints (default key, then sorted). */
export function formatWithSpec(value: PropertyExtras, spec: PropertySpec, skip: ReadonlySet<string> = new Set()): PropertyEntry[] {
  const obj = value as Record<string, unknown> & PropertyExtras;
  const present = new Map<string, string | undefined>();
  for (const [key, value] of Object.entries(obj)) {
    if (key === "extra" || key === "keyOrder" || key === "defaultKeyExplicit" || skip.has(key)) continue;
    if (value === undefined || value === null) continue;
    if (!(key in spec.fields)) continue;
    present.set(key, render(value as PropertyValue));
  }
  for (const [key, value] of Object.entries(obj.extra ?? {})) {
    if (!present.has(key)) present.set(key, value ?? undefined);
  }
  const canonical = [...present.keys()].filter((k) => k !== spec.defaultKey).sort();
  if (spec.defaultKey && present.has(spec.defaultKey)) canonical.unshift(spec.defaultKey);
  const order = [...(obj.keyOrder ?? []).filter((k) => present.has(k)), ...canonical];
  const seen = new Set<string>();
  const entries: PropertyEntry[] = [];
  for (const key of order) {
    if (seen.has(key)) continue;
    seen.add(key);
    const value = present.get(key);
    if (key === spec.defaultKey && !obj.defaultKeyExplicit && value !== undefined) entries.push([value, undefined]);
    else entries.push([key, value]);
  }
  return entries;
}

/** A property string without its key order and spelling: the form to compare two values by. */
export function canonicalOrder<T extends PropertyExtras>(value: T): T {
  const { keyOrder: _order, defaultKeyExplicit: _explicit, ...rest } = value;
  return rest as T;
}
