// The shape of a VmClone's inputs and state, as the helpers in this folder take and return them.
//
// The properties are declared and documented once, in ../vm-clone.ts (VmCloneInputs,
// VmCloneState). The helpers cannot import that module (it imports them: a cycle), so this
// mirrors its types, without the docs. vm-clone.ts hands its own types to the helpers and takes
// theirs back, so the compiler holds the two in step. Once the field table generates those
// types (../fields.ts), this file becomes a re-export of the generated ones.

import type { VmSettings } from "./config-map";

export interface CloneInputs extends VmSettings {
  resourceName?: string;
  stack?: string;
  templateVmid: number;
  templateNode: string;
  node: string;
  full: boolean;
  storage?: string;
  pool?: string;
  vmid?: number;
  vmidRange?: { min: number; max: number };
  disk?: string;
  diskSize?: string;
  started: boolean;
  allowReboot: boolean;
  waitForIp: boolean;
  agentInterface?: string;
  agentTimeoutSeconds: number;
  shutdownTimeoutSeconds: number;
  adopt?: boolean;
  destroyOnDelete?: boolean;
}

export interface CloneState extends CloneInputs {
  vmid: number;
  vmidAllocated?: boolean;
  status: string;
  ipv4Address?: string;
  ipv4Addresses: string[];
  macAddresses: string[];
  pendingChanges: string[];
  cloudInitBoot?: number;
}
