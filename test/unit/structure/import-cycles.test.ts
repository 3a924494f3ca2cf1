// No import cycle in provider/ (issue 18): a cycle makes module load order matter and hides
// which layer depends on which. The detector itself is tested on a small graph first.
import * as path from "node:path";
import { importCycles, importGraph } from "./import-graph";

describe("import cycles", () => {
  test("the detector finds a cycle, a self-import and nothing in a tree", () => {
    const g = new Map<string, string[]>([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts", "d.ts"]],
      ["d.ts", []],
      ["e.ts", ["e.ts"]],
      ["f.ts", ["d.ts"]],
    ]);
    expect(importCycles(g)).toEqual([["a.ts", "b.ts", "c.ts"], ["e.ts"]]);
  });

  test("the graph reads static imports, re-exports and require() of provider modules", () => {
    const g = importGraph(path.resolve(__dirname, "../../../provider"));
    expect(g.get("index.ts")?.length).toBeGreaterThan(5);
    expect(g.get(path.join("resources", "vm-clone.ts"))).toEqual(expect.arrayContaining([path.join("resources", "check.ts"), path.join("resources", "dynamic.ts")]));
  });

  test("provider/ has none", () => {
    expect(importCycles(importGraph(path.resolve(__dirname, "../../../provider")))).toEqual([]);
  });
});
