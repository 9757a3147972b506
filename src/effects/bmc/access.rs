//! A node's [`BmcAccess`] (its `driver_info`, read by the domain) turned into
//! a client: one function per client, so what `driver_info` means stays in
//! `domain::bmc_access` and only the protocol detail (timeouts, ipmitool's
//! path, the `Secret` wrapper) is added here.

use super::ipmi::{IpmiClient, IpmiConfig};
use super::redfish::{AuthType, RedfishClient, RedfishConfig, VerifyCa};
use super::{Bmc, BmcError, Secret};
use crate::domain::bmc_access::{self, BmcAccess, IpmiAccess, RedfishAccess};
use std::path::PathBuf;

/// The Redfish client's configuration for `access` (the client's own
/// defaults for what `driver_info` does not say, such as the timeout).
pub fn redfish_config(access: &RedfishAccess) -> RedfishConfig {
    let mut c = RedfishConfig::new(access.address.clone());
    c.system_id = access.system_id.clone();
    c.username = access.username.clone();
    c.password = access.password.as_ref().map(|p| Secret::new(p.expose()));
    c.verify_ca = match &access.verify_ca {
        bmc_access::VerifyCa::Yes => VerifyCa::Yes,
        bmc_access::VerifyCa::No => VerifyCa::No,
        bmc_access::VerifyCa::Bundle(p) => VerifyCa::Bundle(PathBuf::from(p)),
    };
    c.auth_type = match access.auth_type {
        bmc_access::RedfishAuth::Basic => AuthType::Basic,
        bmc_access::RedfishAuth::Session => AuthType::Session,
        bmc_access::RedfishAuth::Auto => AuthType::Auto,
    };
    c
}

/// The IPMI client's configuration for `access`.
pub fn ipmi_config(access: &IpmiAccess) -> IpmiConfig {
    let mut c = IpmiConfig::new(access.address.clone());
    c.port = access.port;
    c.username = access.username.clone();
    c.password = access.password.as_ref().map(|p| Secret::new(p.expose()));
    c.priv_level = access.priv_level.clone();
    c.protocol_version = access.protocol_version.clone();
    c.cipher_suite = access.cipher_suite;
    c
}

/// The client for a node's BMC.
pub fn client(access: &BmcAccess) -> Result<Box<dyn Bmc>, BmcError> {
    Ok(match access {
        BmcAccess::Redfish(r) => Box::new(super::Metered {
            service: "redfish",
            inner: RedfishClient::new(redfish_config(r))?,
        }),
        BmcAccess::Ipmi(i) => Box::new(super::Metered {
            service: "ipmi",
            inner: IpmiClient::new(ipmi_config(i)),
        }),
    })
}

/// The client for a node's BMC, from its power interface and `driver_info`:
/// `Ok(None)` when the power interface drives no BMC (`fake`, manual), and
/// Ironic's text when `driver_info` cannot be read (the same text `node
/// validate` gives) or the client cannot be made.
pub fn for_node(node: &crate::domain::Node) -> Result<Option<Box<dyn Bmc>>, String> {
    let Some(protocol) = bmc_access::Protocol::of_interface(node.interface("power")) else {
        return Ok(None);
    };
    let access = bmc_access::parse(protocol, &node.id(), &node.driver_info, |p| {
        std::path::Path::new(p).exists()
    })?;
    client(&access).map(Some).map_err(|e| e.to_string())
}
