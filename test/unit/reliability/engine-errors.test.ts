// An error thrown by a lifecycle method reaches the engine as its message only. The SDK's
// dynamic-provider host reads an `id` property on an error as "created but failed to
// initialise" and the engine then records the resource under that id: a failed clone task
// (PveTaskError, whose `id` is the task's: the template's VMID) was recorded as a VM with the
// template's id, with the message replaced by "resource init failed".
import { PveTaskError } from "../../../provider/proxmox";
import { forEngine, invoke } from "../../../provider/resources/dynamic";

describe("errors handed to the engine", () => {
  const taskError = () =>
    new PveTaskError({ upid: "UPID:pve1:0000AAAA:0000BBBB:00000001:qmclone:9000:root@pam:", node: "pve1", type: "qmclone", id: "9000", exitstatus: "clone failed: no space", logTail: ["TASK ERROR: clone failed: no space"] });

  test("keep the message and drop the task's id", () => {
    const e = forEngine(taskError());
    expect(e.message).toMatch(/clone failed: no space[\s\S]*last task log lines/);
    expect((e as unknown as { id?: string }).id).toBeUndefined();
    expect(e.name).toBe("PveTaskError");
  });

  test("invoke() rethrows a lifecycle's failure without an id", async () => {
    const modulePath = require.resolve("./fixtures/throwing-lifecycle");
    const err = await invoke(modulePath, "throwingLifecycle", "create", [{}]).then(
      () => undefined,
      (e: unknown) => e as Error & { id?: string },
    );
    expect(err?.message).toMatch(/clone failed: no space/);
    expect(err?.id).toBeUndefined();
  });
});
