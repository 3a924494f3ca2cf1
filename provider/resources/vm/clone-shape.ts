// The shape of a VmClone's inputs and state as the helpers in this folder take and return them:
// the types generated from the field table (../fields/vm-clone.ts), under the helpers' names.

export type { VmCloneInputs as CloneInputs, VmCloneState as CloneState } from "../generated/vm-clone";
