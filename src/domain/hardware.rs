//! Hardware types and their interfaces: which interface names a node may use.
//!
//! Ironic resolves every `*_interface` of a node when it is created: an explicit
//! value must be enabled and supported by the node's hardware type; a missing one
//! becomes the configured default, else the first enabled interface the hardware
//! type supports. The catalog is plain data built from configuration and handed to
//! the `Node` aggregate as its cqrs-es `Services`, so the rule stays pure.

use super::error::DomainError;
use std::collections::BTreeMap;

/// The interface kinds of a node, in Ironic's field order (`<kind>_interface`).
pub const INTERFACE_KINDS: [&str; 13] = [
    "bios",
    "boot",
    "console",
    "deploy",
    "firmware",
    "inspect",
    "management",
    "network",
    "power",
    "raid",
    "rescue",
    "storage",
    "vendor",
];

/// Enabled interfaces of one kind, and the default (`[DEFAULT] enabled_<kind>_interfaces`,
/// `default_<kind>_interface`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledInterfaces {
    pub enabled: Vec<String>,
    pub default: Option<String>,
}

/// What the service offers: hardware types, and for each interface kind what is
/// enabled and which names each hardware type supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardwareCatalog {
    /// `[DEFAULT] enabled_hardware_types`.
    pub hardware_types: Vec<String>,
    /// Per interface kind.
    pub interfaces: BTreeMap<String, EnabledInterfaces>,
    /// Per hardware type, per kind: the names it supports, in preference order.
    pub supported: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

impl Default for HardwareCatalog {
    /// ironledger's defaults: Ironic's defaults for the interfaces the
    /// boot-from-volume workflow touches; the two hardware types ironledger
    /// models itself (`fake-hardware`, `manual-management`) and Ironic's two
    /// default ones for real machines (`ipmi`, `redfish`).
    ///
    /// `ipmi` and `redfish` list, of what Ironic's `IPMIHardware` and
    /// `RedfishHardware` support, only the interfaces ironledger implements:
    /// no Redfish BIOS, RAID, firmware, inspection, virtual-media boot or
    /// vendor passthru, no IPMI console. An operator cannot enable a name
    /// that would do nothing.
    fn default() -> Self {
        let mut interfaces = BTreeMap::new();
        let mut set = |kind: &str, enabled: &[&str], default: Option<&str>| {
            interfaces.insert(
                kind.to_string(),
                EnabledInterfaces {
                    enabled: strings(enabled),
                    default: default.map(str::to_string),
                },
            );
        };
        set("bios", &["no-bios", "fake"], None);
        set("boot", &["ipxe", "pxe", "fake"], None);
        set("console", &["no-console", "fake"], None);
        set("deploy", &["direct", "ramdisk", "fake"], None);
        set("firmware", &["no-firmware", "fake"], None);
        set("inspect", &["no-inspect", "fake"], None);
        set("management", &["ipmitool", "redfish", "noop", "fake"], None);
        set("network", &["flat", "noop"], None);
        set("power", &["ipmitool", "redfish", "fake"], None);
        set("raid", &["no-raid", "fake"], None);
        set("rescue", &["no-rescue", "fake"], None);
        set("storage", &["cinder", "noop"], Some("noop"));
        set("vendor", &["no-vendor", "fake"], None);

        let mut fake = BTreeMap::new();
        let mut manual = BTreeMap::new();
        let both = |m: &mut BTreeMap<String, Vec<String>>, kind: &str, names: &[&str]| {
            m.insert(kind.to_string(), strings(names));
        };
        // fake-hardware prefers the fake implementations, except for boot and
        // deploy, where ironledger really does iPXE and the direct (volume) deploy.
        both(&mut fake, "bios", &["fake", "no-bios"]);
        both(&mut fake, "boot", &["ipxe", "pxe", "ipxe-http", "fake"]);
        both(&mut fake, "console", &["fake", "no-console"]);
        both(&mut fake, "deploy", &["direct", "ramdisk", "fake"]);
        both(&mut fake, "firmware", &["fake", "no-firmware"]);
        both(&mut fake, "inspect", &["fake", "no-inspect"]);
        both(&mut fake, "management", &["fake"]);
        both(&mut fake, "network", &["flat", "noop", "neutron"]);
        both(&mut fake, "power", &["fake"]);
        both(&mut fake, "raid", &["fake", "no-raid"]);
        both(&mut fake, "rescue", &["fake", "no-rescue"]);
        both(
            &mut fake,
            "storage",
            &["noop", "cinder", "external", "fake"],
        );
        both(&mut fake, "vendor", &["fake", "no-vendor"]);

        both(&mut manual, "bios", &["no-bios"]);
        both(&mut manual, "boot", &["ipxe", "pxe", "ipxe-http"]);
        both(&mut manual, "console", &["no-console"]);
        both(&mut manual, "deploy", &["direct", "ramdisk"]);
        both(&mut manual, "firmware", &["no-firmware"]);
        both(&mut manual, "inspect", &["no-inspect"]);
        both(&mut manual, "management", &["noop"]);
        both(&mut manual, "network", &["flat", "noop", "neutron"]);
        both(&mut manual, "power", &["fake"]);
        both(&mut manual, "raid", &["no-raid"]);
        both(&mut manual, "rescue", &["no-rescue"]);
        both(&mut manual, "storage", &["noop", "cinder", "external"]);
        both(&mut manual, "vendor", &["no-vendor"]);

        // Ironic's GenericHardware, as far as ironledger implements it; then
        // each BMC type's power and management (ironic/drivers/ipmi.py,
        // redfish.py).
        let generic = |power: &str, management: &[&str]| {
            let mut m = manual.clone();
            both(&mut m, "power", &[power]);
            both(&mut m, "management", management);
            m
        };
        let ipmi = generic("ipmitool", &["ipmitool"]);
        let redfish = generic("redfish", &["redfish", "noop"]);

        let mut supported = BTreeMap::new();
        supported.insert("fake-hardware".to_string(), fake);
        supported.insert("manual-management".to_string(), manual);
        supported.insert("ipmi".to_string(), ipmi);
        supported.insert("redfish".to_string(), redfish);
        HardwareCatalog {
            hardware_types: strings(&["fake-hardware", "manual-management", "ipmi", "redfish"]),
            interfaces,
            supported,
        }
    }
}

impl HardwareCatalog {
    /// Checks that a driver (hardware type) is enabled.
    pub fn check_driver(&self, driver: &str) -> Result<(), DomainError> {
        if self.hardware_types.iter().any(|d| d == driver) {
            Ok(())
        } else {
            Err(DomainError::Invalid(format!(
                "Could not find the following driver(s) or hardware type(s): {driver}."
            )))
        }
    }

    /// Resolves one interface of a node: the requested name if it is enabled and
    /// supported, else the configured default, else the first name in the hardware
    /// type's preference order that is enabled.
    pub fn resolve(
        &self,
        driver: &str,
        kind: &str,
        requested: Option<&str>,
    ) -> Result<String, DomainError> {
        let enabled = self
            .interfaces
            .get(kind)
            .map(|e| e.enabled.as_slice())
            .unwrap_or(&[]);
        let supported: &[String] = self
            .supported
            .get(driver)
            .and_then(|m| m.get(kind))
            .map(|v| v.as_slice())
            .unwrap_or(&[]);
        let usable =
            |name: &str| enabled.iter().any(|e| e == name) && supported.iter().any(|s| s == name);
        match requested {
            Some(name) => {
                if usable(name) {
                    Ok(name.to_string())
                } else if !enabled.iter().any(|e| e == name) {
                    // Ironic lists the enabled names sorted, whatever the
                    // configuration's order.
                    let mut sorted = enabled.to_vec();
                    sorted.sort();
                    Err(DomainError::Invalid(format!(
                        "Could not find the following interface in the 'ironic.hardware.interfaces.{kind}' entrypoint: {name}. Valid interfaces are {}.",
                        python_list(&sorted)
                    )))
                } else {
                    Err(DomainError::Invalid(format!(
                        "Interface {name} is not supported by hardware type {driver}: the supported {kind} interfaces are {}.",
                        python_list(supported)
                    )))
                }
            }
            None => {
                let default = self.interfaces.get(kind).and_then(|e| e.default.as_deref());
                if let Some(d) = default.filter(|d| usable(d)) {
                    return Ok(d.to_string());
                }
                // Like Ironic: the hardware type's own preference order decides.
                supported
                    .iter()
                    .find(|s| enabled.iter().any(|e| e == *s))
                    .cloned()
                    .ok_or_else(|| {
                        DomainError::Invalid(format!(
                            "No default value found for {kind} interface for node with driver {driver}. Valid interfaces are {}.",
                            python_list(supported)
                        ))
                    })
            }
        }
    }

    /// Resolves every interface kind for a new node.
    pub fn resolve_all(
        &self,
        driver: &str,
        requested: &BTreeMap<String, Option<String>>,
    ) -> Result<BTreeMap<String, String>, DomainError> {
        self.check_driver(driver)?;
        INTERFACE_KINDS
            .iter()
            .map(|kind| {
                let want = requested.get(*kind).and_then(|v| v.as_deref());
                Ok((kind.to_string(), self.resolve(driver, kind, want)?))
            })
            .collect()
    }
}

/// Renders names the way Ironic's messages do: `['a', 'b']`.
fn python_list(names: &[String]) -> String {
    let inner: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::HttpStatus;

    #[test]
    fn storage_defaults_to_noop_and_external_must_be_enabled() {
        let cat = HardwareCatalog::default();
        assert_eq!(
            cat.resolve("fake-hardware", "storage", None).unwrap(),
            "noop"
        );
        assert_eq!(
            cat.resolve("fake-hardware", "storage", Some("cinder"))
                .unwrap(),
            "cinder"
        );
        let err = cat
            .resolve("fake-hardware", "storage", Some("external"))
            .unwrap_err();
        assert_eq!(err.status(), 400);
        // Ironic sorts the enabled names in this message.
        let mut noop_first = cat.clone();
        noop_first.interfaces.get_mut("storage").unwrap().enabled =
            vec!["noop".into(), "fake".into(), "cinder".into()];
        assert!(noop_first
            .resolve("fake-hardware", "storage", Some("magic"))
            .unwrap_err()
            .to_string()
            .ends_with("Valid interfaces are ['cinder', 'fake', 'noop']."));
        let mut enabled = cat.clone();
        enabled
            .interfaces
            .get_mut("storage")
            .unwrap()
            .enabled
            .push("external".into());
        assert_eq!(
            enabled
                .resolve("fake-hardware", "storage", Some("external"))
                .unwrap(),
            "external"
        );
    }

    #[test]
    fn bmc_hardware_types_resolve_to_their_bmc_interfaces() {
        let cat = HardwareCatalog::default();
        let r = cat.resolve_all("redfish", &BTreeMap::new()).unwrap();
        assert_eq!(
            (
                r["power"].as_str(),
                r["management"].as_str(),
                r["boot"].as_str()
            ),
            ("redfish", "redfish", "ipxe")
        );
        assert_eq!(
            (r["deploy"].as_str(), r["storage"].as_str()),
            ("direct", "noop")
        );
        let i = cat.resolve_all("ipmi", &BTreeMap::new()).unwrap();
        assert_eq!(
            (
                i["power"].as_str(),
                i["management"].as_str(),
                i["console"].as_str()
            ),
            ("ipmitool", "ipmitool", "no-console")
        );
        // Each BMC interface belongs to its own hardware type only.
        let e = cat.resolve("ipmi", "power", Some("redfish")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Interface redfish is not supported by hardware type ipmi: the supported power interfaces are ['ipmitool']."
        );
        assert!(cat
            .resolve("fake-hardware", "power", Some("ipmitool"))
            .is_err());
        assert_eq!(
            cat.resolve("redfish", "management", Some("noop")).unwrap(),
            "noop"
        );
        // The types ironledger models keep their fake power.
        assert_eq!(cat.resolve("fake-hardware", "power", None).unwrap(), "fake");
        assert_eq!(
            cat.resolve("fake-hardware", "management", None).unwrap(),
            "fake"
        );
        assert_eq!(
            cat.resolve("manual-management", "management", None)
                .unwrap(),
            "noop"
        );
    }

    #[test]
    fn unknown_driver_is_refused() {
        let cat = HardwareCatalog::default();
        assert!(cat.resolve_all("idrac", &BTreeMap::new()).is_err());
        let all = cat
            .resolve_all("manual-management", &BTreeMap::new())
            .unwrap();
        assert_eq!(all["boot"], "ipxe");
        assert_eq!(all["power"], "fake");
    }
}
