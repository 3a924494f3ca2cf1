import type { Params } from "./http";
import { apiPath } from "./path";
import { coerceNumbers, toBool } from "./coerce";
import type { RequestOptions, Requester } from "./requester";
import type { TaskResult, TasksApi, WaitForTaskOptions } from "./tasks";

/** A storage definition (/etc/pve/storage.cfg entry); type-specific keys vary. */
export interface StorageConfig {
  storage: string;
  type?: string;
  content?: string;
  path?: string;
  shared?: number | boolean;
  disable?: number | boolean;
  nodes?: string;
  digest?: string;
  [key: string]: unknown;
}

export interface NodeStorageStatus {
  storage: string;
  type: string;
  content: string;
  active?: boolean;
  enabled?: boolean;
  shared?: boolean;
  total?: number;
  used?: number;
  avail?: number;
  used_fraction?: number;
  [key: string]: unknown;
}

export interface StorageContentEntry {
  volid: string;
  content: string;
  format: string;
  size: number;
  ctime?: number;
  vmid?: number;
  used?: number;
  parent?: string;
  notes?: string;
  protected?: boolean;
  [key: string]: unknown;
}

export interface DownloadUrlParams {
  url: string;
  filename: string;
  /** PVE accepts only these (snippets cannot be uploaded through the API). */
  content: "iso" | "vztmpl" | "import";
  checksum?: string;
  checksumAlgorithm?: "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512";
  compression?: string;
  verifyCertificates?: boolean;
}

const STATUS_NUMBERS = ["total", "used", "avail", "used_fraction"];
const CONTENT_NUMBERS = ["size", "ctime", "vmid", "used"];

function normaliseStatus(row: NodeStorageStatus): NodeStorageStatus {
  const out = coerceNumbers(row, STATUS_NUMBERS);
  for (const key of ["active", "enabled", "shared"] as const) if (row[key] !== undefined) out[key] = toBool(row[key]);
  return out;
}

export class StorageApi {
  constructor(
    private readonly r: Requester,
    private readonly tasks: TasksApi,
  ) {}

  // Cluster-wide storage definitions (/storage).

  list(type?: string, opts?: RequestOptions): Promise<StorageConfig[]> {
    return this.r.get<StorageConfig[]>("/storage", type ? { type } : undefined, opts);
  }

  get(storage: string, opts?: RequestOptions): Promise<StorageConfig> {
    return this.r.get<StorageConfig>(apiPath`/storage/${storage}`, undefined, opts);
  }

  async create(params: { storage: string; type: string } & Params, opts?: RequestOptions): Promise<void> {
    await this.r.post("/storage", params, opts);
  }

  async update(storage: string, params: Params, opts?: RequestOptions): Promise<void> {
    await this.r.put(apiPath`/storage/${storage}`, params, opts);
  }

  async delete(storage: string, opts?: RequestOptions): Promise<void> {
    await this.r.del(apiPath`/storage/${storage}`, undefined, opts);
  }

  // Storage as seen from one node.

  async listOnNode(node: string, params: { content?: string; enabled?: boolean; storage?: string; target?: string } = {}, opts?: RequestOptions): Promise<NodeStorageStatus[]> {
    const rows = await this.r.get<NodeStorageStatus[]>(apiPath`/nodes/${node}/storage`, params, opts);
    return rows.map(normaliseStatus);
  }

  async status(node: string, storage: string, opts?: RequestOptions): Promise<NodeStorageStatus> {
    const row = await this.r.get<NodeStorageStatus>(apiPath`/nodes/${node}/storage/${storage}/status`, undefined, opts);
    return normaliseStatus({ ...row, storage: row.storage ?? storage });
  }

  async content(node: string, storage: string, params: { content?: string; vmid?: number } = {}, opts?: RequestOptions): Promise<StorageContentEntry[]> {
    const rows = await this.r.get<StorageContentEntry[]>(apiPath`/nodes/${node}/storage/${storage}/content`, params, opts);
    return rows.map((row) => {
      const out = coerceNumbers(row, CONTENT_NUMBERS);
      if (row.protected !== undefined) out.protected = toBool(row.protected);
      return out;
    });
  }

  /** A UPID (imgdel task), or null when PVE deleted it synchronously. */
  deleteContent(node: string, storage: string, volume: string, opts?: RequestOptions): Promise<string | null> {
    return this.r.del<string | null>(apiPath`/nodes/${node}/storage/${storage}/content/${volume}`, undefined, opts);
  }

  downloadUrl(node: string, storage: string, params: DownloadUrlParams, opts?: RequestOptions): Promise<string> {
    const { checksumAlgorithm, verifyCertificates, ...rest } = params;
    return this.r.post<string>(
      apiPath`/nodes/${node}/storage/${storage}/download-url`,
      { ...rest, "checksum-algorithm": checksumAlgorithm, "verify-certificates": verifyCertificates },
      opts,
    );
  }

  async downloadUrlAndWait(node: string, storage: string, params: DownloadUrlParams, wait?: WaitForTaskOptions): Promise<TaskResult> {
    return this.tasks.wait(await this.downloadUrl(node, storage, params, { signal: wait?.signal }), wait);
  }

  async deleteContentAndWait(node: string, storage: string, volume: string, wait?: WaitForTaskOptions): Promise<TaskResult | null> {
    const upid = await this.deleteContent(node, storage, volume, { signal: wait?.signal });
    return upid ? this.tasks.wait(upid, wait) : null;
  }
}
