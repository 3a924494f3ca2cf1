// One diff for every resource: each resource declares, per input, whether a change replaces
// it and how PVE normalises the value; this module derives Pulumi's DiffResult from that.
// Nothing here talks to Proxmox, so `pulumi preview` of unchanged inputs costs no API call.

/** The value the engine substitutes for inputs that are not known yet during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export interface FieldRule {
  /** A change to this input replaces the resource instead of updating it in place. */
  replaces?: boolean;
  /** Bring a value into the form PVE stores, so cosmetic differences are no change. */
  normalize?: (value: any) => unknown;
}

/** Every input of a resource with its rule; `{}` means "updates in place, compared as is". */
export type DiffRules<I> = { [K in keyof I]-?: FieldRule };

export interface ResourceDiff {
  changes: boolean;
  replaces: string[];
  /** Inputs that change (in place or by replacement), for messages and tests. */
  changed: string[];
  deleteBeforeReplace?: boolean;
}

export interface DiffOptions<I> {
  /** Replacement must delete first when the new resource would collide with the old one
   *  (same pool id, same user id, same explicit VMID...). */
  deleteBeforeReplace?: (olds: Partial<I>, news: Partial<I>) => boolean;
}

export function isUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(isUnknown);
  if (value !== null && typeof value === "object") return Object.values(value).some(isUnknown);
  return false;
}

/** Compare old state with new inputs field by field, after normalisation. */
export function diffResource<I extends object>(
  rules: DiffRules<I>,
  olds: Partial<I>,
  news: Partial<I>,
  options: DiffOptions<I> = {},
): ResourceDiff {
  const changed: string[] = [];
  const replaces: string[] = [];
  for (const key of Object.keys(rules) as (keyof I & string)[]) {
    const rule: FieldRule = rules[key];
    const next = news[key];
    const prev = olds[key];
    const differs = isUnknown(next) || !sameValue(normalized(rule, prev), normalized(rule, next));
    if (!differs) continue;
    changed.push(key);
    if (rule.replaces) replaces.push(key);
  }
  const result: ResourceDiff = { changes: changed.length > 0, replaces, changed };
  if (replaces.length > 0 && options.deleteBeforeReplace?.(olds, news)) {
    result.deleteBeforeReplace = true;
  }
  return result;
}

function normalized(rule: FieldRule, value: unknown): unknown {
  if (value === undefined || value === null) return undefined;
  return rule.normalize ? rule.normalize(value) : value;
}

/** Deep equality where a missing key, `undefined` and `null` are the same thing. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || a === null) return b === undefined || b === null;
  if (b === undefined || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => sameValue(item, b[i]));
  }
  if (typeof a === "object" && typeof b === "object") {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    for (const key of keys) {
      if (!sameValue((a as any)[key], (b as any)[key])) return false;
    }
    return true;
  }
  return false;
}

/** Normalisers for the ways PVE rewrites values. */
export const normalize = {
  /** PVE sorts, lower-cases and de-duplicates tags. */
  tags(value: string[] | string): string[] {
    const list = Array.isArray(value) ? value : value.split(/[;, ]+/);
    return [...new Set(list.map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0))].sort();
  },
  /** An unordered set of strings (pool members, groups, privileges). */
  stringSet(value: (string | number)[]): string[] {
    return [...new Set(value.map(String))].sort();
  },
  macAddress(value: string): string {
    return value.toUpperCase();
  },
  /** PVE stores booleans as 0/1. */
  flag(value: boolean | number | string): boolean {
    return value === true || value === 1 || value === "1";
  },
};
