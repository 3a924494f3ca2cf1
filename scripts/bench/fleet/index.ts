/**
 * The benchmark's fleet: `bench:size` VmClones, full clones (linked with `bench:full` false) of
 * one template (a 10 GiB disk),
 * configured like a CI runner fleet (cores, memory, tags, description, NIC, DHCP) and started,
 * each waiting for its guest agent's IPv4. Run by scripts/bench.ts through the real engine.
 */
import * as pulumi from "@pulumi/pulumi";
import { VmClone } from "../../../provider/resources/vm-clone";

export = async function program(): Promise<Record<string, unknown>> {
    const cfg = new pulumi.Config("bench");
    const size = cfg.requireNumber("size");
    const templateVmid = cfg.getNumber("templateVmid") ?? 9000;
    // a snippet volume (bench:userData) given to every VM as cicustom user-data
    const userData = cfg.get("userData");
    const vms = Array.from({ length: size }, (_, i) =>
        new VmClone(`vm-${i}`, {
            template: { node: "pve1", vmid: templateVmid },
            full: cfg.getBoolean("full") ?? true,
            cores: 2,
            memory: 2048,
            tags: ["bench", "ci"],
            description: `bench runner ${i}`,
            networks: [{ bridge: "vmbr0" }],
            ipConfigs: [{ ip: "dhcp" }],
            ...(userData ? { cicustom: { user: userData } } : {}),
            agentTimeoutSeconds: 600,
        }),
    );
    return { addresses: pulumi.all(vms.map((v) => v.ipv4Address)) };
};
