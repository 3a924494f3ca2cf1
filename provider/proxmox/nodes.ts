import { coerceNumbers } from "./coerce";
import type { RequestOptions, Requester } from "./requester";

export interface NodeInfo {
  node: string;
  status: "online" | "offline" | "unknown";
  cpu?: number;
  maxcpu?: number;
  mem?: number;
  maxmem?: number;
  uptime?: number;
  level?: string;
  ssl_fingerprint?: string;
  [key: string]: unknown;
}

export class NodesApi {
  constructor(private readonly r: Requester) {}

  async list(opts?: RequestOptions): Promise<NodeInfo[]> {
    const rows = await this.r.get<NodeInfo[]>("/nodes", undefined, opts);
    return rows.map((n) => coerceNumbers(n, ["cpu", "maxcpu", "mem", "maxmem", "uptime", "disk", "maxdisk"]));
  }
}
