// One declaration per property. Each resource describes its properties once, in a field table
// (provider/resources/fields/<resource>.ts): the type, the check, the default, the unit,
// whether a change replaces the resource, how PVE normalises the value, and the doc text. From
// that table come the Args, Inputs and State types and the outputs of the resource class
// (generated into provider/resources/generated/ by `npm run generate`), the generic part of
// check() (checkFields), the diff rules (diffRulesOf), the defaults (withDefaults) and the
// README's property tables. docs/resource-conventions.md shows a property added end to end.
//
// Tables are plain data but for the few functions PVE's grammar needs (a rule, a normaliser):
// a generated schema for other languages or documentation can be built from them later.

import type { InputChecker } from "./check";
import type { DiffRules, FieldRule } from "./diff";

/** How a change to the property reaches PVE. */
export type ChangeMode =
  /** in place (the default) */
  | "updates"
  /** the resource is replaced */
  | "replaces"
  /** the VM moves to another node (in place for Pulumi) */
  | "migrates"
  /** nothing reaches PVE: only what the provider does later (delete, waits) changes */
  | "behaviour";

/** Who sets the property. */
export type FieldRole =
  /** the program (an input; Args, Inputs and State carry it) */
  | "input"
  /** the program, resolved by the resource class into other properties (Args only) */
  | "args"
  /** the resource class, not the user (Inputs and State carry it, Args do not) */
  | "internal"
  /** the provider (State only; an output of the resource class) */
  | "output";

interface FieldBase {
  /** The doc text: one or two sentences, without the default, unit and change mode (those are
   *  added from the fields below). */
  doc: string;
  role?: FieldRole;
  /** Args: the program must set it. */
  required?: boolean;
  /** Always present after check() (a default applies, or it is required); `"state"`: optional
   *  in Inputs, always present in State (an allocated id). */
  present?: boolean | "state";
  change?: ChangeMode;
  /** Applied by check() when the program leaves it out. */
  default?: string | number | boolean;
  /** The default in words, when it is not a constant ("the template's"). */
  defaultDoc?: string;
  unit?: string;
  /** Brings a value into the form PVE stores, so a cosmetic difference is no change. */
  normalize?: (value: any) => unknown;
  /** How PVE normalises it, in words (for the documentation). */
  normalizeDoc?: string;
  /** The PVE API parameter (or VM config key) it is written to, where it maps one to one. */
  pve?: string;
  /** What PVE takes to clear it when the program leaves it out (`""` for a text, 0, ...); without
   *  it, a property left out is not sent. */
  pveClear?: string | number | boolean;
  /** The resource's diff() compares it itself (a member set, a plan): left out of diffRulesOf. */
  diffedBy?: "resource";
  /** The value is a secret (an output listed in additionalSecretOutputs, or a secret input). */
  secret?: boolean;
}

export interface StringField extends FieldBase {
  kind: "string";
  pattern?: RegExp;
  /** What `pattern` accepts, in words. */
  describe?: string;
  maxLength?: number;
  oneOf?: readonly string[];
  /** A reason the value is invalid, or undefined. */
  rule?: (value: string) => string | undefined;
  /** The TypeScript type when narrower than `string` (a union of literals). */
  type?: string;
}

export interface IntegerField extends FieldBase {
  kind: "integer";
  min?: number;
  max?: number;
}

export interface BooleanField extends FieldBase {
  kind: "boolean";
}

export interface ListField extends FieldBase {
  kind: "list";
  /** The TypeScript type of an item. */
  of: string;
  nonEmpty?: boolean;
  /** A reason the item is invalid, or undefined. */
  item?: (value: any, index: number) => string | undefined;
}

/** Anything else: an object or a union. Its check is written by the resource (or `check`). */
export interface CustomField extends FieldBase {
  kind: "custom";
  /** The TypeScript type in Inputs/State. */
  type: string;
  /** The TypeScript type in Args, when it is not `pulumi.Input<type>`. */
  argsType?: string;
  check?: (c: InputChecker, property: string) => unknown;
}

export type Field = StringField | IntegerField | BooleanField | ListField | CustomField;

export interface ResourceTable {
  /** The class name (`Pool`). */
  resource: string;
  /** The module under provider/resources/ (`pool`): stable, old states name it. */
  module: string;
  /** The class's doc comment. */
  summary: string;
  /** The Args interface's doc comment. */
  argsDoc: string;
  /** What the id is, with an example. */
  id: string;
  /** Type imports the generated module needs: module path (relative to generated/) -> names. */
  imports?: Record<string, string[]>;
  /** The properties, in the order the documentation shows them. */
  fields: Record<string, Field>;
}

/** Declares a table; checks at load time that it is coherent (a default on a required field...). */
export function table<T extends ResourceTable>(t: T): T {
  for (const [name, f] of Object.entries(t.fields)) {
    const where = `${t.resource}.${name}`;
    if (f.role === "output" && (f.required || f.default !== undefined || f.change)) throw new Error(`${where}: an output has no requirement, default or change mode`);
    if (f.required && f.default !== undefined) throw new Error(`${where}: a required property has no default`);
  }
  return t;
}

export function inputNames(t: ResourceTable): string[] {
  return Object.keys(t.fields).filter((k) => t.fields[k].role !== "output" && t.fields[k].role !== "args");
}

export function outputNames(t: ResourceTable): string[] {
  return Object.keys(t.fields).filter((k) => t.fields[k].role === "output");
}

/** The diff rules of every input (internal ones included). */
export function diffRulesOf<I>(t: ResourceTable): DiffRules<I> {
  const rules: Record<string, FieldRule> = {};
  for (const name of inputNames(t)) {
    const f = t.fields[name];
    if (f.diffedBy === "resource") continue;
    const rule: FieldRule = {};
    if (f.change === "replaces") rule.replaces = true;
    if (f.normalize) rule.normalize = f.normalize;
    rules[name] = rule;
  }
  return rules as DiffRules<I>;
}

/**
 * Runs the check every field declares (type, pattern, range, items) on the program's inputs
 * (`c` holds them) and returns the valid, known values by name. Outputs, and what the class
 * resolves into other properties (`args`), are not checked. Cross-field rules stay in the resource's check().
 */
export function checkFields(c: InputChecker, t: ResourceTable): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(t.fields)) {
    if (f.role === "output" || f.role === "args") continue;
    const required = f.required ?? false;
    let value: unknown;
    switch (f.kind) {
      case "string":
        value = c.string(name, { required, pattern: f.pattern, describe: f.describe, maxLength: f.maxLength, oneOf: f.oneOf, rule: f.rule });
        break;
      case "integer":
        value = c.integer(name, { required, min: f.min, max: f.max });
        break;
      case "boolean":
        value = c.boolean(name, { required });
        break;
      case "list":
        value = c.list(name, { required, nonEmpty: f.nonEmpty, item: f.item });
        break;
      case "custom":
        value = f.check?.(c, name);
        break;
    }
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** The inputs with every declared constant default filled in where the program left it out. */
export function withDefaults<I extends object>(t: ResourceTable, inputs: I): I {
  const out = { ...inputs } as Record<string, unknown>;
  for (const [name, f] of Object.entries(t.fields)) {
    if (f.default !== undefined && (out[name] === undefined || out[name] === null)) out[name] = f.default;
  }
  return out as I;
}

/** The declared default of a property (for code that needs it outside check()). */
export function defaultOf<T extends string | number | boolean>(t: ResourceTable, name: string): T {
  const d = t.fields[name]?.default;
  if (d === undefined) throw new Error(`${t.resource}.${name} has no default`);
  return d as T;
}

/**
 * The API parameters of the properties that map one to one (`pve`), named `names` (default:
 * all of them): the input's value, or its `pveClear` value when the program left it out.
 */
export function pveParams(t: ResourceTable, inputs: object, names: readonly string[] = Object.keys(t.fields)): Record<string, unknown> {
  const values = inputs as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const f = t.fields[name];
    if (!f?.pve) continue;
    const value = values[name] ?? f.pveClear;
    if (value !== undefined) out[f.pve] = value;
  }
  return out;
}

/** The output properties, undefined: what the class passes so the engine knows them as outputs. */
export function outputSlots(t: ResourceTable): Record<string, undefined> {
  return Object.fromEntries(outputNames(t).map((k) => [k, undefined]));
}
