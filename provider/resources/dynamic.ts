// The serialisable side of a resource. Pulumi stores the provider object's source in the state
// and runs that copy later (read, delete), so the stub captures nothing but two strings and
// require()s the implementation by package name when a method runs (docs/dynamic-provider-notes.md).
// Module paths named here are a stable API: old states keep naming them.

import type * as pulumi from "@pulumi/pulumi";

export interface Lifecycle<Inputs = any, State = any> {
  check(olds: Partial<State>, news: Inputs): Promise<pulumi.dynamic.CheckResult<Inputs>>;
  diff(id: string, olds: State, news: Inputs): Promise<pulumi.dynamic.DiffResult>;
  create(inputs: Inputs): Promise<{ id: string; outs: State }>;
  read(id: string, props?: State): Promise<pulumi.dynamic.ReadResult<State>>;
  update(id: string, olds: State, news: Inputs): Promise<{ outs: State }>;
  delete(id: string, props: State): Promise<void>;
}

/** `modulePath` is relative to the package's dist/ (e.g. `provider/resources/pool.js`) and
 *  must export `exportName` as a Lifecycle. */
export function stubProvider(modulePath: string, exportName: string): pulumi.dynamic.ResourceProvider {
  const impl = `pulumi-pve/dist/${modulePath}`;
  const lifecycle = exportName;
  return {
    async configure(req) {
      require("pulumi-pve/dist/provider/resources/context.js").configure(req.config);
    },
    async check(olds, news) {
      return require(impl)[lifecycle].check(olds, news);
    },
    async diff(id, olds, news) {
      return require(impl)[lifecycle].diff(id, olds, news);
    },
    async create(inputs) {
      return require(impl)[lifecycle].create(inputs);
    },
    async read(id, props) {
      return require(impl)[lifecycle].read(id, props);
    },
    async update(id, olds, news) {
      return require(impl)[lifecycle].update(id, olds, news);
    },
    async delete(id, props) {
      return require(impl)[lifecycle].delete(id, props);
    },
  };
}
