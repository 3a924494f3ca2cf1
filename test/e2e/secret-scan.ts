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
