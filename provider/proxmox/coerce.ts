/** PVE (Perl) sometimes returns numbers and booleans as strings: "100", "0". These accept both. */

export function toNumber(value: unknown): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  const n = typeof value === "number" ? value : Number(value);
  return Number.isFinite(n) ? n : undefined;
}

export function requireNumber(value: unknown, what: string): number {
  const n = toNumber(value);
  if (n === undefined) throw new Error(`PVE returned a non-numeric ${what}: ${JSON.stringify(value)}`);
  return n;
}

/** PVE booleans: 1/0, "1"/"0", true/false, and in property strings on/off, yes/no. */
export function toBool(value: unknown): boolean | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "boolean") return value;
  if (typeof value === "number") return value !== 0;
  const s = String(value).toLowerCase();
  if (["1", "on", "yes", "true"].includes(s)) return true;
  if (["0", "off", "no", "false"].includes(s)) return false;
  return undefined;
}

/** Coerces the named fields of each record to numbers where PVE sent numeric strings. */
export function coerceNumbers<T extends object>(record: T, fields: ReadonlyArray<string>): T {
  const out: Record<string, unknown> = { ...(record as Record<string, unknown>) };
  for (const f of fields) {
    if (f in out) {
      const n = toNumber(out[f]);
      if (n !== undefined) out[f] = n;
    }
  }
  return out as T;
}
