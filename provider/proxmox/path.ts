/** Builds an API path, URL-encoding every interpolated segment: apiPath`/nodes/${node}/qemu/${vmid}`. */
export function apiPath(strings: TemplateStringsArray, ...values: Array<string | number>): string {
  let out = strings[0];
  values.forEach((value, i) => {
    const text = String(value);
    if (text === "" || text === "." || text === "..") {
      throw new Error(`invalid API path segment '${text}' in ${strings.join("{}")}`);
    }
    out += encodeURIComponent(text) + strings[i + 1];
  });
  return out;
}
