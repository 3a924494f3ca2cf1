import { diffResource, DiffRules, normalize, UNKNOWN, sameValue } from "../../../provider/resources/diff";
import { InputChecker } from "../../../provider/resources/check";

interface Args {
  name: string;
  tags?: string[];
  memory?: number;
  node?: string;
}

const rules: DiffRules<Args> = {
  name: { replaces: true },
  tags: { normalize: normalize.tags },
  memory: {},
  node: {},
};

describe("diffResource", () => {
  it("reports no change when only PVE's normalisation differs", () => {
    const d = diffResource(rules, { name: "a", tags: ["web", "ci"] }, { name: "a", tags: ["CI", "web", "ci"] });
    expect(d).toEqual({ changes: false, replaces: [], changed: [] });
  });

  it("treats missing, undefined and null as the same", () => {
    expect(diffResource(rules, { name: "a", memory: undefined }, { name: "a" }).changes).toBe(false);
    expect(sameValue({ a: null }, {})).toBe(true);
    expect(sameValue([1, 2], [2, 1])).toBe(false);
  });

  it("separates in-place changes from replacements and names the forcing property", () => {
    const inPlace = diffResource(rules, { name: "a", memory: 1024 }, { name: "a", memory: 2048 });
    expect(inPlace).toEqual({ changes: true, replaces: [], changed: ["memory"] });
    const replace = diffResource(rules, { name: "a", memory: 1024 }, { name: "b", memory: 2048 });
    expect(replace.replaces).toEqual(["name"]);
    expect(replace.changed).toEqual(["name", "memory"]);
  });

  it("counts unknown inputs as changes, and as replacements for replacing fields", () => {
    const d = diffResource(rules, { name: "a", node: "pve1" }, { name: UNKNOWN, node: UNKNOWN });
    expect(d.changed).toEqual(["name", "node"]);
    expect(d.replaces).toEqual(["name"]);
  });

  it("asks the resource whether a replacement must delete first", () => {
    const d = diffResource(rules, { name: "a" }, { name: "b" }, { deleteBeforeReplace: () => true });
    expect(d.deleteBeforeReplace).toBe(true);
    const none = diffResource(rules, { name: "a" }, { name: "a" }, { deleteBeforeReplace: () => true });
    expect(none.deleteBeforeReplace).toBeUndefined();
  });
});

describe("InputChecker", () => {
  it("names the property and the fix for each kind of bad input", () => {
    const c = new InputChecker({ poolid: "1bad", memory: "lots", cores: 0, tags: ["ok", 5], on: "yes" });
    c.string("poolid", { pattern: /^[A-Za-z]/, describe: "a name starting with a letter" });
    c.integer("memory");
    c.integer("cores", { min: 1 });
    c.list<unknown>("tags", { item: (v) => (typeof v === "string" ? undefined : "each tag must be a string") });
    c.boolean("on");
    c.string("name", { required: true });
    expect(c.failures.map((f) => f.property)).toEqual(["poolid", "memory", "cores", "tags[1]", "on", "name"]);
    expect(c.failures[0].reason).toContain("a name starting with a letter");
    expect(c.failures[2].reason).toBe("cores must be at least 1, got 0.");
  });

  it("lets unknown values through until they are known", () => {
    const c = new InputChecker({ poolid: UNKNOWN, memory: UNKNOWN });
    expect(c.string("poolid", { required: true, pattern: /^x$/ })).toBeUndefined();
    expect(c.integer("memory", { required: true })).toBeUndefined();
    expect(c.failures).toEqual([]);
  });

  it("rejects two mutually exclusive inputs", () => {
    const c = new InputChecker({ content: "a", cloudConfig: {} });
    c.exclusive(["content", "cloudConfig"], { required: true });
    expect(c.failures).toEqual([{ property: "cloudConfig", reason: "set only one of content, cloudConfig; got content and cloudConfig." }]);
  });
});
