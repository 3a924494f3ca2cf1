import { Semaphore } from "../../../provider/util/semaphore";

describe("Semaphore", () => {
  it("serves waiters in order, priority waiters first", async () => {
    const s = new Semaphore(1);
    const order: string[] = [];
    const release = await s.acquire();
    const waits = [
      s.run(async () => void order.push("a")),
      s.run(async () => void order.push("b")),
      s.run(async () => void order.push("p1"), { priority: true }),
      s.run(async () => void order.push("c")),
      s.run(async () => void order.push("p2"), { priority: true }),
    ];
    expect(s.waiting).toBe(5);
    release();
    await Promise.all(waits);
    expect(order).toEqual(["p1", "p2", "a", "b", "c"]);
    expect(s.inFlight).toBe(0);
    expect(s.peakInFlight).toBe(1);
  });
});
