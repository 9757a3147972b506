//! Which boot mode (`bios` / `uefi`) a deploy asks a node's BMC for.
//!
//! Ironic reads it in this order (`boot_mode_utils.get_boot_mode_for_deploy`):
//! the `secure_boot` capability (UEFI is the only mode with secure boot),
//! `instance_info.deploy_boot_mode`, the `boot_mode` capability of
//! `instance_info` and then of `properties`; ironledger also takes
//! `properties.boot_mode`, which operators set by hand. When nothing asks,
//! the deploy leaves the BMC's mode as it is (the answer is `None`): a volume
//! boot works in either mode as long as the iPXE the machine's firmware runs
//! was built for it, so ironledger does not guess.

use crate::domain::capabilities::Capabilities;
use serde_json::{Map, Value};

/// A boot mode a node asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootMode {
    Bios,
    Uefi,
}

impl BootMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BootMode::Bios => "bios",
            BootMode::Uefi => "uefi",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bios" => Some(BootMode::Bios),
            "uefi" => Some(BootMode::Uefi),
            _ => None,
        }
    }
}

fn caps_of(dict: &Map<String, Value>) -> Capabilities {
    match dict.get("capabilities") {
        Some(Value::String(s)) => Capabilities::parse(s),
        // instance_info may carry its capabilities as a dictionary.
        Some(Value::Object(o)) => Capabilities::parse(
            &o.iter()
                .filter_map(|(k, v)| Some(format!("{k}:{}", v.as_str()?)))
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => Capabilities::default(),
    }
}

/// The boot mode the node's deploy asks for, `Ok(None)` when nothing asks,
/// or Ironic's error text when a value names no mode.
pub fn requested(
    instance_info: &Map<String, Value>,
    properties: &Map<String, Value>,
) -> Result<Option<BootMode>, String> {
    let inst = caps_of(instance_info);
    let props = caps_of(properties);
    if inst.is_true("secure_boot") || props.is_true("secure_boot") {
        return Ok(Some(BootMode::Uefi));
    }
    let asked = instance_info
        .get("deploy_boot_mode")
        .and_then(Value::as_str)
        .or_else(|| inst.get("boot_mode"))
        .or_else(|| props.get("boot_mode"))
        .or_else(|| properties.get("boot_mode").and_then(Value::as_str));
    match asked {
        None => Ok(None),
        Some(s) => BootMode::parse(s).map(Some).ok_or_else(|| {
            format!("Invalid boot mode '{s}' requested; valid boot modes are 'bios' and 'uefi'.")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn nothing_asks_means_leave_the_bmc_alone() {
        assert_eq!(requested(&Map::new(), &Map::new()), Ok(None));
        let props = map(json!({"capabilities": "iscsi_boot:True"}));
        assert_eq!(requested(&Map::new(), &props), Ok(None));
    }

    #[test]
    fn ironic_order_instance_info_then_capabilities_then_properties() {
        let props = map(json!({"capabilities": "boot_mode:bios", "boot_mode": "uefi"}));
        assert_eq!(requested(&Map::new(), &props), Ok(Some(BootMode::Bios)));
        let inst = map(json!({"deploy_boot_mode": "uefi"}));
        assert_eq!(requested(&inst, &props), Ok(Some(BootMode::Uefi)));
        let inst = map(json!({"capabilities": {"boot_mode": "uefi"}}));
        assert_eq!(requested(&inst, &props), Ok(Some(BootMode::Uefi)));
        let props = map(json!({"boot_mode": "UEFI"}));
        assert_eq!(requested(&Map::new(), &props), Ok(Some(BootMode::Uefi)));
    }

    #[test]
    fn secure_boot_means_uefi_and_a_bad_mode_is_refused() {
        let props = map(json!({"capabilities": "secure_boot:true,boot_mode:bios"}));
        assert_eq!(requested(&Map::new(), &props), Ok(Some(BootMode::Uefi)));
        let props = map(json!({"capabilities": "boot_mode:legacy"}));
        assert!(requested(&Map::new(), &props)
            .unwrap_err()
            .contains("'legacy'"));
    }
}
