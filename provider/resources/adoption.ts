// `adopt: true`, the import route for objects a stack names by id (Pool, User, Role, Storage;
// VmClone has its own): Pulumi cannot import dynamic-provider resources, so create() takes the
// existing object under management instead of creating it. Shared rules:
// - create() fails clearly when there is nothing to adopt; without adopt, an object that
//   already exists fails with PVE's "already exists" and the hint to set adopt: true;
// - only DECLARED settings are managed: the ones a program leaves out are neither applied nor
//   compared (the state still reports them as read, so outputs tell the truth);
// - delete RELEASES an adopted object (it stays in PVE, untouched) unless destroyOnDelete:
//   true; an object the stack created is deleted unless destroyOnDelete: false;
// - changing `adopt` or `destroyOnDelete` later changes only what delete does: it updates in
//   place without an API call. (VmClone replaces on an `adopt` change; here a replacement
//   would delete or release the object and then fail to create or adopt the same id.)

import type { InputChecker } from "./check";
import { providerLogger } from "./context";
import { isUnknown, normalize, type FieldRule } from "./diff";
import type { BooleanField } from "./fields";
import { lookupDenied } from "./preview-access";

export interface Adoptable {
  /** Take the existing object under management instead of creating it. */
  adopt?: boolean;
  /** Delete the object when the resource is deleted. Default: true unless adopted. */
  destroyOnDelete?: boolean;
}

export const adoptionRules: { adopt: FieldRule; destroyOnDelete: FieldRule } = {
  adopt: { normalize: (v: unknown) => normalize.flag(v as boolean) || undefined }, // false is the default
  destroyOnDelete: { normalize: normalize.flag },
};

/** The field-table entries of `adopt` and `destroyOnDelete`; `what` names the object (`the existing pool \`poolid\``). */
export function adoptionFields(what: string): { adopt: BooleanField; destroyOnDelete: BooleanField } {
  return {
    adopt: {
      kind: "boolean",
      doc: `Take ${what} under management instead of creating it: the declared settings are applied, the others are left as they are.`,
      defaultDoc: "false",
      change: "behaviour",
      normalize: adoptionRules.adopt.normalize,
    },
    destroyOnDelete: {
      kind: "boolean",
      doc: "Delete the object when the resource is deleted; otherwise it is released (left in PVE, untouched).",
      defaultDoc: "true, or false for an adopted object",
      change: "behaviour",
      normalize: adoptionRules.destroyOnDelete.normalize,
    },
  };
}

export function destroysOnDelete(i: Adoptable | undefined): boolean {
  return i?.destroyOnDelete ?? i?.adopt !== true;
}

/** The management flags to carry from the inputs into the state. */
export function managementOf(i: Adoptable | undefined): Adoptable {
  const out: Adoptable = {};
  if (i?.adopt !== undefined) out.adopt = i.adopt;
  if (i?.destroyOnDelete !== undefined) out.destroyOnDelete = i.destroyOnDelete;
  return out;
}

/**
 * The old state and the new inputs as the diff compares them: destroyOnDelete with its default
 * filled in on both sides, and, for an adopted object, the `settings` the program does not
 * declare left out of the old state (they are not managed, so they are no change).
 */
export function comparable<S extends Adoptable, I extends Adoptable>(olds: S, news: I, settings: readonly string[]): { olds: S; news: I } {
  const o = { ...olds, destroyOnDelete: destroysOnDelete(olds) } as unknown as Record<string, unknown>;
  const n = { ...news, destroyOnDelete: destroysOnDelete(news) } as unknown as Record<string, unknown>;
  if (news.adopt === true) for (const k of settings) if (n[k] === undefined) delete o[k];
  return { olds: o as S, news: n as I };
}

/** For an adopted object, whether the program declares this setting (else it is left alone). */
export function manages<T extends Adoptable>(inputs: T, key: keyof T & string): boolean {
  return inputs.adopt !== true || inputs[key] !== undefined;
}

/** create() without adopt found the object there already. */
export function alreadyExistsError(kind: string, what: string, idProp: string, cause: Error): Error {
  return new Error(
    `${what} already exists. To manage it with this stack, set adopt: true on the ${kind}: the declared settings are applied to it, the others are left as they are, and deleting the resource leaves it in PVE (unless destroyOnDelete: true). Otherwise choose another ${idProp}. (${cause.message})`,
  );
}

/** create() with adopt found nothing. */
export function nothingToAdoptError(kind: string, what: string, idProp: string): Error {
  return new Error(`cannot adopt ${what}: it does not exist on the cluster. Fix ${idProp}, or remove adopt: true to have the ${kind} create it.`);
}

export function logReleased(what: string, adopted: boolean | undefined): void {
  providerLogger.info(`released ${what}: no longer managed by this stack, left in PVE as it is (${adopted ? "adopted" : "destroyOnDelete: false"})`);
}

/**
 * check() of `adopt: true` for an id new to the resource (a create, or an id change): create()
 * would fail when there is nothing to adopt, so the preview looks (read-only) and fails the same
 * way. A lookup the credentials may not make (403) is a warning; other API failures are left to
 * `up` (./preview-access.ts).
 */
export async function checkAdoptable(
  c: InputChecker,
  olds: Record<string, unknown> | undefined,
  news: Adoptable & Record<string, unknown>,
  target: { kind: string; idProp: string; what: (id: string) => string; read: (id: string) => Promise<unknown | undefined> },
): Promise<void> {
  const id = news[target.idProp];
  if (news.adopt !== true || typeof id !== "string" || isUnknown(id) || c.failures.length > 0) return;
  if (olds && olds[target.idProp] === id && olds.adopt === true) return; // adopted before: not looked up again
  let found: unknown;
  try {
    found = await target.read(id);
  } catch (err) {
    lookupDenied(target.what(id), err);
    return;
  }
  if (found === undefined) c.fail(target.idProp, nothingToAdoptError(target.kind, target.what(id), target.idProp).message);
}
