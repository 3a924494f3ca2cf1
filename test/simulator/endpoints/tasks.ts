// /nodes/{node}/tasks...: list, status, log, stop (MGR API2/Tasks.pm). A task owned by
// someone else needs Sys.Audit (read) / Sys.Modify (stop) on /nodes/{node}; a token sees
// only its own tasks, a user sees its own and its tokens'.

import type { Sim } from "../sim";
import { AuthContext, PveError, paramError, withTotal } from "../types";
import { clusterOf } from "../state/cluster";
import { Task, UPID_RE } from "../tasks";
import { NODE, OPT_VMID, checkNode } from "./common";

function ownsTask(auth: AuthContext, t: Task): boolean {
  if (auth.tokenid) return t.principal === auth.principal;
  return t.principal === auth.userid || t.principal.startsWith(`${auth.userid}!`);
}

function normalizedStatus(t: Task): string {
  if (t.status === "running") return "running";
  if (t.exitstatus === "OK") return "ok";
  if (t.exitstatus?.startsWith("WARNINGS")) return "warning";
  return "error";
}

export function register(sim: Sim): void {
  const c = clusterOf(sim);
  const UPID = { type: "string" as const };

  const find = (node: string, upid: string): Task => {
    if (!UPID_RE.test(upid)) throw paramError({ upid: "unable to parse worker upid" });
    const t = c.tasks.get(upid);
    if (!t || t.node !== node) throw paramError({ upid: "no such task" });
    return t;
  };

  sim.route({
    method: "GET",
    path: "/nodes/{node}/tasks",
    params: {
      node: NODE,
      errors: { type: "boolean", optional: true },
      limit: { type: "integer", minimum: 0, optional: true },
      since: { type: "integer", optional: true },
      source: { type: "string", enum: ["archive", "active", "all"], optional: true },
      start: { type: "integer", minimum: 0, optional: true },
      statusfilter: { type: "string", optional: true },
      typefilter: { type: "string", optional: true },
      until: { type: "integer", optional: true },
      userfilter: { type: "string", optional: true },
      vmid: OPT_VMID,
    },
    permissions: { user: "all" },
    handler: (req) => {
      const p = req.params;
      checkNode(c, p.node);
      const auditor = sim.access.has(req.auth, `/nodes/${p.node}`, "Sys.Audit");
      const source = p.source ?? "archive";
      let statuses: Set<string> | undefined;
      if (p.statusfilter && !p.errors) statuses = new Set(String(p.statusfilter).split(/[,;\s]+/).map((s) => s.toLowerCase()));
      const start = p.start ?? 0;
      let limit = p.limit ?? 50;
      let count = 0;
      const res: unknown[] = [];
      const tasks = c.tasks.all().filter((t) => t.node === p.node).reverse();
      const ordered = [
        ...(source !== "archive" ? tasks.filter((t) => t.status === "running") : []),
        ...(source !== "active" ? tasks.filter((t) => t.status === "stopped") : []),
      ];
      for (const t of ordered) {
        if (p.userfilter && !t.principal.toLowerCase().includes(String(p.userfilter).toLowerCase())) continue;
        if (!auditor && !ownsTask(req.auth, t)) continue;
        if (p.typefilter && t.type !== p.typefilter) continue;
        if (p.vmid && t.id !== String(p.vmid)) continue;
        if (p.since !== undefined && t.starttime < p.since) continue;
        if (p.until !== undefined && t.starttime > p.until) continue;
        const st = normalizedStatus(t);
        if (p.errors && st === "ok") continue;
        if (statuses && st !== "running" && !statuses.has(st)) continue;
        if (count++ < start) continue;
        if (limit <= 0) continue;
        res.push(c.tasks.listEntry(t));
        limit--;
      }
      return withTotal(res, count);
    },
  });

  sim.route({
    method: "GET",
    path: "/nodes/{node}/tasks/{upid}",
    params: { node: NODE, upid: UPID },
    permissions: { user: "all" },
    handler: () => [{ name: "log" }, { name: "status" }],
  });

  sim.route({
    method: "GET",
    path: "/nodes/{node}/tasks/{upid}/status",
    params: { node: NODE, upid: { type: "string" } },
    permissions: { user: "all" },
    handler: (req) => {
      const t = find(req.params.node, req.params.upid);
      if (!ownsTask(req.auth, t)) sim.access.check(req.auth, `/nodes/${req.params.node}`, ["Sys.Audit"]);
      return c.tasks.statusOf(t);
    },
  });

  sim.route({
    method: "GET",
    path: "/nodes/{node}/tasks/{upid}/log",
    params: {
      node: NODE, upid: { type: "string" },
      start: { type: "integer", minimum: 0, optional: true },
      limit: { type: "integer", minimum: 0, optional: true },
      download: { type: "boolean", optional: true },
    },
    permissions: { user: "all" },
    handler: (req) => {
      const t = find(req.params.node, req.params.upid);
      if (!ownsTask(req.auth, t)) sim.access.check(req.auth, `/nodes/${req.params.node}`, ["Sys.Audit"]);
      if (req.params.download) {
        if (req.params.start !== undefined || req.params.limit !== undefined) throw new PveError(500, "'download' cannot be used together with 'start' or 'limit' parameters");
        return t.lines.join("\n") + "\n";
      }
      const start = req.params.start ?? 0;
      const limit = req.params.limit ?? 50;
      const lines = t.lines.length ? t.lines : ["no content"];
      const out = lines.slice(start, start + limit).map((text, i) => ({ n: start + i + 1, t: text }));
      return withTotal(out, lines.length);
    },
  });

  sim.route({
    method: "DELETE",
    path: "/nodes/{node}/tasks/{upid}",
    params: { node: NODE, upid: { type: "string" } },
    permissions: { user: "all" },
    handler: (req) => {
      const t = find(req.params.node, req.params.upid);
      if (!ownsTask(req.auth, t)) sim.access.check(req.auth, `/nodes/${req.params.node}`, ["Sys.Modify"]);
      c.tasks.stop(t);
      return null;
    },
  });

  sim.backdoor("GET", "/tasks", (p) =>
    c.tasks.all()
      .filter((t) => !p.node || t.node === p.node)
      .map((t) => ({ ...c.tasks.statusOf(t), log: t.lines })),
  );
  /** Waits until no task is running (tests); on the virtual clock, runs time until then. */
  sim.backdoor("POST", "/tasks/wait", async () => {
    if (sim.clock.virtual) await sim.virtualClock().runUntilIdle();
    await c.tasks.idle();
    return null;
  });
}
