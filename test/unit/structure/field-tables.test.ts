// The field tables are the one declaration of each property: what is derived from them must
// match them (generated types and README tables up to date), and the derivations must do what
// the tables say (check, diff rules, defaults).

import * as fs from "fs";
import * as path from "path";
import { InputChecker } from "../../../provider/resources/check";
import { diffResource } from "../../../provider/resources/diff";
import { checkFields, defaultOf, diffRulesOf, outputSlots, pveParams, table, withDefaults, type ResourceTable } from "../../../provider/resources/fields";
import { docOf, generatedFiles, loadTables, renderReadme, repoRoot } from "../../../scripts/resource-tables";

const ROOT = repoRoot(__dirname);

describe("generated from the field tables", () => {
  const files = generatedFiles(ROOT);

  it.each([...files.keys()])("%s is up to date (else run `npm run generate`)", (file) => {
    const onDisk = fs.existsSync(path.join(ROOT, file)) ? fs.readFileSync(path.join(ROOT, file), "utf8") : "(missing)";
    expect(onDisk).toBe(files.get(file));
  });

  it("no generated module is left without its table", () => {
    const dir = path.join(ROOT, "provider", "resources", "generated");
    const expected = new Set([...files.keys()].filter((f) => f.startsWith(path.join("provider", "resources", "generated"))).map((f) => path.basename(f)));
    expect(fs.readdirSync(dir).filter((f) => !expected.has(f))).toEqual([]);
  });

  it("every table documents every property, and the README lists each one", () => {
    const tables = loadTables();
    expect(tables.map((t) => t.resource)).toContain("Pool");
    const readme = renderReadme(tables);
    for (const t of tables) {
      for (const [name, f] of Object.entries(t.fields)) {
        expect(f.doc.trim()).toMatch(/^\S.{4,}\.$/);
        if (f.role !== "internal") expect(readme).toContain(`| \`${name}\``);
      }
    }
  });
});

const sample: ResourceTable = table({
  resource: "Sample",
  module: "sample",
  summary: "A sample.",
  argsDoc: "Its inputs.",
  id: "its name",
  fields: {
    name: { kind: "string", required: true, change: "replaces", pattern: /^[a-z]+$/, describe: "lower-case letters", doc: "The name." },
    size: { kind: "integer", min: 1, max: 10, default: 4, unit: "GiB", pve: "disk-size", doc: "The size." },
    note: { kind: "string", pve: "comment", pveClear: "", doc: "A free-text note." },
    tags: { kind: "list", of: "string", normalize: (v: string[]) => [...v].sort(), item: (v: unknown) => (typeof v === "string" ? undefined : "a tag is a string."), doc: "The tags." },
    keep: { kind: "boolean", change: "behaviour", doc: "Keep it on delete." },
    stack: { kind: "string", role: "internal", doc: "Set by the class." },
    address: { kind: "string", role: "output", doc: "Where it is." },
  },
});

describe("derivations", () => {
  it("checkFields checks what each field declares (internal ones too) and names the property", () => {
    const c = new InputChecker({ name: "Bad", size: 11, tags: ["a", 3], keep: "yes", stack: 5 });
    const values = checkFields(c, sample);
    expect(values).toEqual({});
    expect(c.failures.map((f) => f.property).sort()).toEqual(["keep", "name", "size", "stack", "tags[1]"]);
    expect(c.failures.find((f) => f.property === "name")!.reason).toMatch(/lower-case letters/);
    expect(c.failures.find((f) => f.property === "size")!.reason).toMatch(/at most 10/);
  });

  it("checkFields reports a missing required property and returns the valid values", () => {
    const c = new InputChecker({ size: 2, tags: ["b", "a"] });
    expect(checkFields(c, sample)).toEqual({ size: 2, tags: ["b", "a"] });
    expect(c.failures).toEqual([{ property: "name", reason: "name is required." }]);
  });

  it("diff rules: replaces and normalisers from the table; outputs are not compared", () => {
    const rules = diffRulesOf(sample);
    expect(Object.keys(rules).sort()).toEqual(["keep", "name", "note", "size", "stack", "tags"]);
    expect(diffResource(rules, { name: "a", tags: ["x", "y"] }, { name: "a", tags: ["y", "x"] }).changes).toBe(false);
    expect(diffResource(rules, { name: "a" }, { name: "b" }).replaces).toEqual(["name"]);
    expect(diffResource(rules, { name: "a", size: 1 }, { name: "a", size: 2 })).toMatchObject({ changes: true, replaces: [] });
  });

  it("defaults fill only what is missing; outputs are slots the engine fills", () => {
    expect(withDefaults(sample, { name: "a" })).toEqual({ name: "a", size: 4 });
    expect(withDefaults(sample, { name: "a", size: 2 })).toEqual({ name: "a", size: 2 });
    expect(defaultOf<number>(sample, "size")).toBe(4);
    expect(() => defaultOf(sample, "name")).toThrow(/Sample.name has no default/);
    expect(outputSlots(sample)).toEqual({ address: undefined });
  });

  it("API parameters: mapped properties only, cleared when left out", () => {
    expect(pveParams(sample, { name: "a", size: 2 })).toEqual({ "disk-size": 2, comment: "" });
    expect(pveParams(sample, { name: "a", note: "hi" }, ["note"])).toEqual({ comment: "hi" });
  });

  it("the doc text carries unit, default and what a change does", () => {
    expect(docOf(sample.fields.size)).toBe("The size. Unit: GiB. Default: 4. Changed in place.");
    expect(docOf(sample.fields.name)).toBe("The name. Changing it replaces the resource.");
    expect(docOf(sample.fields.address)).toBe("Where it is. Output.");
  });

  it("an incoherent table is refused when it is declared", () => {
    expect(() => table({ ...sample, fields: { x: { kind: "integer", required: true, default: 1, doc: "An x value." } } })).toThrow(/Sample.x: a required property has no default/);
    expect(() => table({ ...sample, fields: { y: { kind: "string", role: "output", change: "replaces", doc: "A y value." } } })).toThrow(/Sample.y: an output/);
  });
});
