/**
 * Outputs a preview knows because they follow from the inputs or from the state (issue 16): with
 * a dynamic provider the engine previews an update as the checked inputs, so every output another
 * resource uses must be among them, or be derived from what a preview does know (the id).
 * Each test here fails without its fix.
 */
import * as pulumi from "@pulumi/pulumi";
import { apiTokenLifecycle } from "../../../provider/resources/api-token";
import { permissionCheckLifecycle } from "../../../provider/resources/preflight";
import { UNKNOWN } from "../../../provider/resources/diff";
import { vmidOfId } from "../../../provider/resources/vm/vmid-output";

/** An output's value and whether it is known, as the program sees it during a preview. */
async function seen<T>(o: pulumi.Output<T>): Promise<{ known: boolean; value: T | undefined }> {
  const known = await (o as unknown as { isKnown: Promise<boolean> }).isKnown;
  const value = await (o as unknown as { promise(): Promise<T> }).promise();
  return { known, value: known ? value : undefined };
}

describe("known at preview", () => {
  it("an ApiToken's full id follows from userid and tokenid (a binding to it is not replaced for a comment)", async () => {
    const r = await apiTokenLifecycle.check({}, { userid: "fid@pve", tokenid: "ci", comment: "new" });
    expect(r.failures).toEqual([]);
    expect((r.inputs as unknown as { fullTokenId: string }).fullTokenId).toBe("fid@pve!ci");
    const pending = await apiTokenLifecycle.check({}, { userid: UNKNOWN, tokenid: "ci" });
    expect((pending.inputs as unknown as { fullTokenId?: string }).fullTokenId).toBeUndefined();
  });

  it("a PermissionCheck's requirements stay normalised when one of them is unknown", async () => {
    const r = await permissionCheckLifecycle.check({}, {
      requirements: [
        { path: "/pool/fleet", privileges: ["VM.Allocate", "Pool.Audit"] },
        { path: UNKNOWN, privileges: ["VM.Clone", "VM.Audit"] },
        { path: "/nodes/pve1/", privileges: ["Sys.Audit", UNKNOWN, "Sys.Audit"] },
      ],
    });
    expect(r.failures).toEqual([]);
    expect(r.inputs?.requirements).toEqual([
      { path: "/pool/fleet", privileges: ["Pool.Audit", "VM.Allocate"] },
      { path: UNKNOWN, privileges: ["VM.Audit", "VM.Clone"] },
      { path: "/nodes/pve1", privileges: ["Sys.Audit", UNKNOWN] },
    ]);
    // what is known is still checked, naming the property and the fix
    const bad = await permissionCheckLifecycle.check({}, { requirements: [{ path: UNKNOWN, privileges: ["VM.audit"] }, { path: 42, privileges: [] }] } as never);
    expect(bad.failures?.map((f) => f.property)).toEqual(["requirements[0].privileges[0]", "requirements[1].path", "requirements[1].privileges"]);
  });

  it("a VM's VMID is read from the resource id", () => {
    expect(vmidOfId("pve1/9001")).toBe(9001);
    expect(vmidOfId("123")).toBe(123);
    expect(() => vmidOfId("pve1/web")).toThrow(/id .pve1\/web. is not valid: expected <node>\/<vmid>/);
  });
});

describe("Template and VmClone vmid during a preview of an update (engine mocks)", () => {
  // The engine previews an update as the checked inputs: an allocated VMID is not among them,
  // while the id (`<node>/<vmid>`) is kept.
  const registered = new Map<string, Record<string, unknown>>();
  beforeAll(() => {
    pulumi.runtime.setMocks(
      {
        newResource: (args) => {
          registered.set(args.name, args.inputs);
          const { vmid: _vmid, ...rest } = args.inputs as Record<string, unknown>;
          void _vmid;
          return { id: args.name === "fresh" ? "" : "pve1/9001", state: rest };
        },
        call: () => ({}),
      },
      "proj",
      "dev",
      true,
    );
  });

  it("template.vmid and a clone's templateVmid stay known when the template is updated in place", async () => {
    const { Template } = await import("../../../provider/resources/template");
    const { VmClone } = await import("../../../provider/resources/vm-clone");
    const tpl = new Template("base", { node: "pve1", image: { url: "https://example.org/a.img" }, tags: ["changed"] });
    expect(await seen(tpl.vmid)).toEqual({ known: true, value: 9001 });
    const vm = new VmClone("web", { template: tpl, memory: 1024 });
    expect(await seen(vm.vmid)).toEqual({ known: true, value: 9001 });
    // what the clone is registered with: the template's VMID, known (else a replacement)
    expect(registered.get("web")).toMatchObject({ templateVmid: 9001, templateNode: "pve1" });
    // a create has no id yet: unknown, as it should be
    const fresh = new Template("fresh", { node: "pve1", image: { url: "https://example.org/a.img" } });
    expect((await seen(fresh.vmid)).known).toBe(false);
    // a declared VMID passes through check() as given
    const pinned = new Template("pinned", { node: "pve1", vmid: 9100, image: { url: "https://example.org/a.img" } });
    expect(pinned.vmid).not.toBe(undefined);
  });
});
