// The web the simulated nodes download from (`download-url`), and what PVE's checks make of a
// downloaded file. The simulator writes no real image: a download's bytes are
// `pve-sim download: <url>\n` (checksums are computed over them), and what the file IS (a
// qcow2, an ISO, an OVA, ...) is described here, by default from the URL's file name, or set per
// URL (`ClusterOptions.remoteFiles`, back door `PUT /_sim/remote`).
//
// PVE's checks (read at the commits listed in REALISM.md):
// - pve-common Tools.pm `download_file_from_url`: `wget --progress=dot:giga -O <dest>.tmp_dwnl.<pid>
//   <url>` (`--no-check-certificate` only with `verify-certificates=0`) run with
//   `errmsg => "download failed"`, then the checksum, the decompression, then
//   `assert_file_validity` (failure: `failed to verify file: <error>`), then the rename.
// - pve-common Cmd.pm `run_command`: with `errmsg`, a failing command dies `<errmsg>: <last stderr
//   line>` when that line is not empty, else `<errmsg>: exit code <n>`; without `errmsg`,
//   `command '<cmd>' failed: exit code <n>`.
// - pve-storage API2/Storage/Status.pm `download_url` `assert_file_validity`: iso content
//   `assert_iso_content`; an `.ova` `assert_ova_contents` (`tar -t -f`, `ova archive has no .ovf
//   file inside`); an import image `file_size_info($tmp, 10, <format of the file name>, 1)`.
// - pve-storage Storage.pm `assert_iso_content` = `file_size_info($path, undef, 'auto-detect', 1)`;
//   Plugin.pm `file_size_info` (untrusted: `'data-file' references are not allowed!`,
//   `multiple children or extents are not allowed!`, `backing file not allowed for untrusted
//   image`); Common.pm `qemu_img_info`/`run_qemu_img_json` (qemu-img's stderr is the error, the
//   failed command a warning).
// - qemu-img (QEMU block/qcow2.c `qcow2_do_open`, block/vmdk.c `vmdk_open_desc_file`, qemu-img.c
//   `img_open_file`): `qemu-img: Could not open '<file>': Image is not in qcow2 format` /
//   `invalid VMDK image descriptor`; `-f raw` opens anything. ISO and tar files are raw to it.
// - wget (src/http.c, src/openssl.c): a 4xx/5xx answer ends `ERROR <code>: <text>.` and a blank
//   line, exit code 8; a 401 ends `Username/Password Authentication Failed.` (exit code 6); an
//   unverifiable certificate ends `To connect to <host> insecurely, use \`--no-check-certificate'.`,
//   exit code 5.

export type RemoteFormat = "qcow2" | "raw" | "vmdk" | "iso" | "ova" | "tar" | "compressed";

/** What a URL serves. Unset fields take the defaults from the URL (`remoteFileFor`). */
export interface RemoteFile {
  /** HTTP status the server answers (default 200; a `/4xx/` or `/5xx/` path segment sets it). */
  status?: number;
  /** An https server whose certificate wget cannot verify (self-signed, unknown CA). */
  untrustedCertificate?: boolean;
  /** What the file is as qemu-img and tar see it (default from the URL's extension; unknown:
   *  whatever the target file name says, so the checks pass). */
  format?: RemoteFormat;
  /** qcow2/vmdk: a backing file (refused for untrusted images). */
  backingFile?: string;
  /** qcow2: an external data file (refused for untrusted images). */
  dataFile?: string;
  /** vmdk: number of extents (more than one is refused for untrusted images). */
  extents?: number;
  /** ova/tar: whether the archive holds an `.ovf` (default: true for ova, false for tar). */
  hasOvf?: boolean;
  /** The image's virtual size in bytes (import content; default the latency option
   *  `importVirtualSize`). */
  virtualSize?: number;
  /** After decompression (`compression` on iso content): what the inner file is. */
  inner?: RemoteFormat;
}

const EXT_FORMAT: Array<[RegExp, RemoteFormat]> = [
  [/\.tar(\.(gz|xz|zst|bz2|lzo))?$/i, "tar"],
  [/\.(gz|xz|zst|bz2|lzo)$/i, "compressed"],
  // cloud images named `.img` (Ubuntu's `*-cloudimg-*.img`) are qcow2 files
  [/\.(qcow2|qcow|img)$/i, "qcow2"],
  [/\.raw$/i, "raw"],
  [/\.vmdk$/i, "vmdk"],
  [/\.ova$/i, "ova"],
  [/\.iso$/i, "iso"],
];

function formatOfName(name: string): RemoteFormat | undefined {
  for (const [re, f] of EXT_FORMAT) if (re.test(name)) return f;
  return undefined;
}

/** What `url` serves: the given description over the defaults from the URL. */
export function remoteFileFor(url: string, given?: RemoteFile): RemoteFile {
  let pathname = url;
  try {
    pathname = new URL(url).pathname;
  } catch {
    /* keep the raw string */
  }
  const status = /\/(4\d\d|5\d\d)(\/|$)/.exec(pathname);
  const last = pathname.split("/").pop() ?? "";
  const out: RemoteFile = { format: formatOfName(last) };
  if (status) out.status = Number(status[1]);
  if (out.format === "compressed") out.inner = formatOfName(last.replace(/\.(gz|xz|zst|bz2|lzo)$/i, ""));
  return { ...out, ...(given ?? {}) };
}

const HTTP_TEXT: Record<number, string> = {
  400: "Bad Request", 403: "Forbidden", 404: "Not Found", 407: "Proxy Authentication Required",
  410: "Gone", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};

function wgetTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}

/** wget's run: the log lines it prints and, when it fails, the task error
 *  (`download failed: …`, run_command with `errmsg`). */
export function wgetOutcome(url: string, tmp: string, r: RemoteFile, verifyCertificates: boolean, nowMs: number): { lines: string[]; error?: string } {
  let host = "";
  let https = false;
  try {
    const u = new URL(url);
    host = u.hostname;
    https = u.protocol === "https:";
  } catch {
    /* the route's pattern already required http(s):// */
  }
  const lines = [`--${wgetTime(nowMs)}--  ${url}`, `Connecting to ${host} (${host})|:${https ? 443 : 80}... connected.`];
  if (https && r.untrustedCertificate && verifyCertificates) {
    lines.push(
      `ERROR: cannot verify ${host}'s certificate, issued by 'CN=${host}':`,
      "  Self-signed certificate encountered.",
      `To connect to ${host} insecurely, use \`--no-check-certificate'.`,
    );
    // exit code 5 (SSL verification failure); the last stderr line is the error
    return { lines, error: `download failed: To connect to ${host} insecurely, use \`--no-check-certificate'.` };
  }
  if (r.status === 401) {
    // http.c: an unanswerable challenge ends `Username/Password Authentication Failed.` (exit 6)
    lines.push("HTTP request sent, awaiting response... 401 Unauthorized", "Username/Password Authentication Failed.");
    return { lines, error: "download failed: Username/Password Authentication Failed." };
  }
  if (r.status !== undefined && r.status >= 400) {
    const text = HTTP_TEXT[r.status] ?? "Error";
    lines.push(`HTTP request sent, awaiting response... ${r.status} ${text}`, `${wgetTime(nowMs)} ERROR ${r.status}: ${text}.`, "");
    // the last stderr line is blank: run_command reports the exit code (8, server error response)
    return { lines, error: "download failed: exit code 8" };
  }
  lines.push("HTTP request sent, awaiting response... 200 OK", `Saving to: '${tmp}'`);
  return { lines };
}

/** What qemu-img sees in a file of format `f` (ISO, tar and compressed files are raw to it). */
function qemuImgFormat(f: RemoteFormat | undefined): string | undefined {
  if (f === undefined) return undefined;
  return f === "qcow2" || f === "vmdk" ? f : "raw";
}

/**
 * pve-storage Plugin.pm `file_size_info($file, $timeout, $format, 1)` on the downloaded temp
 * file: the log lines (warnings) and the error, if any. `format` undefined = `auto-detect`.
 */
export function untrustedFileSizeInfo(tmp: string, r: RemoteFile, format: string | undefined): { lines: string[]; error?: string } {
  const actual = qemuImgFormat(r.format) ?? format ?? "raw";
  const opened = format ?? actual;
  if (opened !== "raw" && opened !== actual) {
    const why = opened === "qcow2" ? "Image is not in qcow2 format" : opened === "vmdk" ? "invalid VMDK image descriptor" : `Image is not in ${opened} format`;
    return {
      lines: [`command '/usr/bin/qemu-img info --output=json ${tmp} -f ${opened}' failed: exit code 1`],
      error: `qemu-img: Could not open '${tmp}': ${why}`,
    };
  }
  if (opened === "qcow2" && r.dataFile) return { lines: [], error: `${tmp}: 'data-file' references are not allowed!` };
  if (opened === "vmdk" && (r.extents ?? 1) > 1) return { lines: [], error: `${tmp}: multiple children or extents are not allowed!` };
  if (opened !== "raw" && r.backingFile) return { lines: [], error: `backing file not allowed for untrusted image '${tmp}'!` };
  return { lines: [] };
}

/** Status.pm `assert_ova_contents`: `tar -t -f <file>` must list an `.ovf`. */
export function assertOvaContents(tmp: string, r: RemoteFile): { lines: string[]; error?: string } {
  const tar = r.format === "ova" || r.format === "tar" || r.format === undefined;
  if (!tar) {
    return {
      lines: ["tar: This does not look like a tar archive", "tar: Skipping to next header", "tar: Exiting with failure status due to previous errors"],
      error: `command 'tar -t -f ${tmp}' failed: exit code 2`,
    };
  }
  const hasOvf = r.hasOvf ?? r.format !== "tar";
  return hasOvf ? { lines: [] } : { lines: [], error: "ova archive has no .ovf file inside" };
}
