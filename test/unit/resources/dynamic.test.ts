import { withoutUndefined } from "../../../provider/resources/dynamic";

describe("withoutUndefined", () => {
  it("drops absent values at every depth, which protobuf Structs cannot carry", () => {
    const result = withoutUndefined({ inputs: { poolid: "p", comment: undefined, vms: [1, undefined], nested: { a: undefined, b: 0 } }, failures: [] });
    expect(result).toEqual({ inputs: { poolid: "p", vms: [1, null], nested: { b: 0 } }, failures: [] });
    expect(Object.keys((result as any).inputs)).toEqual(["poolid", "vms", "nested"]);
  });

  it("leaves non-plain objects and scalars alone", () => {
    const date = new Date(0);
    expect(withoutUndefined(date)).toBe(date);
    expect(withoutUndefined(undefined)).toBeUndefined();
    expect(withoutUndefined("x")).toBe("x");
  });
});
