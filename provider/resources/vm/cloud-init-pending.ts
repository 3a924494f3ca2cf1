// Cloud-init changes that wait for the guest's next boot. PVE applies cloud-init options to the
// config at once (never pending, qemu-server `$fast_plug_option`) and writes them to the drive
// at the next start; the guest reads them at boot. On a running VM they wait for a restart like
// pending keys, so VmClone lists them in `pendingChanges` until the VM has started again.

import type { CloneState } from "./clone-shape";

/** Cloud-init options (see the top of this file). */
export const CLOUD_INIT_KEY = /^(ipconfig\d+|cicustom|sshkeys|ciuser|cipassword|nameserver|searchdomain|citype|ciupgrade)$/;

/** Cloud-init keys `earlier` listed that still wait: the VM (started at `bootedAt`, epoch s) has
 *  not restarted since `earlier.cloudInitBoot`. */
export function cloudInitStillPending(earlier: Partial<CloneState> | undefined, bootedAt: number | undefined): string[] {
  const keys = (earlier?.pendingChanges ?? []).filter((k) => CLOUD_INIT_KEY.test(k));
  if (!keys.length || earlier?.cloudInitBoot === undefined || bootedAt === undefined) return keys;
  // a start since then (its uptime says it began later) has regenerated the drive
  return Math.abs(bootedAt - earlier.cloudInitBoot) > 60 ? [] : keys;
}
