import {
  canonicalOrder,
  decodeSshKeys,
  encodeSshKeys,
  formatAgent,
  formatDrive,
  formatIpConfig,
  formatNet,
  formatResize,
  formatSize,
  formatTags,
  isCloudInitDrive,
  isDiskKey,
  normalizeMac,
  normalizeSize,
  parseAgent,
  parseDrive,
  parseIpConfig,
  parseNet,
  parseResize,
  parseSize,
  parseTags,
  parseVolume,
} from "../../../provider/proxmox/codecs";
import { listFixtures, readFixture, readReferenceText } from "../helpers/pve-api";

type Codec = { parse: (s: string) => object; format: (v: never) => string };
const CODECS: Array<{ key: RegExp; codec: Codec }> = [
  { key: /^net\d+$/, codec: { parse: parseNet, format: formatNet as Codec["format"] } },
  { key: /^((ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0)$/, codec: { parse: parseDrive, format: formatDrive as Codec["format"] } },
  { key: /^ipconfig\d+$/, codec: { parse: parseIpConfig, format: formatIpConfig as Codec["format"] } },
  { key: /^agent$/, codec: { parse: (s) => parseAgent(s), format: formatAgent as Codec["format"] } },
];

/** Every `key: "string"` pair, anywhere in a JSON document. */
function stringPairs(value: unknown, out: Array<[string, string]> = []): Array<[string, string]> {
  if (Array.isArray(value)) value.forEach((v) => stringPairs(v, out));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === "string" || typeof v === "number") out.push([k, String(v)]);
      else stringPairs(v, out);
    }
  }
  return out;
}

describe("property-string round trips over the fixtures", () => {
  const pairs = listFixtures(/\.json$/).flatMap((f) => stringPairs(readFixture(f)).map(([k, v]) => [f, k, v] as const));
  const relevant = pairs.filter(([, k]) => CODECS.some((c) => c.key.test(k)));

  it("finds the config strings (net0, scsi0, ide0, ide2, agent) in the fixtures", () => {
    const keys = new Set(relevant.map(([, k]) => k));
    for (const k of ["net0", "scsi0", "ide0", "ide2", "agent"]) expect(keys).toContain(k);
  });

  it.each(relevant.map(([f, k, v]) => [`${f} ${k}=${v}`, k, v]))("%s", (_name, key, value) => {
    const { codec } = CODECS.find((c) => c.key.test(key))!;
    expect(codec.format(codec.parse(value) as never)).toBe(value);
  });

  it("round-trips the tags in the fixtures through the tag normaliser", () => {
    const tags = pairs.filter(([, k]) => k === "tags").map(([, , v]) => v);
    expect(tags.length).toBeGreaterThan(0);
    for (const t of tags) expect(formatTags(formatTags(t))).toBe(formatTags(t));
    expect(formatTags("one, two, three")).toBe("one;three;two");
  });
});

/**
 * The config property strings quoted in a reference document: every `code span` that is a
 * `key=value` for a key the codecs cover, or a bare drive value (`storage:volume,opt=...`).
 * Documentation shorthand is made concrete: `[,opt]` groups are expanded both ways, `ideN` is
 * ide0, `<storage>`/`STORAGE` local-lvm, `<id>` 100, and an elided part (`...`) the smallest
 * value of that kind (`virtio` for a NIC). Each result says where it came from.
 */
function referenceExamples(doc: string): Array<{ source: string; key: string; value: string }> {
  const text = readReferenceText(doc);
  const FILL: Record<string, string> = { net: "virtio", drive: "local-lvm:vm-100-disk-0", ipconfig: "ip=dhcp", agent: "1" };
  const kind = (key: string) => (/^net\d+$/.test(key) ? "net" : /^ipconfig\d+$/.test(key) ? "ipconfig" : key === "agent" ? "agent" : "drive");
  const expand = (v: string): string[] => {
    const m = /\[(,[^\]]+)\]/.exec(v);
    if (!m) return [v];
    return [...expand(v.replace(m[0], "")), ...expand(v.replace(m[0], m[1]))];
  };
  const concrete = (key: string, v: string) =>
    v.replace(/<storage>|STORAGE/g, "local-lvm").replace(/<(vm)?id>/g, "100").replace(/^\.\.\.(?=,)/, FILL[kind(key)]);
  const out: Array<{ source: string; key: string; value: string }> = [];
  for (const [line, n] of text.split("\n").map((l, i) => [l, i + 1] as const)) {
    for (const [, span] of line.matchAll(/`([^`]+)`/g)) {
      const kv = /^([a-z0-9N|]+)=(.+)$/.exec(span);
      const keys = kv ? kv[1].split("|").map((k) => k.replace(/N$/, "0")) : ["scsi0"];
      const raw = kv ? kv[2] : span;
      if (!kv && !/^[^\s=,[]+:[^\s,=]+(,[a-z_]+=[^\s,]+)+$/.test(span)) continue;
      for (const key of keys) {
        if (!CODECS.some((c) => c.key.test(key))) continue;
        for (const v of expand(raw)) out.push({ source: `${doc}:${n} \`${span}\``, key, value: concrete(key, v) });
      }
    }
  }
  return out;
}

/** PVE's alternative boolean spellings inside property strings, written the canonical way. */
const canonicalBooleans = (s: string) => s.replace(/=(yes|on|true)(?=,|$)/g, "=1").replace(/=(no|off|false)(?=,|$)/g, "=0");

describe("property-string round trips over the BEHAVIOURS.md / ENDPOINTS.md examples", () => {
  const examples = [...referenceExamples("BEHAVIOURS.md"), ...referenceExamples("ENDPOINTS.md")];

  it("finds the examples the reference quotes, made concrete", () => {
    const found = examples.map((e) => `${e.key}=${e.value}`);
    for (const expected of [
      // BEHAVIOURS.md §1 (boolean spellings) and §4 (cloud-init drives)
      "agent=enabled=yes",
      "net0=virtio,firewall=true",
      "ide0=local-lvm:cloudinit",
      "scsi0=local-lvm:cloudinit",
      "sata0=local-lvm:cloudinit",
      "scsi0=local-lvm:vm-100-cloudinit,media=cdrom",
      // ENDPOINTS.md, configuration notes
      "scsi0=local-lvm:0,import-from=/path/to/img",
      "ide2=local-lvm:cloudinit",
      "scsi0=local-lvm:vm-9000-cloudinit,media=cdrom",
      "agent=1",
      "agent=enabled=1,fstrim_cloned_disks=1",
      "net0=virtio,bridge=vmbr0",
      "net0=virtio,bridge=vmbr0,tag=10,firewall=1",
      "ipconfig0=ip=10.0.0.10/24,gw=10.0.0.1",
    ]) {
      expect(found).toContain(expected);
    }
    expect(examples.filter((e) => e.source.startsWith("BEHAVIOURS.md")).length).toBeGreaterThanOrEqual(6);
  });

  it.each(examples.map((e) => [`${e.source} -> ${e.key}=${e.value}`, e.key, e.value]))("%s", (_name, key, value) => {
    const { codec } = CODECS.find((c) => c.key.test(key))!;
    const parsed = codec.parse(value);
    const printed = codec.format(parsed as never);
    // PVE's own spelling comes back verbatim; yes/on/true and no/off/false come back as 1/0
    expect(printed).toBe(printed === value ? value : canonicalBooleans(value));
    expect(canonicalOrder(codec.parse(printed))).toEqual(canonicalOrder(parsed));
    // yes/true/no/false are read as booleans, not kept as opaque text
    for (const [, k] of value.matchAll(/(?:^|,)([\w-]+)=(?:yes|true|no|false)(?=,|$)/g)) {
      expect([k, typeof (parsed as Record<string, unknown>)[k]]).toEqual([k, "boolean"]);
    }
  });
});

describe("net", () => {
  it("reads model=MAC, the bare model, and typed fields", () => {
    expect(canonicalOrder(parseNet("virtio=BC:24:11:2A:3B:4C,bridge=vmbr0,tag=10,firewall=1"))).toEqual({
      model: "virtio",
      macaddr: "BC:24:11:2A:3B:4C",
      bridge: "vmbr0",
      tag: 10,
      firewall: true,
    });
    expect(canonicalOrder(parseNet("virtio,bridge=vmbr0"))).toEqual({ model: "virtio", bridge: "vmbr0" });
    expect(normalizeMac("bc-24-11-2a-3b-4c")).toBe("BC:24:11:2A:3B:4C");
  });

  it("formats a new object the way PVE prints it (model=MAC first, then sorted keys)", () => {
    expect(formatNet({ bridge: "vmbr0", firewall: true, model: "virtio", macaddr: "BC:24:11:00:00:01", tag: 10 })).toBe(
      "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1,tag=10",
    );
    expect(formatNet({ model: "virtio", bridge: "vmbr0" })).toBe("virtio,bridge=vmbr0");
  });

  it("accepts the property-string boolean spellings and prints 1/0", () => {
    for (const t of ["1", "on", "yes", "true"]) expect(parseNet(`virtio,firewall=${t}`).firewall).toBe(true);
    for (const f of ["0", "off", "no", "false"]) expect(parseNet(`virtio,firewall=${f}`).firewall).toBe(false);
    expect(formatNet(canonicalOrder(parseNet("virtio,firewall=yes")))).toBe("virtio,firewall=1");
  });
});

describe("drives", () => {
  it("reads the volume and the options, keeping unknown keys", () => {
    const d = parseDrive("local-lvm:vm-100-disk-0,size=32G,discard=on,ssd=1,iothread=1,mbps_rd=100");
    expect(d).toMatchObject({ file: "local-lvm:vm-100-disk-0", size: "32G", discard: "on", ssd: true, iothread: true, extra: { mbps_rd: "100" } });
    expect(formatDrive(canonicalOrder(d))).toBe("local-lvm:vm-100-disk-0,discard=on,iothread=1,mbps_rd=100,size=32G,ssd=1");
  });

  it("recognises cloud-init drives, CD-ROMs, allocations and disk keys", () => {
    expect(isCloudInitDrive(parseDrive("local-lvm:cloudinit"))).toBe(true);
    expect(isCloudInitDrive(parseDrive("local-lvm:vm-101-cloudinit,media=cdrom,size=4M"))).toBe(true);
    expect(isCloudInitDrive(parseDrive("local-lvm:vm-101-disk-0,size=8G"))).toBe(false);
    expect(parseVolume("local-lvm:32")).toEqual({ storage: "local-lvm", allocateGiB: 32 });
    expect(parseVolume("none")).toEqual({ none: true });
    expect(parseVolume("local:iso/x.iso")).toEqual({ storage: "local", volume: "iso/x.iso" });
    expect(["scsi0", "virtio15", "sata5", "ide2", "efidisk0"].every(isDiskKey)).toBe(true);
    expect(["net0", "scsihw", "ipconfig0"].some(isDiskKey)).toBe(false);
  });
});

describe("ipconfig and agent", () => {
  it("parses ip/gw/ip6/gw6", () => {
    expect(canonicalOrder(parseIpConfig("ip=10.0.0.5/24,gw=10.0.0.1"))).toEqual({ ip: "10.0.0.5/24", gw: "10.0.0.1" });
    expect(formatIpConfig({ gw: "10.0.0.1", ip: "10.0.0.5/24" })).toBe("gw=10.0.0.1,ip=10.0.0.5/24");
  });

  it("parses the agent's default key and booleans", () => {
    expect(canonicalOrder(parseAgent(1))).toEqual({ enabled: true });
    expect(canonicalOrder(parseAgent("1,fstrim_cloned_disks=1"))).toEqual({ enabled: true, fstrim_cloned_disks: true });
    expect(canonicalOrder(parseAgent("enabled=on,type=isa"))).toEqual({ enabled: true, type: "isa" });
    expect(formatAgent({ enabled: true, fstrim_cloned_disks: true })).toBe("1,fstrim_cloned_disks=1");
  });
});

describe("sizes", () => {
  it("parses and formats like PVE", () => {
    expect(parseSize("32G")).toBe(32 * 1024 ** 3);
    expect(parseSize("512M")).toBe(512 * 1024 ** 2);
    expect(parseSize("4M")).toBe(4 * 1024 ** 2);
    expect(parseSize("1.5G")).toBe(1.5 * 1024 ** 3);
    expect(parseSize(1024)).toBe(1024);
    expect(parseSize("1000")).toBe(1000);
    expect(formatSize(34359738368)).toBe("32G");
    expect(formatSize(1.5 * 1024 ** 3)).toBe("1536M");
    expect(formatSize(1024 ** 4)).toBe("1T");
    expect(formatSize(1000)).toBe("1000");
    expect(normalizeSize("1024M")).toBe("1G");
    expect(parseResize("+10G")).toEqual({ grow: true, bytes: 10 * 1024 ** 3 });
    expect(parseResize("32G")).toEqual({ grow: false, bytes: 32 * 1024 ** 3 });
    expect(formatResize(10 * 1024 ** 3, true)).toBe("+10G");
    expect(() => parseSize("big")).toThrow(/invalid size 'big'/);
  });
});

describe("tags and sshkeys", () => {
  it("normalises tags like PVE: split on ; , space, lower-case, sort, dedupe, join ;", () => {
    expect(parseTags("Prod;web, db  web")).toEqual(["db", "prod", "web"]);
    expect(formatTags(["B", "a", "b"])).toBe("a;b");
    expect(formatTags("")).toBe("");
    expect(formatTags(undefined)).toBe("");
  });

  it("percent-encodes ssh keys to PVE's allowed set and decodes them back", () => {
    const keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx+/= user@host", "ssh-rsa AAAAB3Nza== other@host"];
    const encoded = encodeSshKeys(keys);
    expect(encoded).toMatch(/^[-%a-zA-Z0-9_.!~*'()]+$/);
    expect(encoded).toContain("%20");
    expect(encoded).toContain("%2B");
    expect(encoded).toContain("%2F");
    expect(encoded).toContain("%3D");
    expect(encoded).toContain("%40");
    expect(encoded).toContain("%0A");
    expect(decodeSshKeys(encoded)).toEqual(keys);
  });
});
