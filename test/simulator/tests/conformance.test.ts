// Every registered route (core and cluster part) against BOTH official schema dumps:
// path+method exist, every parameter we accept exists there with a compatible type, every
// parameter required there is required here, the permission checks name the same
// privileges, allowtoken agrees. Also: our built-in roles against builtin-roles.json.
// Reads the reference from PVE_API_DIR (default <repo>/../shared/pve-api); fails when absent.

import * as fs from "fs";
import * as path from "path";
import { buildSim } from "../index";
import { builtinRolesFor, privilegesFor } from "../roles";
import type { PveVersion } from "../sim";
import { ParamDef, RouteDef } from "../types";
import { pveApiDir, readApiJson } from "./core-http";

type SchemaInfo = {
  parameters?: { properties?: Record<string, any> };
  permissions?: { check?: unknown[]; user?: string };
  allowtoken?: number;
};

/** Documented differences between our routes and a schema version. Key: "METHOD path".
 *  `route`: why the route may be absent; `params`: parameter → why it may be absent. */
const ALLOW: Record<PveVersion, Record<string, { route?: string; params?: Record<string, string> }>> = {
  "9.1": {},
  "8.4": {},
};

function indexSchema(file: string): Map<string, SchemaInfo> {
  const tree = readApiJson(file) as any[];
  const out = new Map<string, SchemaInfo>();
  const walk = (n: any) => {
    for (const [m, info] of Object.entries(n.info ?? {})) out.set(`${m} ${n.path}`, info as SchemaInfo);
    for (const c of n.children ?? []) walk(c);
  };
  tree.forEach(walk);
  return out;
}

function schemaParam(props: Record<string, any>, name: string): any {
  if (props[name]) return props[name];
  for (const [k, v] of Object.entries(props)) {
    const m = /^(.*)\[n\]$/.exec(k);
    if (m && new RegExp(`^${m[1].replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\d+$`).test(name)) return v;
  }
  return undefined;
}

/** Privilege names mentioned in a check expression. */
function privsIn(check: unknown): string[] {
  if (!Array.isArray(check)) return [];
  const [op] = check;
  if (op === "perm") return [...(check[2] as string[])];
  if (op === "userid-group") return [...(check[1] as string[])];
  if (op === "userid-param") return check[1] === "self" ? [] : [String(check[1])];
  if (op === "and" || op === "or") return check.slice(1).flatMap(privsIn);
  if (op === "perm-modify") return ["(perm-modify)"];
  return [`(${String(op)})`];
}

function conformance(version: PveVersion, routes: RouteDef[], schema: Map<string, SchemaInfo>): string[] {
  const problems: string[] = [];
  const allow = ALLOW[version];
  for (const r of routes) {
    const key = `${r.method} ${r.path}`;
    const info = schema.get(key);
    if (!info) {
      if (!allow[key]?.route) problems.push(`${key}: not in schema-pve-${version}.json (add a reasoned entry to ALLOW["${version}"] if intended)`);
      continue;
    }
    const props = info.parameters?.properties ?? {};
    for (const [name, def] of Object.entries(r.params) as [string, ParamDef][]) {
      const sp = schemaParam(props, name);
      if (!sp) {
        if (!allow[key]?.params?.[name]) problems.push(`${key}: parameter '${name}' is not in the ${version} schema`);
        continue;
      }
      const st = sp.type ?? "string";
      if (st !== def.type) problems.push(`${key}: parameter '${name}' has type '${def.type}', schema says '${st}'`);
      if (def.enum && sp.enum) {
        const extra = def.enum.filter((v) => !sp.enum.includes(v));
        if (extra.length) problems.push(`${key}: parameter '${name}' accepts ${extra.join(", ")} not in the schema enum`);
      }
      if (typeof sp.format === "string" && def.format && def.format !== sp.format) {
        problems.push(`${key}: parameter '${name}' has format '${def.format}', schema says '${sp.format}'`);
      }
    }
    for (const [name, sp] of Object.entries(props) as [string, any][]) {
      if (sp.optional || /\[n\]$/.test(name)) continue;
      const def = r.params[name];
      if (!def) problems.push(`${key}: schema requires '${name}' but we do not accept it`);
      else if (def.optional) problems.push(`${key}: schema requires '${name}' but we declare it optional`);
    }
    const sperm = info.permissions ?? {};
    const ours = r.permissions ?? {};
    if (sperm.user && sperm.user !== ours.user) problems.push(`${key}: schema permissions.user '${sperm.user}', ours '${ours.user ?? "(none)"}'`);
    if (sperm.check) {
      const a = [...new Set(privsIn(sperm.check))].sort();
      const b = [...new Set(privsIn(ours.check))].sort();
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        problems.push(`${key}: schema check names [${a.join(", ")}], ours [${b.join(", ")}] (schema: ${JSON.stringify(sperm.check)})`);
      }
    }
    const schemaAllowsToken = info.allowtoken === undefined || info.allowtoken === 1;
    if (schemaAllowsToken !== (r.allowToken !== false)) problems.push(`${key}: allowtoken ${info.allowtoken} in schema, ours ${r.allowToken}`);
  }
  return problems;
}

describe.each(["9.1", "8.4"] as PveVersion[])("PVE %s", (version) => {
  const sim = buildSim({ pveVersion: version });
  const schema = indexSchema(`schema-pve-${version}.json`);
  afterAll(() => sim.runStopHooks());

  test("every registered route conforms to the schema", () => {
    expect(sim.routes.length).toBeGreaterThan(40);
    const problems = conformance(version, sim.routes, schema);
    expect(problems).toEqual([]);
  });

  test("the core's routes are all registered", () => {
    const keys = new Set(sim.routes.map((r) => `${r.method} ${r.path}`));
    for (const k of ["GET /version", "GET /pools", "PUT /pools", "DELETE /pools/{poolid}", "PUT /access/acl", "POST /access/ticket", "GET /access/permissions"]) {
      expect(keys.has(k)).toBe(true);
    }
  });

  test("built-in roles and privileges match builtin-roles.json", () => {
    const ref = readApiJson("builtin-roles.json")[version === "8.4" ? "pve8" : "pve9"];
    expect(privilegesFor(version)).toEqual([...ref.privileges].sort());
    const ours = builtinRolesFor(version);
    expect(Object.keys(ours).sort()).toEqual(Object.keys(ref.roles).sort());
    for (const [role, privs] of Object.entries(ref.roles) as [string, string[]][]) {
      expect({ role, privs: ours[role] }).toEqual({ role, privs: [...privs].sort() });
    }
  });
});

test("the conformance checker itself notices mismatches", () => {
  const schema = indexSchema("schema-pve-9.1.json");
  const bad: RouteDef[] = [
    { method: "GET", path: "/nope", params: {}, handler: () => null },
    {
      method: "POST",
      path: "/pools",
      params: { poolid: { type: "integer", optional: true }, extra: { type: "string" } },
      permissions: { check: ["perm", "/pool/{poolid}", ["Pool.Audit"]] },
      handler: () => null,
    },
  ];
  const problems = conformance("9.1", bad, schema).join("\n");
  expect(problems).toContain("GET /nope: not in schema");
  expect(problems).toContain("parameter 'extra' is not in the 9.1 schema");
  expect(problems).toContain("parameter 'poolid' has type 'integer'");
  expect(problems).toContain("schema requires 'poolid' but we declare it optional");
  expect(problems).toContain("schema check names [Pool.Allocate], ours [Pool.Audit]");
});

test("a missing PVE_API_DIR fails with where we looked and how to fix it", () => {
  const saved = process.env.PVE_API_DIR;
  const bogus = path.join(fs.realpathSync("/tmp"), "no-such-pve-api-dir");
  process.env.PVE_API_DIR = bogus;
  try {
    expect(() => pveApiDir()).toThrow(bogus);
    expect(() => pveApiDir()).toThrow(/Set PVE_API_DIR/);
  } finally {
    if (saved === undefined) delete process.env.PVE_API_DIR;
    else process.env.PVE_API_DIR = saved;
  }
});
