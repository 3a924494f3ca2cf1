// Small helpers shared by the access and placement resources (Pool, User, ApiToken, Role,
// UserRoleBinding, PermissionCheck). Nothing here talks to Proxmox.

import type * as pulumi from "@pulumi/pulumi";
import { isUnknown } from "../diff";

export { gone } from "../read-result";

/** Sorted, de-duplicated copy. In a list holding unknown values (preview) the known ones are
 *  still sorted, and the unknown ones follow them: the preview then compares each known value
 *  with its counterpart in the (sorted) state instead of showing a reordering as changes. */
export function sortedSet<T extends string | number>(values: readonly T[] | undefined): T[] | undefined {
  if (values === undefined) return undefined;
  if (!Array.isArray(values)) return values as unknown as T[]; // an unknown list (preview): as it is
  const known = [...new Set(values.filter((v) => !isUnknown(v)))];
  known.sort((a, b) => (typeof a === "number" && typeof b === "number" ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
  return [...known, ...values.filter((v) => isUnknown(v))];
}

export function difference<T>(a: readonly T[] | undefined, b: readonly T[] | undefined): T[] {
  const drop = new Set(b ?? []);
  return (a ?? []).filter((x) => !drop.has(x));
}

export function intersection<T>(a: readonly T[] | undefined, b: readonly T[] | undefined): T[] {
  const keep = new Set(b ?? []);
  return (a ?? []).filter((x) => keep.has(x));
}

/** "a, b and c" */
export function listText(items: readonly (string | number)[]): string {
  const s = items.map(String);
  if (s.length <= 1) return s.join("");
  return `${s.slice(0, -1).join(", ")} and ${s[s.length - 1]}`;
}

/** An empty string is how PVE clears a text field; it reads back as absent. */
export function emptyToUndefined(value: string | undefined | null): string | undefined {
  return value === undefined || value === null || value === "" ? undefined : value;
}

/** The user's resource options with our secret outputs added (never replacing theirs). */
export function withSecretOutputs(opts: pulumi.CustomResourceOptions | undefined, names: string[]): pulumi.CustomResourceOptions {
  const theirs = opts?.additionalSecretOutputs ?? [];
  return { ...opts, additionalSecretOutputs: [...new Set([...theirs, ...names])] };
}

/** Drops keys whose value is undefined (state stays small and compares cleanly). */
export function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/** read()'s answer: the state, and the inputs the next diff compares the program with. */
export function readResult<S, I extends object>(id: string, props: S, inputs: I): pulumi.dynamic.ReadResult<S> {
  return { id, props: compact(props as object) as S, inputs: compact(inputs) as unknown as S };
}
