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
  const result = await (target[method] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
  return withoutUndefined(result);
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
