//! `GET /v1/nodes/{node}/validate`: what each of a node's interfaces would say
//! about the node, as Ironic's conductor asks them (`validate_driver_interfaces`).
//!
//! Pure: the node, and the few facts about the service the checks need
//! ([`ValidationEnv`]). The storage rules are Ironic's (`docs/ironic-behaviour.md`
//! §8.2, §8.3) word for word; [`should_write_image`] is the one rule the deploy path
//! shares with them.
//!
//! One deliberate difference: Ironic's `pxe`/`ipxe` boot interfaces require a
//! deploy kernel and ramdisk even for a boot-from-volume node, because Ironic
//! would still boot its agent ramdisk for cleaning. ironledger never boots a
//! ramdisk for a node that boots from a volume, so that check is skipped when
//! no image is written.

use super::bmc_access::{self, BmcAccess, PathExists, Protocol};
use super::capabilities::Capabilities;
use super::node::Node;
use super::oslo::truthy;
use serde_json::Value;

/// The interfaces Ironic validates, in the order its answer lists them
/// (core interfaces first, then the standard ones; `vendor` is never validated).
pub const VALIDATED: [&str; 12] = [
    "boot",
    "deploy",
    "management",
    "network",
    "power",
    "bios",
    "console",
    "firmware",
    "inspect",
    "raid",
    "rescue",
    "storage",
];

/// What the checks need to know about the service.
#[derive(Debug, Clone, Default)]
pub struct ValidationEnv {
    /// `[conductor] deploy_kernel` is configured (a fallback for `driver_info`).
    pub deploy_kernel: bool,
    /// `[conductor] deploy_ramdisk` is configured.
    pub deploy_ramdisk: bool,
    /// The host name unexpected failures are reported from.
    pub host: String,
    /// Whether a `redfish_verify_ca` path exists (the caller's I/O); `None`
    /// counts every path as absent.
    pub path_exists: Option<PathExists>,
}

fn no_path(_: &str) -> bool {
    false
}

/// What a `redfish` or `ipmitool` power or management interface says: the
/// reading of `driver_info` (`domain::bmc_access`), and for IPMI power the
/// address check Ironic's `IPMIPower.validate` adds.
fn bmc(node: &Node, env: &ValidationEnv, kind: &str) -> Outcome {
    let Some(protocol) = Protocol::of_interface(node.interface(kind)) else {
        return Ok(());
    };
    let access = bmc_access::parse(
        protocol,
        &node.id(),
        &node.driver_info,
        env.path_exists.unwrap_or(no_path),
    )?;
    match access {
        BmcAccess::Ipmi(i) if kind == "power" => i.check_address(&node.id()),
        _ => Ok(()),
    }
}

/// The outcome for one interface: `Ok` or the reason it fails.
pub type Outcome = Result<(), String>;

/// Boot interfaces that can chain-load iPXE (`ipxe_boot` capability).
pub fn ipxe_boot(boot: &str) -> bool {
    matches!(boot, "ipxe" | "ipxe-http")
}

/// Whether deploying this node writes an image to its disk (Ironic's
/// `should_write_image`). `noop` always does; `cinder` and `external` do not
/// when `image_source` is absent as a key and a target has boot index 0.
pub fn should_write_image(node: &Node) -> bool {
    match node.interface("storage") {
        "cinder" | "external" => {
            node.instance_info.contains_key("image_source")
                || !node.targets.iter().any(|t| t.boot_index == 0)
        }
        _ => true,
    }
}

/// Why a deploy (or rebuild) of `node` cannot succeed, or `None`: what
/// Ironic's conductor checks when the request arrives (the power and deploy
/// interfaces' `validate`, which covers boot and storage: a port to boot
/// from, a boot-index-0 target with what the renderer needs, the BMC's
/// `driver_info`), plus what ironledger itself cannot do (write an image to
/// disk) and the capability a volume boot needs. The provision request is
/// refused with it (nothing written); the process manager asks again before
/// it touches anything, for deploys accepted before this rule.
pub fn deploy_refusal(node: &Node) -> Option<String> {
    if node.interface("storage") == "noop" {
        return Some(format!(
            "Node {} has the noop storage interface: its image would have to be written to disk, which ironledger does not do. Set the storage interface to cinder or external to boot from a volume.",
            node.id()
        ));
    }
    if should_write_image(node) {
        return Some(format!(
            "Node {} would need an image written to disk (instance_info/image_source is set, or no volume target has boot index 0); ironledger deploys boot-from-volume nodes only.",
            node.id()
        ));
    }
    for (kind, outcome) in validate(node, &ValidationEnv::default()) {
        if matches!(kind, "storage" | "boot" | "power" | "management") {
            if let Err(reason) = outcome {
                return Some(reason);
            }
        }
    }
    let boot = node.targets.iter().find(|t| t.boot_index == 0)?;
    let caps = crate::domain::capabilities::Capabilities::from_properties(&node.properties);
    // Ironic's texts, per volume type.
    let needed = match boot.volume_type.as_str() {
        "iscsi" => Some(("iscsi_boot", "an iSCSI", "iSCSI")),
        "fibre_channel" => Some(("fibre_channel_boot", "a Fibre Channel", "Fibre Channel")),
        _ => None,
    };
    if let Some((cap, a_kind, kind)) = needed {
        if !caps.has(cap) {
            return Some(format!(
                "Node {} has {a_kind} boot volume defined and no {kind} boot support available.",
                node.id()
            ));
        }
    }
    // With `external` storage the targets' properties are the operator's,
    // complete before the deploy: the boot script must be writable from them
    // (with `cinder`, Cinder fills them in when it attaches the volumes).
    if node.interface("storage") == "external" && ipxe_boot(node.interface("boot")) {
        if let Err(e) = crate::domain::boot_plan::plan(&node.targets, &node.connectors) {
            return Some(format!("The boot script cannot be written: {e}"));
        }
    }
    None
}

/// Validates every interface of `node`, in Ironic's order.
pub fn validate(node: &Node, env: &ValidationEnv) -> Vec<(&'static str, Outcome)> {
    VALIDATED
        .iter()
        .map(|kind| (*kind, validate_one(node, env, kind)))
        .collect()
}

fn validate_one(node: &Node, env: &ValidationEnv, kind: &str) -> Outcome {
    let name = node.interface(kind);
    if name.is_empty() || name.starts_with("no-") {
        return Err(format!(
            "Driver {} does not support {kind} (disabled or not implemented).",
            node.driver
        ));
    }
    match kind {
        "boot" => boot(node, env),
        "deploy" => deploy(node, env),
        "storage" => storage(node, env),
        "power" | "management" => bmc(node, env, kind),
        // fake, noop, flat and the like have nothing to check.
        _ => Ok(()),
    }
}

fn missing(prefix: String, names: &[&str]) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!("{prefix}. Missing are: [{}]", list.join(", "))
}

/// Ironic's `validate_capabilities`: known capabilities must hold known values.
fn capabilities(node: &Node) -> Outcome {
    const SUPPORTED: [(&str, &[&str]); 3] = [
        ("boot_mode", &["bios", "uefi"]),
        ("secure_boot", &["true", "false"]),
        ("disk_label", &["msdos", "gpt"]),
    ];
    let props = Capabilities::from_properties(&node.properties);
    let instance = match node.instance_info.get("capabilities") {
        Some(Value::String(s)) => serde_json::from_str::<serde_json::Map<String, Value>>(s)
            .ok()
            .unwrap_or_default(),
        Some(Value::Object(m)) => m.clone(),
        _ => Default::default(),
    };
    for (cap, valid) in SUPPORTED {
        let from_props = props.get(cap).map(str::to_string);
        let from_instance = instance
            .get(cap)
            .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()));
        for (value, field) in [
            (from_props, "properties/capabilities"),
            (from_instance, "instance_info['capabilities']"),
        ] {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                if !valid.contains(&v.as_str()) {
                    return Err(format!(
                        "The parameter '{cap}' from {field} has an invalid value: '{v}'. Acceptable values are: {}.",
                        valid.join(", ")
                    ));
                }
            }
        }
    }
    Ok(())
}

/// PXE/iPXE boot (`PXEBaseMixin.validate`, local boot).
fn boot(node: &Node, env: &ValidationEnv) -> Outcome {
    let boot = node.interface("boot");
    if !matches!(boot, "pxe" | "ipxe" | "ipxe-http") {
        return Ok(());
    }
    if node.ports.is_empty() {
        return Err(format!(
            "Node {} does not have any port associated with it",
            node.id()
        ));
    }
    capabilities(node)?;
    let has = |k: &str| node.instance_info.get(k).is_some_and(truthy);
    if has("image_source") && has("boot_iso") {
        return Err(
            "An 'image_source' and 'boot_iso' parameter may not be specified at the same time"
                .into(),
        );
    }
    // The ramdisk deploy boots no agent; neither does a boot-from-volume deploy
    // in ironledger (see the module docs).
    if node.interface("deploy") != "ramdisk" && should_write_image(node) {
        let mut absent = vec![];
        if !node.driver_info.get("deploy_kernel").is_some_and(truthy) && !env.deploy_kernel {
            absent.push("deploy_kernel");
        }
        if !node.driver_info.get("deploy_ramdisk").is_some_and(truthy) && !env.deploy_ramdisk {
            absent.push("deploy_ramdisk");
        }
        if !absent.is_empty() {
            return Err(missing(
                "Cannot validate PXE bootloader. Some parameters were missing in node's driver_info and configuration".into(),
                &absent,
            ));
        }
    }
    Ok(())
}

/// The `direct` (agent) and `ramdisk` deploys: the boot interface's checks,
/// then, when an image is written, the image's.
fn deploy(node: &Node, env: &ValidationEnv) -> Outcome {
    let deploy = node.interface("deploy");
    if !matches!(deploy, "direct" | "ramdisk") {
        return Ok(());
    }
    boot(node, env)?;
    capabilities(node)?;
    if deploy == "ramdisk" || !should_write_image(node) {
        return Ok(());
    }
    let info = &node.instance_info;
    let source = match info.get("image_source") {
        Some(v) if truthy(v) => v.as_str().map(str::to_string).unwrap_or(v.to_string()),
        _ => {
            return Err(missing(
                format!(
                    "Node {} failed to validate deploy image info. Some parameters were missing",
                    node.id()
                ),
                &["instance_info.image_source"],
            ))
        }
    };
    if let Some(t) = info.get("image_type").filter(|v| truthy(v)) {
        let t = t.as_str().unwrap_or_default();
        if !matches!(t, "partition" | "whole-disk") {
            return Err(format!(
                "Invalid image_type \"{t}\", valid are partition, whole-disk"
            ));
        }
    }
    let glance = uuid::Uuid::parse_str(&source).is_ok() || source.starts_with("glance://");
    if !glance && !source.starts_with("file://") && !source.starts_with("oci://") {
        let set = |k: &str| info.get(k).is_some_and(truthy);
        let (algo, value, checksum) = (
            set("image_os_hash_algo"),
            set("image_os_hash_value"),
            set("image_checksum"),
        );
        if algo != value || (!value && !checksum) {
            return Err(format!(
                "image_source's \"image_checksum\", or \"image_os_hash_algo\" and \"image_os_hash_value\" must be provided in instance_info for node {}",
                node.id()
            ));
        }
    }
    Ok(())
}

/// The storage interface (`docs/ironic-behaviour.md` §8.2, §8.3).
fn storage(node: &Node, env: &ValidationEnv) -> Outcome {
    match node.interface("storage") {
        "external" => {
            if !should_write_image(node) && !ipxe_boot(node.interface("boot")) {
                return Err(format!(
                    "Failed to validate external storage interface for node {}. To support network booting to an iSCSI volume, the boot interface must be set to ``ipxe``.",
                    node.id()
                ));
            }
            Ok(())
        }
        "cinder" => cinder(node, env),
        _ => Ok(()),
    }
}

fn cinder(node: &Node, env: &ValidationEnv) -> Outcome {
    let fail = |reason: String| {
        Err(format!(
            "Failed to validate cinder storage interface for node {}. {reason}",
            node.id()
        ))
    };
    // Connectors: iSCSI needs iPXE; WWPNs and WWNNs come in pairs.
    let mut iscsi_found = false;
    let (mut wwpn, mut wwnn) = (0, 0);
    for c in &node.connectors {
        if c.kind == "iqn" {
            iscsi_found = true;
            if !ipxe_boot(node.interface("boot")) {
                return fail(
                    "The [pxe]/ipxe_enabled option must be set to True or the boot interface must be set to ``ipxe`` to support network booting to an iSCSI volume.".into(),
                );
            }
        }
        match c.kind.as_str() {
            "wwpn" => wwpn += 1,
            "wwnn" => wwnn += 1,
            _ => {}
        }
    }
    if wwpn != wwnn {
        // A StorageError in Ironic, which its conductor reports as unexpected.
        return Err(format!(
            "Unexpected exception, traceback saved into log by ironic conductor service that is running on {}: Failed to validate cinder storage interface for node {}. Cinder requires both wwnn and wwpn entries for FCoE connections. There must be a wwpn entry for every wwnn entry. There are {wwpn} wwpn entries and {wwnn} wwnn entries.",
            env.host,
            node.id()
        ));
    }
    let fc_found = wwpn >= 1;
    let caps = Capabilities::from_properties(&node.properties);
    let iscsi_boot = caps.is_true("iscsi_boot");
    let fc_boot = caps.is_true("fibre_channel_boot");
    if iscsi_boot && !iscsi_found {
        return fail("In order to enable the 'iscsi_boot' capability for the node, an associated volume_connector type must be valid for iSCSI (iqn).".into());
    }
    if fc_boot && !fc_found {
        return fail("In order to enable the 'fibre_channel_boot' capability for the node, an associated volume_connector type must be valid for Fibre Channel (wwpn, wwnn).".into());
    }
    for t in &node.targets {
        let id = t.uuid;
        match t.volume_type.as_str() {
            "fibre_channel" => {
                if !fc_boot && t.boot_index == 0 {
                    return fail(format!("Volume target {id} is configured for 'fibre_channel', however the capability 'fibre_channel_boot' is not set on node."));
                }
                if !fc_found {
                    return fail(format!("Volume target {id} is configured for 'fibre_channel', however no Fibre Channel WWPNs are configured for the node volume connectors."));
                }
            }
            "iscsi" => {
                if !iscsi_boot && t.boot_index == 0 {
                    return fail(format!("Volume target {id} is configured for 'iscsi', however the capability 'iscsi_boot' is not set for the node."));
                }
                if !iscsi_found {
                    return fail(format!("Volume target {id} is configured for 'iscsi', however no iSCSI connectors are configured for the node."));
                }
            }
            other => {
                return fail(format!("Volume target {id} is of an unknown type '{other}'. Supported types: 'iscsi' or 'fibre_channel'"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::node::entities::{Connector, Port, Target};
    use serde_json::json;
    use uuid::Uuid;

    const NODE: Uuid = Uuid::from_u128(0x2d6e_a5c1_0000_4000_8000_0000_0000_0001);

    fn node(storage: &str, boot: &str) -> Node {
        let mut n = Node {
            exists: true,
            uuid: Some(NODE),
            driver: "fake-hardware".into(),
            ..Node::default()
        };
        for kind in crate::domain::hardware::INTERFACE_KINDS {
            n.interfaces.insert(kind.into(), "fake".into());
        }
        n.interfaces.insert("storage".into(), storage.into());
        n.interfaces.insert("boot".into(), boot.into());
        n
    }

    fn connector(kind: &str, n: u128) -> Connector {
        Connector {
            uuid: Uuid::from_u128(n),
            kind: kind.into(),
            connector_id: format!("{kind}-{n}"),
            extra: Default::default(),
        }
    }

    fn target(kind: &str, boot_index: i64, n: u128) -> Target {
        Target {
            uuid: Uuid::from_u128(n),
            volume_type: kind.into(),
            boot_index,
            volume_id: format!("vol-{n}"),
            properties: Default::default(),
            extra: Default::default(),
        }
    }

    fn storage_of(n: &Node) -> Outcome {
        validate(n, &ValidationEnv::default())
            .into_iter()
            .find(|(k, _)| *k == "storage")
            .unwrap()
            .1
    }

    fn cinder_fail(reason: &str) -> Outcome {
        Err(format!(
            "Failed to validate cinder storage interface for node {NODE}. {reason}"
        ))
    }

    #[test]
    fn should_write_image_follows_ironic() {
        let mut n = node("noop", "ipxe");
        n.targets.push(target("iscsi", 0, 1));
        assert!(should_write_image(&n));
        n.interfaces.insert("storage".into(), "cinder".into());
        assert!(!should_write_image(&n));
        n.instance_info.insert("image_source".into(), Value::Null);
        assert!(
            should_write_image(&n),
            "a key with a null value still counts"
        );
        n.instance_info.clear();
        n.targets[0].boot_index = 1;
        assert!(should_write_image(&n));
    }

    #[test]
    fn noop_and_fake_storage_always_pass() {
        assert_eq!(storage_of(&node("noop", "fake")), Ok(()));
        let mut n = node("fake", "fake");
        n.targets.push(target("weird", 0, 1));
        assert_eq!(storage_of(&n), Ok(()));
    }

    #[test]
    fn external_needs_ipxe_when_no_image_is_written() {
        let mut n = node("external", "pxe");
        assert_eq!(storage_of(&n), Ok(()), "writes an image: nothing to check");
        n.targets.push(target("iscsi", 0, 1));
        assert_eq!(
            storage_of(&n),
            Err(format!("Failed to validate external storage interface for node {NODE}. To support network booting to an iSCSI volume, the boot interface must be set to ``ipxe``."))
        );
        n.interfaces.insert("boot".into(), "ipxe".into());
        assert_eq!(storage_of(&n), Ok(()));
        n.interfaces.insert("boot".into(), "ipxe-http".into());
        assert_eq!(storage_of(&n), Ok(()));
    }

    #[test]
    fn cinder_connector_rules() {
        let mut n = node("cinder", "pxe");
        n.connectors.push(connector("iqn", 1));
        assert_eq!(
            storage_of(&n),
            cinder_fail("The [pxe]/ipxe_enabled option must be set to True or the boot interface must be set to ``ipxe`` to support network booting to an iSCSI volume.")
        );
        let mut n = node("cinder", "ipxe");
        n.connectors.push(connector("wwpn", 1));
        n.connectors.push(connector("wwpn", 2));
        n.connectors.push(connector("wwnn", 3));
        let err = storage_of(&n).unwrap_err();
        assert!(err.starts_with("Unexpected exception, traceback saved into log"));
        assert!(
            err.ends_with("There are 2 wwpn entries and 1 wwnn entries."),
            "{err}"
        );
    }

    #[test]
    fn cinder_capability_rules() {
        let mut n = node("cinder", "ipxe");
        n.properties
            .insert("capabilities".into(), json!("iscsi_boot:True"));
        assert_eq!(
            storage_of(&n),
            cinder_fail("In order to enable the 'iscsi_boot' capability for the node, an associated volume_connector type must be valid for iSCSI (iqn).")
        );
        n.properties
            .insert("capabilities".into(), json!("fibre_channel_boot:yes"));
        assert_eq!(
            storage_of(&n),
            cinder_fail("In order to enable the 'fibre_channel_boot' capability for the node, an associated volume_connector type must be valid for Fibre Channel (wwpn, wwnn).")
        );
        // A false capability asks for nothing.
        n.properties
            .insert("capabilities".into(), json!("iscsi_boot:false"));
        assert_eq!(storage_of(&n), Ok(()));
    }

    #[test]
    fn cinder_target_rules_in_order() {
        let t = Uuid::from_u128(7);
        let mut n = node("cinder", "ipxe");
        n.targets.push(target("iscsi", 0, 7));
        assert_eq!(
            storage_of(&n),
            cinder_fail(&format!("Volume target {t} is configured for 'iscsi', however the capability 'iscsi_boot' is not set for the node."))
        );
        n.properties
            .insert("capabilities".into(), json!("iscsi_boot:true"));
        n.connectors.push(connector("iqn", 1));
        assert_eq!(storage_of(&n), Ok(()));
        // A non-boot target needs only a connector.
        let mut n = node("cinder", "ipxe");
        n.targets.push(target("iscsi", 1, 7));
        assert_eq!(
            storage_of(&n),
            cinder_fail(&format!("Volume target {t} is configured for 'iscsi', however no iSCSI connectors are configured for the node."))
        );
        let mut n = node("cinder", "ipxe");
        n.targets.push(target("fibre_channel", 0, 7));
        assert_eq!(
            storage_of(&n),
            cinder_fail(&format!("Volume target {t} is configured for 'fibre_channel', however the capability 'fibre_channel_boot' is not set on node."))
        );
        n.targets[0].boot_index = 2;
        assert_eq!(
            storage_of(&n),
            cinder_fail(&format!("Volume target {t} is configured for 'fibre_channel', however no Fibre Channel WWPNs are configured for the node volume connectors."))
        );
        n.targets[0].volume_type = "nvme".into();
        assert_eq!(
            storage_of(&n),
            cinder_fail(&format!("Volume target {t} is of an unknown type 'nvme'. Supported types: 'iscsi' or 'fibre_channel'"))
        );
    }

    #[test]
    fn no_interfaces_and_boot_and_deploy() {
        let mut n = node("noop", "ipxe");
        n.interfaces.insert("bios".into(), "no-bios".into());
        n.interfaces.insert("deploy".into(), "direct".into());
        let all = validate(&n, &ValidationEnv::default());
        let get = |k: &str| all.iter().find(|(x, _)| *x == k).unwrap().1.clone();
        assert_eq!(
            get("bios"),
            Err("Driver fake-hardware does not support bios (disabled or not implemented).".into())
        );
        let no_port = Err(format!(
            "Node {NODE} does not have any port associated with it"
        ));
        assert_eq!(get("boot"), no_port);
        assert_eq!(get("deploy"), no_port);
        assert_eq!(get("power"), Ok(()));
        assert_eq!(all.len(), 12);
        assert_eq!(all[0].0, "boot");
        assert_eq!(all[11].0, "storage");

        n.ports.push(Port {
            uuid: Uuid::from_u128(9),
            address: "52:54:00:00:00:01".into(),
            pxe_enabled: true,
            extra: Default::default(),
            ..Default::default()
        });
        let all = validate(&n, &ValidationEnv::default());
        let get = |k: &str| all.iter().find(|(x, _)| *x == k).unwrap().1.clone();
        assert_eq!(get("boot"), Err("Cannot validate PXE bootloader. Some parameters were missing in node's driver_info and configuration. Missing are: ['deploy_kernel', 'deploy_ramdisk']".into()));
        let env = ValidationEnv {
            deploy_kernel: true,
            deploy_ramdisk: true,
            host: "h".into(),
            path_exists: None,
        };
        let all = validate(&n, &env);
        let get = |k: &str| all.iter().find(|(x, _)| *x == k).unwrap().1.clone();
        assert_eq!(get("boot"), Ok(()));
        assert_eq!(get("deploy"), Err(format!("Node {NODE} failed to validate deploy image info. Some parameters were missing. Missing are: ['instance_info.image_source']")));
        n.instance_info
            .insert("image_source".into(), json!("http://img"));
        let all = validate(&n, &env);
        let get = |k: &str| all.iter().find(|(x, _)| *x == k).unwrap().1.clone();
        assert!(get("deploy").unwrap_err().contains("image_checksum"));
        n.instance_info
            .insert("image_checksum".into(), json!("abc"));
        let all = validate(&n, &env);
        assert!(all.iter().all(|(k, r)| r.is_ok() || *k == "bios"));
    }

    #[test]
    fn bmc_power_and_management_read_driver_info() {
        let mut n = node("noop", "ipxe");
        n.driver = "redfish".into();
        n.interfaces.insert("power".into(), "redfish".into());
        n.interfaces.insert("management".into(), "redfish".into());
        let get = |n: &Node, k: &str| {
            validate(n, &ValidationEnv::default())
                .into_iter()
                .find(|(x, _)| *x == k)
                .unwrap()
                .1
        };
        let missing = Err(format!(
            "Missing the following Redfish properties in node {NODE} driver_info: ['redfish_address']"
        ));
        assert_eq!(get(&n, "power"), missing);
        assert_eq!(get(&n, "management"), missing);
        n.interfaces.insert("management".into(), "noop".into());
        assert_eq!(get(&n, "management"), Ok(()));
        n.driver_info
            .insert("redfish_address".into(), json!("https://bmc"));
        assert_eq!(get(&n, "power"), Ok(()));

        n.driver = "ipmi".into();
        n.interfaces.insert("power".into(), "ipmitool".into());
        n.interfaces.insert("management".into(), "ipmitool".into());
        n.driver_info
            .insert("ipmi_address".into(), json!("Not A Host"));
        // Only IPMI power checks the address's form, as in Ironic.
        assert_eq!(
            get(&n, "power"),
            Err(format!("Invalid IPMI address \"Not A Host\" for node {NODE}. Must be a valid IP address or hostname."))
        );
        assert_eq!(get(&n, "management"), Ok(()));
        n.driver_info
            .insert("ipmi_priv_level".into(), json!("ROOT"));
        assert!(get(&n, "management")
            .unwrap_err()
            .starts_with("Invalid privilege level value:ROOT"));
    }

    #[test]
    fn a_boot_from_volume_node_needs_no_deploy_ramdisk() {
        let mut n = node("cinder", "ipxe");
        n.interfaces.insert("deploy".into(), "direct".into());
        n.ports.push(Port {
            uuid: Uuid::from_u128(9),
            address: "52:54:00:00:00:01".into(),
            pxe_enabled: true,
            extra: Default::default(),
            ..Default::default()
        });
        n.properties
            .insert("capabilities".into(), json!("iscsi_boot:true"));
        n.connectors.push(connector("iqn", 1));
        n.targets.push(target("iscsi", 0, 7));
        assert!(validate(&n, &ValidationEnv::default())
            .iter()
            .all(|(_, r)| r.is_ok()));
        n.properties.insert(
            "capabilities".into(),
            json!("iscsi_boot:true,boot_mode:efi"),
        );
        let all = validate(&n, &ValidationEnv::default());
        assert_eq!(all[0].1, Err("The parameter 'boot_mode' from properties/capabilities has an invalid value: 'efi'. Acceptable values are: bios, uefi.".into()));
    }
}
