/**
 * The CI examples in examples/ci stay what examples/ci/README.md says they are (no engine here;
 * test/e2e/ci-preview.test.ts runs the same commands through the real engine): the preview on
 * merge/pull requests and the drift check on the default branch's schedule, with the read-only
 * token from the environment, nothing built beyond `npm ci`, and no credential in stack config.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { REPO_ROOT } from "./harness";

const CI = path.join(REPO_ROOT, "examples", "ci");
const read = (p: string) => fs.readFileSync(path.join(CI, p), "utf8");
/** The Pulumi CLI release the pipelines pin: the newest one tested, the one scripts/ensure-pulumi.sh provides. */
const CLI_VERSION = /^readonly VERSION="([^"]+)"$/m.exec(fs.readFileSync(path.join(REPO_ROOT, "scripts", "ensure-pulumi.sh"), "utf8"))![1];

/** Every shell line of a job, joined (GitLab: before_script + script; GitHub: `run` steps). */
function gitlabLines(doc: any, job: string): string[] {
  const j = doc[job];
  const base = j.extends ? doc[j.extends] : {};
  return [...(j.before_script ?? base.before_script ?? []), ...(j.script ?? [])];
}
function githubLines(doc: any, job: string): string[] {
  return (doc.jobs[job].steps as Array<{ run?: string }>).flatMap((s) => (s.run ? [s.run] : []));
}

function expectPreviewAndDrift(preview: string[], drift: string[]): void {
  const pv = preview.find((l) => l.includes("pulumi preview"));
  const dc = drift.find((l) => l.includes("pulumi preview"));
  expect(pv).toMatch(/--diff/);
  expect(pv).toMatch(/--refresh/);
  expect(pv).not.toMatch(/--expect-no-changes/);
  expect(dc).toMatch(/--diff/);
  expect(dc).toMatch(/--refresh/);
  expect(dc).toMatch(/--expect-no-changes/);
  for (const line of [...preview, ...drift]) {
    expect(line).not.toMatch(/pulumi (up|refresh|destroy|import)\b|--yes|npm run build|\btsc\b|go (build|install)/);
    expect(line).not.toMatch(/config set/);
  }
  expect([...preview, ...drift].filter((l) => /\bnpm\b/.test(l)).every((l) => /^npm ci\b/.test(l))).toBe(true);
}

describe("examples/ci", () => {
  it("GitLab: preview on merge requests, drift check on the default branch's schedule, read-only", () => {
    const text = read(".gitlab-ci.yml");
    const doc = parse(text);
    expect(doc.preview.rules).toEqual([{ if: '$CI_PIPELINE_SOURCE == "merge_request_event"' }]);
    expect(doc["drift-check"].rules).toEqual([{ if: '$CI_PIPELINE_SOURCE == "schedule" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH' }]);
    expectPreviewAndDrift(gitlabLines(doc, "preview"), gitlabLines(doc, "drift-check"));
    // credentials come from CI variables (the environment), never from the file
    expect(Object.keys(doc.variables)).not.toContain("PROXMOX_VE_API_TOKEN");
    expect(text).toMatch(/PROXMOX_VE_API_TOKEN\s+ci-readonly@pve!preview=/);
    expect(text).toMatch(/PULUMI_CONFIG_PASSPHRASE/);
    expect(doc[".pulumi"].before_script.join("\n")).toMatch(/get\.pulumi\.com.*--version "\$PULUMI_VERSION"/);
    expect(doc.variables.PULUMI_VERSION).toBe(CLI_VERSION);
  });

  it("GitHub Actions: preview on pull requests, drift check on the schedule, read-only token and passphrase from secrets", () => {
    const doc = parse(read(".github/workflows/pulumi-preview.yml"));
    expect(Object.keys(doc.on).sort()).toEqual(["pull_request", "schedule", "workflow_dispatch"]);
    expect(doc.jobs.preview.if).toBe("github.event_name == 'pull_request'");
    expect(doc.jobs["drift-check"].if).toMatch(/github.event_name != 'pull_request'/);
    expect(doc.jobs["drift-check"].if).toMatch(/default_branch/);
    expect(doc.permissions).toEqual({ contents: "read" });
    expect(doc.env.PROXMOX_VE_API_TOKEN).toBe("${{ secrets.PROXMOX_VE_API_TOKEN }}");
    expect(doc.env.PULUMI_CONFIG_PASSPHRASE).toBe("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
    expectPreviewAndDrift(githubLines(doc, "preview"), githubLines(doc, "drift-check"));
    for (const job of ["preview", "drift-check"]) {
      const uses = (doc.jobs[job].steps as Array<{ uses?: string; with?: Record<string, unknown> }>).filter((s) => s.uses?.startsWith("pulumi/"));
      expect(uses).toEqual([{ uses: "pulumi/actions@v6", with: { "pulumi-version": CLI_VERSION } }]);
    }
  });

  it("README: explains the role binding with the code the e2e fixture runs", () => {
    const readme = read("README.md");
    expect(readme).toContain("PVEAuditor");
    expect(readme).toContain("ci-readonly@pve!preview");
    expect(readme).toMatch(/privsep/);
    // the code shown is examples/ci/ci-access.ts, which test/e2e/fixtures/ci-preview runs
    const code = read("ci-access.ts");
    const shown = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf("ci-access.ts")))?.[1] ?? "";
    for (const line of shown.split("\n").filter((l) => /new (User|ApiToken|UserRoleBinding)\(/.test(l))) expect(code).toContain(line.trim());
    expect(shown).toMatch(/new UserRoleBinding\("ci-preview-auditor"/);
    expect(fs.readFileSync(path.join(REPO_ROOT, "test", "e2e", "fixtures", "ci-preview", "index.ts"), "utf8")).toContain("examples/ci/ci-access");
  });
});
