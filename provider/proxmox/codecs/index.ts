export * from "./propertyString";
export * from "./net";
export * from "./disk";
export * from "./ipconfig";
export * from "./agent";
export * from "./size";
export * from "./tags";
export * from "./sshkeys";
