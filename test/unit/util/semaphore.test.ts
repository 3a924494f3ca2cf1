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

  it("takes a new limit while in use: a higher one admits waiters at once, a lower one admits none until below it", async () => {
    const s = new Semaphore(2);
    const releases = [await s.acquire(), await s.acquire()];
    const admitted: number[] = [];
    const waits = [1, 2, 3].map((i) => s.acquire().then((r) => (admitted.push(i), r)));
    s.setLimit(3);
    await new Promise((r) => setImmediate(r));
    expect(admitted).toEqual([1]);
    s.setLimit(1);
    releases[0]();
    releases[1]();
    await new Promise((r) => setImmediate(r));
    expect(admitted).toEqual([1]); // 1 still holds: at the limit
    (await waits[0])();
    await new Promise((r) => setImmediate(r));
    expect(admitted).toEqual([1, 2]);
    (await waits[1])();
    (await waits[2])();
    expect(s.inFlight).toBe(0);
    expect(() => s.setLimit(0)).toThrow(RangeError);
  });
});
