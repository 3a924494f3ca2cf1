// The serialisable side of a resource. Pulumi stores the provider object's source in the state
// and runs that copy later (read, delete), so the stub captures nothing but strings and
// require()s this package when a method runs (docs/dynamic-provider-notes.md). Everything
// else happens in `invoke` below, inside the installed package, so a fix there reaches
// resources created by older versions too. Module paths named here are a stable API.

import type * as pulumi from "@pulumi/pulumi";

export interface Lifecycle<Inputs = any, State = any> {
  check(olds: Partial<State>, news: Inputs): Promise<pulumi.dynamic.CheckResult<Inputs>>;
  diff(id: string, olds: State, news: Inputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: Inputs): Promise<{ id: string; outs: State }>;
  read(id: string, props?: State): Promise<pulumi.dynamic.ReadResult<State>>;
  update(id: string, olds: State, news: Inputs): Promise<{ outs: State }>;
  delete(id: string, props: State): Promise<void>;
}

type Method = keyof Lifecycle;

/** `modulePath` is relative to the package's dist/ (e.g. `provider/resources/pool.js`) and
 *  must export `exportName` as a Lifecycle. */
export function stubProvider(modulePath: string, exportName: string): pulumi.dynamic.ResourceProvider {
  // One object per lifecycle: the SDK caches a provider's serialisation by object identity, so a
  // fleet of N resources serialises its stub once instead of N times (BENCHMARKS.md).
  const key = `${modulePath}#${exportName}`;
  const cached = stubs.get(key);
  if (cached) return cached;
  const stub = makeStub(modulePath, exportName);
  stubs.set(key, stub);
  return stub;
}

const stubs = new Map<string, pulumi.dynamic.ResourceProvider>();

function makeStub(modulePath: string, exportName: string): pulumi.dynamic.ResourceProvider {
  const host = "pulumi-pve/dist/provider/resources/dynamic.js";
  const impl = `pulumi-pve/dist/${modulePath}`;
  const lifecycle = exportName;
  return {
    async configure(req) {
      require("pulumi-pve/dist/provider/resources/context.js").configure(req.config);
    },
    async check(olds, news) {
      return require(host).invoke(impl, lifecycle, "check", [olds, news]);
    },
    async diff(id, olds, news) {
      return require(host).invoke(impl, lifecycle, "diff", [id, olds, news]);
    },
    async create(inputs) {
      return require(host).invoke(impl, lifecycle, "create", [inputs]);
    },
    async read(id, props) {
      return require(host).invoke(impl, lifecycle, "read", [id, props]);
    },
    async update(id, olds, news) {
      return require(host).invoke(impl, lifecycle, "update", [id, olds, news]);
    },
    async delete(id, props) {
      return require(host).invoke(impl, lifecycle, "delete", [id, props]);
    },
  };
}

/** Runs one lifecycle method in the provider process. Results go to the engine as protobuf
 *  Structs, which cannot hold `undefined`: absent values are dropped here, once for all. */
export async function invoke(impl: string, lifecycle: string, method: Method, args: unknown[]): Promise<unknown> {
  const target = require(impl)[lifecycle] as Lifecycle;
  let result: unknown;
  try {
    result = await (target[method] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
    // A create announced by a preview (a clean check() of a resource without a state) must be
    // one `up` can carry out, and so must an update or a replacement: the API is tried
    // (./preview-access.ts). Bad input is reported first, without it.
    const failures = (result as pulumi.dynamic.CheckResult | undefined)?.failures ?? [];
    if (method === "check" && isEmpty(args[0]) && failures.length === 0) await reachable();
    if (method === "diff" && (result as pulumi.dynamic.DiffResult | undefined)?.changes === true) await reachable();
  } catch (err) {
    throw forEngine(err);
  }
  if (method === "diff") explainReplacement(lifecycle, String(args[0]), result as pulumi.dynamic.DiffResult | undefined);
  return withoutUndefined(result);
}

function isEmpty(olds: unknown): boolean {
  return olds === undefined || olds === null || (typeof olds === "object" && Object.keys(olds).length === 0);
}

function reachable(): Promise<void> {
  return (require("./preview-access") as typeof import("./preview-access")).ensureApiReachable();
}

/**
 * The error handed to the engine: its message only. The SDK's dynamic-provider host treats any
 * error with an `id` property as "created, but failed to initialise" (ErrorResourceInitFailed):
 * the engine then RECORDS the resource with that id and shows only "resource init failed". Our
 * PveTaskError has an `id` (the task's, e.g. the template's VMID for a clone), so a failed clone
 * would be recorded as a VM with the template's id, and a later destroy would delete the template.
 */
export function forEngine(err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  const out = new Error(message);
  if (err instanceof Error) out.name = err.name;
  // The host prints `${err}: ${err.stack}` for a failed check/diff/read/delete: an error meant for
  // the user (the API's, or one of ours saying what to fix) is shown without this package's stack
  // frames; a programming error keeps them.
  if (!(err instanceof TypeError || err instanceof ReferenceError || err instanceof RangeError || err instanceof SyntaxError)) out.stack = "";
  return out;
}

/** `pulumi preview --diff` marks a replacement (`+-`) but cannot say which property forces it
 *  (a dynamic provider's DiffResult carries no detailed diff), so say it here: the provider's
 *  stderr is shown among the stack's diagnostics. Property names only, never values (secrets). */
function explainReplacement(lifecycle: string, id: string, result: pulumi.dynamic.DiffResult | undefined): void {
  const keys = result?.replaces ?? [];
  if (!keys.length) return;
  const type = lifecycle.replace(/Lifecycle$/, "").replace(/^./, (c) => c.toUpperCase());
  process.stderr.write(`[pulumi-pve] ${type} ${id} will be replaced: ${keys.join(", ")} cannot change in place\n`);
}

export function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : withoutUndefined(v)));
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = withoutUndefined(v);
    return out;
  }
  return value;
}
