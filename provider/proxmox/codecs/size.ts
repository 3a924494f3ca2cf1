/** Disk sizes as PVE writes them: bytes, or a number with K/M/G/T (powers of 1024). */

const UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const SIZE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i;

export function parseSize(text: string | number): number {
  if (typeof text === "number") {
    if (!Number.isFinite(text) || text < 0) throw new Error(`invalid size ${text}`);
    return Math.round(text);
  }
  const m = SIZE.exec(text.trim());
  if (!m) throw new Error(`invalid size '${text}': expected a number of bytes or a number with K, M, G or T (e.g. 32G)`);
  return Math.round(Number(m[1]) * UNITS[m[2].toUpperCase()]);
}

/** Formats like PVE's format_size: the largest unit that represents the size exactly. */
export function formatSize(bytes: number): string {
  if (!Number.isInteger(bytes) || bytes < 0) throw new Error(`invalid byte count ${bytes}`);
  if (bytes === 0) return "0";
  for (const unit of ["T", "G", "M", "K"]) {
    if (bytes % UNITS[unit] === 0) return `${bytes / UNITS[unit]}${unit}`;
  }
  return String(bytes);
}

/** PVE's resize `size`: `+10G` grows by 10 GiB, `32G` sets 32 GiB. */
export function parseResize(text: string): { grow: boolean; bytes: number } {
  const trimmed = text.trim();
  const grow = trimmed.startsWith("+");
  return { grow, bytes: parseSize(grow ? trimmed.slice(1) : trimmed) };
}

export function formatResize(bytes: number, grow = false): string {
  return `${grow ? "+" : ""}${formatSize(bytes)}`;
}

/** Two sizes written differently (`1024M`, `1G`) compare equal after this. */
export function normalizeSize(text: string | number): string {
  return formatSize(parseSize(text));
}
