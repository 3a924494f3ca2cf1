/**
 * Leak checks for the end-to-end suites: every text a user or CI could see (the encrypted stack
 * export, the engine's and the provider's output, every error message) must contain none of the
 * secrets the test used. A secret is also looked for in the forms it commonly leaks in: its
 * base64, URL-encoded and JSON-escaped spellings, and (for long multi-line secrets such as an SSH
 * private key) each of its longer lines on its own.
 */

/** The spellings of `secret` to look for. Short secrets (< 8 characters) are refused: they would match by accident. */
export function secretForms(secret: string): string[] {
    if (secret.length < 8) throw new Error(`a secret to scan for must be at least 8 characters long (got ${secret.length}); use a longer test secret`);
    const forms = new Set<string>([
        secret,
        Buffer.from(secret, "utf8").toString("base64"),
        encodeURIComponent(secret),
        JSON.stringify(secret).slice(1, -1),
    ]);
    if (secret.includes("\n")) {
        for (const line of secret.split("\n").map((l) => l.trim())) {
            // the body lines of a PEM key, not its BEGIN/END armour
            if (line.length >= 24 && !line.startsWith("-----")) forms.add(line);
        }
    }
    return [...forms];
}

export interface SecretLeak {
    /** Index of the text in the list given. */
    text: number;
    /** Which secret (index), never its value. */
    secret: number;
    /** Where in the text, and the surrounding characters with the secret masked. */
    offset: number;
    context: string;
}

/** Every occurrence of any form of any secret in the texts. */
export function findSecrets(texts: string[], secrets: string[]): SecretLeak[] {
    const leaks: SecretLeak[] = [];
    secrets.forEach((secret, si) => {
        for (const form of secretForms(secret)) {
            texts.forEach((text, ti) => {
                for (let at = text.indexOf(form); at >= 0; at = text.indexOf(form, at + 1)) {
                    const context = (text.slice(Math.max(0, at - 60), at) + "«SECRET»" + text.slice(at + form.length, at + form.length + 60)).replace(/\s+/g, " ");
                    leaks.push({ text: ti, secret: si, offset: at, context });
                }
            });
        }
    });
    return leaks;
}

/**
 * Fails (naming the text, the secret's index and the place, never the secret) when any text
 * holds any secret. `texts` must not be empty: a scan of nothing proves nothing.
 */
export function assertNoSecrets(texts: string[], secrets: string[]): void {
    if (texts.length === 0 || texts.every((t) => t.length === 0)) throw new Error("assertNoSecrets: no text to scan (collect the stack export, engine output and errors first)");
    if (secrets.length === 0) throw new Error("assertNoSecrets: no secrets to look for");
    const leaks = findSecrets(texts, secrets);
    if (leaks.length) {
        const lines = leaks.slice(0, 10).map((l) => `text #${l.text}, secret #${l.secret}, offset ${l.offset}: …${l.context}…`);
        throw new Error(`${leaks.length} secret occurrence(s) found:\n${lines.join("\n")}`);
    }
}

/** Collects what the engine prints: pass `collector.opts` to up/preview/refresh/destroy. */
export class OutputCollector {
    readonly texts: string[] = [];
    /** onOutput / onError for the Automation API, and the engine's own verbose log to stderr. */
    get opts(): { onOutput: (s: string) => void; onError: (s: string) => void; logToStdErr: boolean; logVerbosity: number } {
        return {
            onOutput: (s) => this.texts.push(s),
            onError: (s) => this.texts.push(s),
            logToStdErr: true,
            logVerbosity: 5,
        };
    }
    /** Adds an error's message and stack (and, for Automation API errors, the CLI's stdout/stderr). */
    addError(err: unknown): void {
        const e = err as { message?: string; stack?: string; commandResult?: { stdout?: string; stderr?: string } };
        this.texts.push(String(e?.message ?? err), String(e?.stack ?? ""), e?.commandResult?.stdout ?? "", e?.commandResult?.stderr ?? "");
    }
}

// ---- the suite's ledger: what to look for, and where ---------------------------------------

/** Pulumi's marker of a secret value in a state file (`pulumi stack export`). */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** Resource properties that hold a secret whether or not the state marks them as one. */
const SECRET_PROPERTIES: Record<string, string[]> = {
    User: ["password"],
    ApiToken: ["value", "apiToken"],
};

/**
 * Log records that Pulumi itself writes with secret values in them, at the engine verbosity the
 * suites use (`-v=5`; from `-v=3` on). Not this provider's doing, and not something it can
 * prevent: @pulumi/pulumi's runtime (runtime/resource.js, invoke.js) logs every RPC response
 * with `log.debug(\`RegisterResource RPC finished: ...; resp: ${innerResponse}\`)`, the
 * response's outputs in plaintext, a new ApiToken's value included; the engine prints those
 * debug records when verbose. (Pulumi documents that levels up to 10 avoid exposing known
 * credentials; this is a bug of @pulumi/pulumi 3.248.) A secret the stack made (a resource's
 * secret output or password) found inside such a record is counted as exempt; the same secret
 * anywhere else is a leak, and a credential (config, environment, simulator) is never exempt.
 */
export const UPSTREAM_SECRET_RECORDS: RegExp[] = [/^\{"time":"[^"]*","level":"\w+","msg":"(RegisterResource|RegisterResourceOutputs|ReadResource|Invoke|Call|getResource Invoke) RPC finished: /];

/** The line of `text` around `offset`. */
function lineAt(text: string, offset: number): string {
    const start = text.lastIndexOf("\n", offset) + 1;
    const end = text.indexOf("\n", offset);
    return text.slice(start, end < 0 ? text.length : end);
}

/** Config keys and environment variables that hold credentials (by name). */
export const SECRET_NAME = /token|password|passwd|secret|private_?key|privatekey/i;

/**
 * The values to look for that `value` implies: itself and, for an API token in PVE's
 * `user@realm!tokenid=secret` form, the secret part alone (the id part is not secret).
 */
export function secretParts(value: string): string[] {
    const out = [value];
    const token = /^[^\s=!]+@[^\s=!]+![^\s=]+=(\S+)$/.exec(value.trim());
    if (token) out.push(token[1]);
    return out;
}

/**
 * Every secret a suite used, and every text a user or CI could have seen while it ran. The
 * harness fills one per test file (harness.suiteSecrets) and checks it after the file's tests.
 */
export class SecretLedger {
    /** value -> where it came from (a label, never the value). */
    private readonly secretValues = new Map<string, string>();
    /** Values a stack's resources hold as secrets (a token's value, a declared password), which
     *  Pulumi's own RPC debug records may show; credentials that only the stack config, the
     *  environment or the simulator hold are never exempt. */
    private readonly stackMade = new Set<string>();
    private readonly textList: Array<{ label: string; text: string }> = [];

    get secrets(): string[] {
        return [...this.secretValues.keys()];
    }

    get texts(): ReadonlyArray<{ label: string; text: string }> {
        return this.textList;
    }

    /** Registers a secret (and its token part). Values shorter than 8 characters are refused when
     *  `strict` (a test's own secret must be long enough to be found), else skipped. */
    addSecret(value: unknown, label: string, opts: { strict?: boolean; stackMade?: boolean } = {}): void {
        if (typeof value !== "string" || value.length === 0) return;
        for (const part of secretParts(value)) {
            if (part.length < 8) {
                if (opts.strict ?? true) secretForms(part); // throws, naming the length
                continue;
            }
            if (!this.secretValues.has(part)) this.secretValues.set(part, label);
            if (opts.stackMade) this.stackMade.add(part);
        }
    }

    addText(label: string, text: string | Buffer | undefined): void {
        if (text === undefined) return;
        const s = String(text);
        if (s.length) this.textList.push({ label, text: s });
    }

    /** An error's message and stack, and for an Automation API error the CLI's output. */
    addError(label: string, err: unknown): void {
        const e = err as { message?: string; stack?: string; commandResult?: { stdout?: string; stderr?: string } };
        this.addText(`${label}: error message`, String(e?.message ?? err));
        this.addText(`${label}: error stack`, e?.stack);
        this.addText(`${label}: error stdout`, e?.commandResult?.stdout);
        this.addText(`${label}: error stderr`, e?.commandResult?.stderr);
    }

    /**
     * Learns the secrets a state holds, from `pulumi stack export --show-secrets` (JSON text or
     * parsed): every value the state marks as a Pulumi secret (config secrets, a new token's
     * value, passwords, secret stack outputs), and the properties that are secret by nature
     * (a User's password, an ApiToken's value) even where the state failed to mark them.
     */
    harvestState(exported: unknown, label: string): void {
        const doc = typeof exported === "string" ? JSON.parse(exported) : exported;
        const strings = (v: unknown, out: string[] = []): string[] => {
            if (typeof v === "string") out.push(v);
            else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
            else if (v && typeof v === "object") Object.values(v).forEach((x) => strings(x, out));
            return out;
        };
        /** The value of a secret envelope (`{ <sig>: ..., plaintext: "<json>" }`), else undefined. */
        const unwrap = (v: unknown): { value: unknown } | undefined => {
            const o = v as Record<string, unknown> | undefined;
            if (!o || typeof o !== "object" || o[SECRET_SIG] !== SECRET_SIG_VALUE) return undefined;
            if (typeof o.plaintext !== "string") return { value: o.plaintext };
            try {
                return { value: JSON.parse(o.plaintext) };
            } catch {
                return { value: o.plaintext };
            }
        };
        const walk = (v: unknown, stackMade: boolean): void => {
            if (Array.isArray(v)) return v.forEach((x) => walk(x, stackMade));
            if (!v || typeof v !== "object") return;
            const secret = unwrap(v);
            if (secret) {
                for (const s of strings(secret.value)) this.addSecret(s, `${label}: a secret in the state`, { strict: false, stackMade });
                return;
            }
            Object.values(v).forEach((x) => walk(x, stackMade));
        };
        // A provider's inputs are the stack config (credentials); the rest is what the stack made.
        const resources = (doc?.deployment?.resources ?? []) as Array<{ type?: string }>;
        for (const r of resources) walk(r, !String(r.type ?? "").startsWith("pulumi:providers:"));
        walk({ ...doc, deployment: { ...doc?.deployment, resources: [] } }, false);
        for (const r of (doc?.deployment?.resources ?? []) as Array<{ type?: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }>) {
            const kind = String(r.type ?? "").split(":").pop() ?? "";
            for (const prop of SECRET_PROPERTIES[kind] ?? []) {
                for (const props of [r.inputs, r.outputs]) {
                    const value = props?.[prop];
                    for (const s of strings(unwrap(value)?.value ?? value)) this.addSecret(s, `${label}: ${kind}.${prop}`, { strict: false, stackMade: true });
                }
            }
        }
    }

    /** Occurrences inside Pulumi's own secret-bearing log records (UPSTREAM_SECRET_RECORDS). */
    exempted = 0;

    /** The leaks found, labelled (never showing a secret). */
    leaks(): string[] {
        const texts = this.textList.map((t) => t.text);
        const secrets = this.secrets;
        const found = findSecrets(texts, secrets);
        const real = found.filter((l) => !(this.stackMade.has(secrets[l.secret]) && UPSTREAM_SECRET_RECORDS.some((re) => re.test(lineAt(texts[l.text], l.offset)))));
        this.exempted = found.length - real.length;
        return real.map((l) => `${this.textList[l.text].label} holds the secret from ${this.secretValues.get(secrets[l.secret])} (offset ${l.offset}): …${l.context}…`);
    }

    /** Fails when any text holds any secret; refuses to pass on nothing. */
    assertClean(): void {
        if (this.textList.length === 0) throw new Error("secret scan: no text was collected (stack exports, engine output, errors); a scan of nothing proves nothing");
        if (this.secretValues.size === 0) throw new Error("secret scan: no secret was registered to look for");
        const leaks = this.leaks();
        if (leaks.length) throw new Error(`secret scan: ${leaks.length} secret occurrence(s) found:\n${leaks.slice(0, 10).join("\n")}`);
    }

    /** Whether anything was recorded (a file that made no stack has nothing to scan). */
    get used(): boolean {
        return this.textList.length > 0 || this.secretValues.size > 0;
    }
}
