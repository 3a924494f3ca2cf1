/** The snippet transport (SSH/SFTP) and host-key verification. Knows nothing of Pulumi. */
export * from "./errors";
export * from "./hash";
export * from "./hostkeys";
export * from "./connection";
export * from "./nodes";
export * from "./snippets";
export * from "./transport";
