// The one way read() says an object no longer exists.

import type * as pulumi from "@pulumi/pulumi";

/** What read() answers for an object that no longer exists: the engine drops it from the state. */
export function gone<T>(): pulumi.dynamic.ReadResult<T> {
  return { id: "" };
}
