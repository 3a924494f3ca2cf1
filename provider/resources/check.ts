// Input validation for check(): each rule names the property and says how to fix it.
// Unknown values (preview, inputs from other resources) pass: they are checked when known.

import { VMID_MAX, VMID_MIN } from "../proxmox/vmid-allocator";
import { isUnknown } from "./diff";

export interface CheckFailure {
  property: string;
  reason: string;
}

type Present<T> = (value: T) => string | undefined;

/** Collects failures for one resource's inputs. Each method returns the value when it is
 *  present, known and valid, so callers can go on validating what depends on it. */
export class InputChecker {
  readonly failures: CheckFailure[] = [];

  constructor(readonly inputs: Record<string, any>) {}

  fail(property: string, reason: string): void {
    this.failures.push({ property, reason });
  }

  /** The raw value if present and known. Reports a failure when required and missing. */
  private value(property: string, required: boolean): unknown {
    const value = this.inputs[property];
    if (value === undefined || value === null || value === "") {
      if (required) this.fail(property, `${property} is required.`);
      return undefined;
    }
    return isUnknown(value) ? undefined : value;
  }

  string(
    property: string,
    opts: { required?: boolean; pattern?: RegExp; describe?: string; maxLength?: number; oneOf?: readonly string[]; rule?: Present<string> } = {},
  ): string | undefined {
    const value = this.value(property, opts.required ?? false);
    if (value === undefined) return undefined;
    if (typeof value !== "string") {
      this.fail(property, `${property} must be a string, got ${describeType(value)}.`);
      return undefined;
    }
    if (opts.maxLength !== undefined && value.length > opts.maxLength) {
      this.fail(property, `${property} must be at most ${opts.maxLength} characters, got ${value.length}.`);
      return undefined;
    }
    if (opts.oneOf && !opts.oneOf.includes(value)) {
      this.fail(property, `${property} must be one of ${opts.oneOf.join(", ")}; got '${value}'.`);
      return undefined;
    }
    if (opts.pattern && !opts.pattern.test(value)) {
      this.fail(property, `${property} '${value}' is not valid: expected ${opts.describe ?? `a value matching ${opts.pattern}`}.`);
      return undefined;
    }
    const problem = opts.rule?.(value);
    if (problem) {
      this.fail(property, `${property} '${value}' is not valid: ${problem}`);
      return undefined;
    }
    return value;
  }

  integer(property: string, opts: { required?: boolean; min?: number; max?: number } = {}): number | undefined {
    const value = this.value(property, opts.required ?? false);
    if (value === undefined) return undefined;
    const n = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isInteger(n)) {
      this.fail(property, `${property} must be an integer, got ${describeType(value)}.`);
      return undefined;
    }
    if (opts.min !== undefined && n < opts.min) {
      this.fail(property, `${property} must be at least ${opts.min}, got ${n}.`);
      return undefined;
    }
    if (opts.max !== undefined && n > opts.max) {
      this.fail(property, `${property} must be at most ${opts.max}, got ${n}.`);
      return undefined;
    }
    return n;
  }

  boolean(property: string, opts: { required?: boolean } = {}): boolean | undefined {
    const value = this.value(property, opts.required ?? false);
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") {
      this.fail(property, `${property} must be true or false, got ${describeType(value)}.`);
      return undefined;
    }
    return value;
  }

  /** A list whose items are each checked by `item` (which returns a reason or undefined). */
  list<T>(property: string, opts: { required?: boolean; nonEmpty?: boolean; item?: (v: T, index: number) => string | undefined } = {}): T[] | undefined {
    const value = this.value(property, opts.required ?? false);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) {
      this.fail(property, `${property} must be a list, got ${describeType(value)}.`);
      return undefined;
    }
    if (opts.nonEmpty && value.length === 0) {
      this.fail(property, `${property} must not be empty.`);
      return undefined;
    }
    let ok = true;
    value.forEach((item, index) => {
      if (isUnknown(item)) return;
      const problem = opts.item?.(item as T, index);
      if (problem) {
        this.fail(`${property}[${index}]`, problem);
        ok = false;
      }
    });
    return ok ? (value as T[]) : undefined;
  }

  /** Fails when more than one of the properties is set (or none, when one is required). */
  exclusive(properties: string[], opts: { required?: boolean } = {}): string | undefined {
    const set = properties.filter((p) => this.inputs[p] !== undefined && this.inputs[p] !== null);
    if (set.length > 1) {
      this.fail(set[1], `set only one of ${properties.join(", ")}; got ${set.join(" and ")}.`);
      return undefined;
    }
    if (set.length === 0 && opts.required) {
      this.fail(properties[0], `one of ${properties.join(", ")} is required.`);
    }
    return set[0];
  }

  result<T>(inputs: T): { inputs: T; failures: CheckFailure[] } {
    return { inputs, failures: this.failures };
  }
}

function describeType(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  if (typeof value === "string") return `'${value}'`;
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

/** PVE's identifier grammars (pve-access-control, pve-common JSONSchema). */
export const pveNames = {
  /** `pve-poolid`, nested up to 3 levels, each part starting with a letter. */
  poolid: /^[A-Za-z][A-Za-z0-9\-_]*(\/[A-Za-z][A-Za-z0-9\-_]*){0,2}$/,
  realm: /^[A-Za-z][A-Za-z0-9.\-_]+$/,
  /** `name@realm`: the name part has no whitespace, colon or slash. */
  userid: /^[^\s:/@]+@[A-Za-z][A-Za-z0-9.\-_]+$/,
  tokenName: /^[A-Za-z][A-Za-z0-9.\-_]+$/,
  roleid: /^[A-Za-z0-9.\-_]+$/,
  groupid: /^[A-Za-z0-9.\-_]+$/,
  storageId: /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i,
  node: /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/,
  /** `dns-name` (a VM's name): dot-separated labels of letters, digits and inner hyphens. */
  dnsName: /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/,
  /** `pve-tag`. */
  tag: /^[a-zA-Z0-9_][a-zA-Z0-9_\-+.]*$/,
};

/** The VMID range PVE accepts (`pve-vmid`). */
export const VMID_RANGE = { min: VMID_MIN, max: VMID_MAX } as const;

/** check() of a VM's `name` (`dns-name`). */
export function checkVmName(c: InputChecker): string | undefined {
  return c.string("name", { required: true, pattern: pveNames.dnsName, describe: "a DNS name (letters, digits, hyphens, dots)" });
}

/** check() of `tags` (`pve-tag` each). */
export function checkTags(c: InputChecker): string[] | undefined {
  return c.list<string>("tags", { item: (t) => (typeof t === "string" && pveNames.tag.test(t) ? undefined : `tag '${String(t)}' is not valid: letters, digits, _ - + . (not starting with - + .).`) });
}

/** A value that is present and known (not a preview's unknown). */
export function known<T>(v: T): v is NonNullable<T> {
  return v !== undefined && v !== null && !isUnknown(v);
}
