// Shared set-up for the access/placement lifecycle tests: a simulator, the provider's context
// pointed at it, and small helpers to drive a lifecycle the way the engine does.
import { startSimulator, type RunningSimulator } from "../../../simulator";
import { configureForTests } from "../../../../provider/resources/context";
import { clearClients, PveClient } from "../../../../provider/proxmox/client";
import type { Lifecycle } from "../../../../provider/resources/dynamic";
import type { SimOptions } from "../../../simulator/sim";

export interface TestSim extends RunningSimulator {
  /** Points the provider's context at the simulator with these credentials (default: root token). */
  useRootToken(): void;
  usePassword(username: string, password: string): void;
  useToken(apiToken: string): void;
  /** A client of its own (not the provider's), e.g. to act as a new token. */
  clientFor(apiToken: string): PveClient;
  /** Requests the simulator has answered so far. */
  requests(): number;
}

export async function startTestSim(options: SimOptions = {}): Promise<TestSim> {
  const s = await startSimulator({ seed: 3, ...options });
  const base = { endpoint: s.url, caCert: s.caCert };
  const t: TestSim = {
    ...s,
    useRootToken: () => {
      clearClients();
      configureForTests({ ...base, apiToken: s.rootToken });
    },
    usePassword: (username, password) => {
      clearClients();
      configureForTests({ ...base, username, password });
    },
    useToken: (apiToken) => {
      clearClients();
      configureForTests({ ...base, apiToken });
    },
    clientFor: (apiToken) => {
      const eq = apiToken.indexOf("=");
      return new PveClient({
        endpoint: s.url,
        credentials: { kind: "token", tokenId: apiToken.slice(0, eq), secret: apiToken.slice(eq + 1) },
        tls: { caCert: s.caCert },
      });
    },
    requests: () => s.sim.requestLog.length,
  };
  t.useRootToken();
  return t;
}

/** check() then create(), as the engine does; fails the test on check failures. */
export async function checkAndCreate<I, S>(lc: Lifecycle<I, S>, news: I): Promise<{ id: string; outs: S; inputs: I }> {
  const checked = await lc.check({}, news);
  if (checked.failures?.length) throw new Error(`check failed: ${JSON.stringify(checked.failures)}`);
  const inputs = checked.inputs as I;
  const { id, outs } = await lc.create(inputs);
  return { id, outs, inputs };
}

/** check(olds, news) then diff(id, olds, news). */
export async function checkAndDiff<I, S>(lc: Lifecycle<I, S>, id: string, olds: S, news: I) {
  const checked = await lc.check(olds as any, news);
  if (checked.failures?.length) throw new Error(`check failed: ${JSON.stringify(checked.failures)}`);
  const inputs = checked.inputs as I;
  return { inputs, diff: await lc.diff(id, olds, inputs) };
}

/** The message of a rejected promise. */
export async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  throw new Error("expected a rejection");
}

/**
 * A replacement carried out the way the engine does it, from check() and diff()'s answer:
 * with deleteBeforeReplace, delete the old resource and then create the new one; otherwise
 * create the new one and delete the old one after. Fails unless diff asks for a replacement.
 */
export async function replaceLikeEngine<I, S>(lc: Lifecycle<I, S>, id: string, olds: S, news: I) {
  const { inputs, diff } = await checkAndDiff(lc, id, olds, news);
  if (!diff.replaces?.length) throw new Error(`diff asked for no replacement: ${JSON.stringify(diff)}`);
  const order: string[] = [];
  let created: { id: string; outs: S };
  if (diff.deleteBeforeReplace) {
    await lc.delete(id, olds);
    order.push("delete old");
    created = await lc.create(inputs);
    order.push("create new");
  } else {
    created = await lc.create(inputs);
    order.push("create new");
    await lc.delete(id, olds);
    order.push("delete old");
  }
  return { ...created, diff, order };
}
