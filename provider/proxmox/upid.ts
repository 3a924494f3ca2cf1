/** A task id: `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:` (the trailing colon is part of it). */
export interface Upid {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  /** Unix seconds. */
  starttime: number;
  type: string;
  /** May be empty (e.g. imgcopy). */
  id: string;
  /** `user@realm`, or `user@realm!tokenid` for tasks started by a token. */
  user: string;
}

export const UPID_PATTERN =
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s/]+):([^:\s/]*):([^:\s/]+):$/;

export function isUpid(value: unknown): value is string {
  return typeof value === "string" && UPID_PATTERN.test(value);
}

export function parseUpid(value: string): Upid {
  const m = UPID_PATTERN.exec(value);
  if (!m) {
    throw new Error(`not a PVE task id (UPID): '${value.slice(0, 120)}'`);
  }
  return {
    upid: value,
    node: m[1],
    pid: parseInt(m[3], 16),
    pstart: parseInt(m[4], 16),
    starttime: parseInt(m[5], 16),
    type: m[6],
    id: m[7],
    user: m[8],
  };
}
