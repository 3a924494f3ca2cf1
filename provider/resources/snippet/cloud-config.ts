// Structured cloud-config: validated loosely (the shapes cloud-init itself would reject) and
// rendered deterministically (keys sorted at every level) as `#cloud-config` YAML, so the
// same object always gives the same bytes, hence the same hash and file name.

import { stringify } from "yaml";

/** Top-level keys whose shape is checked: a list, a string, a boolean or a mapping
 *  (cloud-init's config schema; `manage_etc_hosts` also takes 'localhost' or 'template'). */
const LISTS = ["users", "packages", "runcmd", "bootcmd", "write_files", "ssh_authorized_keys", "groups", "mounts"];
const STRINGS = ["hostname", "fqdn", "timezone", "locale", "password", "final_message"];
const BOOLEANS = ["package_update", "package_upgrade", "package_reboot_if_required", "ssh_pwauth", "disable_root", "preserve_hostname"];
const MAPPINGS = ["chpasswd", "apt", "ntp", "power_state", "growpart", "ca_certs", "phone_home"];
/** Lists inside those mappings. */
const NESTED_LISTS: Array<[string, string]> = [["ca_certs", "trusted"], ["ntp", "servers"], ["ntp", "pools"]];

function kind(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  return typeof value === "object" ? "a mapping" : `a ${typeof value}`;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Problems with a cloud-config object, each naming the path (`cloudConfig.users[1].name`). */
export function validateCloudConfig(config: unknown, where = "cloudConfig"): string[] {
  const problems: string[] = [];
  if (!isMapping(config)) return [`${where} must be a mapping of cloud-config keys (users, packages, runcmd, write_files...), got ${kind(config)}`];
  const at = (k: string) => `${where}.${k}`;
  for (const k of LISTS) if (k in config && !Array.isArray(config[k])) problems.push(`${at(k)} must be a list, got ${kind(config[k])}`);
  for (const k of STRINGS) if (k in config && typeof config[k] !== "string") problems.push(`${at(k)} must be a string, got ${kind(config[k])}`);
  for (const k of BOOLEANS) if (k in config && typeof config[k] !== "boolean") problems.push(`${at(k)} must be true or false, got ${kind(config[k])}`);
  for (const k of MAPPINGS) if (k in config && !isMapping(config[k])) problems.push(`${at(k)} must be a mapping, got ${kind(config[k])}`);
  for (const [k, inner] of NESTED_LISTS) {
    const m = config[k];
    if (isMapping(m) && inner in m && !Array.isArray(m[inner])) problems.push(`${at(`${k}.${inner}`)} must be a list, got ${kind(m[inner])}`);
  }
  if (Array.isArray(config.users)) {
    config.users.forEach((u, i) => {
      if (typeof u === "string") return; // "default" or a user name
      if (!isMapping(u)) problems.push(`${at(`users[${i}]`)} must be a mapping (with name) or the string 'default', got ${kind(u)}`);
      else if (typeof u.name !== "string" || u.name === "") problems.push(`${at(`users[${i}]`)}.name is required (a string)`);
      else if (u.ssh_authorized_keys !== undefined && !Array.isArray(u.ssh_authorized_keys)) problems.push(`${at(`users[${i}]`)}.ssh_authorized_keys must be a list`);
    });
  }
  if (Array.isArray(config.packages)) {
    config.packages.forEach((p, i) => {
      if (typeof p !== "string" && !(Array.isArray(p) && p.every((x) => typeof x === "string"))) problems.push(`${at(`packages[${i}]`)} must be a package name or [name, version], got ${kind(p)}`);
    });
  }
  for (const k of ["runcmd", "bootcmd"]) {
    const list = config[k];
    if (!Array.isArray(list)) continue;
    list.forEach((c, i) => {
      if (typeof c !== "string" && !(Array.isArray(c) && c.every((x) => typeof x === "string"))) problems.push(`${at(`${k}[${i}]`)} must be a shell command string or a list of arguments, got ${kind(c)}`);
    });
  }
  if (Array.isArray(config.write_files)) {
    config.write_files.forEach((f, i) => {
      if (!isMapping(f)) problems.push(`${at(`write_files[${i}]`)} must be a mapping with path and content, got ${kind(f)}`);
      else {
        if (typeof f.path !== "string" || !f.path.startsWith("/")) problems.push(`${at(`write_files[${i}]`)}.path must be an absolute path`);
        if (f.content !== undefined && typeof f.content !== "string") problems.push(`${at(`write_files[${i}]`)}.content must be a string`);
        if (f.permissions !== undefined && (typeof f.permissions !== "string" || !/^0?[0-7]{3,4}$/.test(f.permissions))) problems.push(`${at(`write_files[${i}]`)}.permissions must be an octal string like '0644'`);
      }
    });
  }
  if (Array.isArray(config.ssh_authorized_keys)) {
    config.ssh_authorized_keys.forEach((k, i) => {
      if (typeof k !== "string") problems.push(`${at(`ssh_authorized_keys[${i}]`)} must be a public key line, got ${kind(k)}`);
    });
  }
  // Values YAML cannot carry faithfully.
  const walk = (v: unknown, p: string): void => {
    if (typeof v === "function" || typeof v === "symbol" || typeof v === "bigint") problems.push(`${p} is ${typeof v}, which YAML cannot represent`);
    else if (typeof v === "number" && !Number.isFinite(v)) problems.push(`${p} is not a finite number`);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${p}[${i}]`));
    else if (isMapping(v)) for (const [k, x] of Object.entries(v)) walk(x, `${p}.${k}`);
  };
  walk(config, where);
  return problems;
}

/** `#cloud-config` followed by the YAML of `config`, keys sorted, no aliases, LF line ends. */
export function renderCloudConfig(config: Record<string, unknown>): string {
  const body = stringify(config, { sortMapEntries: true, aliasDuplicateObjects: false, lineWidth: 0 });
  return `#cloud-config\n${body}`;
}
