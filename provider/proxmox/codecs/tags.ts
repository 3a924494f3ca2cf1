/** Tags as PVE stores them: split on `;`, `,` or spaces, lower-cased, sorted, de-duplicated, joined with `;`. */

export function parseTags(input: string | ReadonlyArray<string> | undefined | null): string[] {
  if (input === undefined || input === null) return [];
  const text = typeof input === "string" ? input : input.join(";");
  const tags = text
    .split(/[;,\s]+/)
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  return [...new Set(tags)].sort();
}

export function formatTags(tags: string | ReadonlyArray<string> | undefined | null): string {
  return parseTags(tags).join(";");
}
