//! `GET`/`PUT /v1/nodes/{node}/management/boot_device` and
//! `GET …/management/boot_device/supported`: the boot device, as
//! `baremetal node boot device set/show` use it (all since 1.0).
//!
//! What answers depends on the node's management interface, as in Ironic:
//!
//! | interface | supported | show | set |
//! |---|---|---|---|
//! | `redfish`, `ipmitool` | the interface's list (no BMC call, as Ironic) | asks the BMC | asks the BMC, then records `BootDeviceSet` |
//! | `fake` | `pxe` | the recorded setting, else `pxe`, not persistent | records `BootDeviceSet` |
//! | `noop` | `pxe`, `disk` | the recorded setting, else `pxe`, persistent | records `BootDeviceSet` |
//!
//! The BMC is called synchronously, as Ironic's API waits for its conductor:
//! the answer says whether the BMC took the setting. The event is recorded
//! only after it did, so the history says what the machine was told.
//!
//! Order of the checks (Ironic's): the path's node identifier, the body's
//! arguments (`boot_device` a string, `persistent` a strict boolean, nothing
//! else), the node (404), the node's lock (409 while a power change is
//! pending or a deploy/undeploy runs — Ironic's conductor holds the node's
//! lock then; `supported` takes only a shared lock and is never refused), the
//! `driver_info` (400, the text `node validate` gives), the device (400),
//! then the BMC (500 with the driver's text, never a password).

use super::super::error::{ApiError, ApiResult};
use super::super::lookup::{self, NodeDoc};
use super::super::pyfmt;
use super::super::version::Version;
use super::super::{AppState, Who};
use super::{find, host, kwargs, JsonBody};
use crate::domain::bmc_access::{self, Protocol};
use crate::domain::{Node, NodeCommand};
use crate::effects::bmc::{access, ipmi, Bmc, BmcError, BmcErrorKind, BootDevice};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

/// The arguments of `PUT …/management/boot_device`.
pub const BOOT_DEVICE_ARGS: [&str; 2] = ["boot_device", "persistent"];

/// The body of `PUT …/management/boot_device` as JSON Schema (OpenAPI):
/// any string is a device the handler judges (400 for one the node's
/// management interface does not know), `persistent` what `strict_bool` reads.
pub fn boot_device_schema() -> Value {
    let mut persistent = vec![json!(true), json!(false), Value::Null];
    persistent.extend(crate::domain::oslo::BOOL_WORDS.iter().map(|w| json!(w)));
    json!({
        "type": "object",
        "properties": {
            "boot_device": {"type": "string", "description": "pxe, disk, cdrom, bios, safe: what GET …/boot_device/supported lists"},
            "persistent": {"enum": persistent, "description": "For every boot (true) or the next one only (false, the default)"},
        },
        "required": ["boot_device"],
        "additionalProperties": false,
    })
}

/// How a node's management interface answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Management {
    /// `redfish` / `ipmitool`: the node's BMC.
    Bmc(Protocol),
    /// Ironic's `noop`: the boot order is assumed configured (PXE, then disk).
    Noop,
    /// Ironic's `fake` (and anything else that drives no BMC).
    Fake,
}

impl Management {
    fn of(node: &Node) -> Self {
        let name = node.interface("management");
        match Protocol::of_interface(name) {
            Some(p) => Management::Bmc(p),
            None if name == "noop" => Management::Noop,
            None => Management::Fake,
        }
    }

    /// The devices the interface takes, in Ironic's order. Redfish: Ironic
    /// also lists `uefi-http`, which ironledger cannot set (it needs an HTTP
    /// boot URL), so it is left out rather than accepted and failed.
    fn supported(self) -> &'static [BootDevice] {
        use BootDevice::*;
        match self {
            Management::Bmc(Protocol::Redfish) => &[Pxe, Disk, Cdrom, Bios],
            Management::Bmc(Protocol::Ipmi) => &[Pxe, Disk, Cdrom, Bios, Safe],
            Management::Noop => &[Pxe, Disk],
            Management::Fake => &[Pxe],
        }
    }

    /// The answer of a node without a BMC before anything was set (Ironic's
    /// `FakeManagement` / `NoopManagement.get_boot_device`).
    fn default_persistent(self) -> bool {
        matches!(self, Management::Noop)
    }

    /// The device named, or the interface's 400 (`shown` is the value as
    /// Python prints it: a `null` device is `None`).
    fn device(self, shown: &str) -> ApiResult<BootDevice> {
        if let Some(d) = BootDevice::parse(shown).filter(|d| self.supported().contains(d)) {
            return Ok(d);
        }
        Err(ApiError::bad_request(match self {
            Management::Noop => format!(
                "Invalid boot device {shown} specified, supported are {}.",
                names(self.supported()).join(", ")
            ),
            // Ironic's redfish interface fails such a device with an
            // unhandled KeyError (a 500); ironledger gives the 400 text of
            // its fake and ipmitool interfaces instead.
            _ => format!("Invalid boot device {shown} specified."),
        }))
    }
}

fn names(devices: &[BootDevice]) -> Vec<&'static str> {
    devices.iter().map(|d| d.as_str()).collect()
}

/// Ironic's `NodeLocked` while its conductor would hold the node's lock: a
/// power change pending (the process manager is driving the BMC) or a
/// deploy/undeploy running.
fn check_unlocked(state: &AppState, doc: &NodeDoc) -> ApiResult<()> {
    if doc.node.power_request.is_some() || super::states::being_worked(doc.node.state()) {
        return Err(ApiError::conflict(format!(
            "Node {} is locked by host {}, please retry after the current operation is completed.",
            doc.uuid(),
            host(state)
        )));
    }
    Ok(())
}

/// The node's BMC client, after the interface's `validate` (Ironic's
/// `parse_driver_info`: its 400 texts).
fn bmc_client(protocol: Protocol, doc: &NodeDoc) -> ApiResult<Box<dyn Bmc>> {
    let node = &doc.node;
    let access = bmc_access::parse(protocol, &node.id(), &node.driver_info, |p| {
        std::path::Path::new(p).exists()
    })
    .map_err(ApiError::bad_request)?;
    access::client(&access).map_err(|e| failure(protocol, doc, Call::Get, &e))
}

/// Which management call failed (the texts differ).
#[derive(Debug, Clone, Copy)]
enum Call {
    Get,
    Set {
        device: BootDevice,
        persistent: bool,
    },
}

/// A BMC failure as Ironic's drivers word it (500). The Redfish texts carry
/// the client's error, which names the BMC action and never a credential;
/// Ironic's IPMI text names only the ipmitool command, so the reason goes to
/// the log (which, too, never holds a password).
fn failure(protocol: Protocol, doc: &NodeDoc, call: Call, e: &BmcError) -> ApiError {
    let uuid = doc.uuid();
    tracing::warn!(node = %uuid, error = %e, "boot device call to the BMC failed");
    let message = match (protocol, call) {
        (Protocol::Redfish, _) if e.kind == BmcErrorKind::Unreachable => {
            format!("Redfish connection failed for node {uuid}: {e}")
        }
        (Protocol::Redfish, Call::Get) => format!("Redfish exception occurred. Error: {e}"),
        (Protocol::Redfish, Call::Set { .. }) => format!(
            "Redfish exception occurred. Error: Redfish set boot device failed for node {uuid}. Error: {e}"
        ),
        (Protocol::Ipmi, Call::Get) => "IPMI call failed: chassis bootparam get 5.".to_string(),
        (Protocol::Ipmi, Call::Set { device, persistent }) => format!(
            "IPMI call failed: {}.",
            ipmi::bootdev_args(device, persistent, None).join(" ")
        ),
    };
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// `GET /v1/nodes/{node}/management/boot_device`: `{"boot_device", "persistent"}`.
pub async fn get_boot_device(
    State(state): State<AppState>,
    version: Version,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    lookup::check_path_node(&ident)?;
    let doc = find(&state, version, &ident).await?;
    check_unlocked(&state, &doc)?;
    let management = Management::of(&doc.node);
    let (device, persistent) = match management {
        Management::Bmc(protocol) => {
            let bmc = bmc_client(protocol, &doc)?;
            let info = bmc
                .boot_device()
                .await
                .map_err(|e| failure(protocol, &doc, Call::Get, &e))?;
            (info.device.map(BootDevice::as_str), info.persistent)
        }
        Management::Noop | Management::Fake => match &doc.node.boot_device {
            Some(set) => (Some(set.device.as_str()), Some(set.persistent)),
            None => (
                Some(BootDevice::Pxe.as_str()),
                Some(management.default_persistent()),
            ),
        },
    };
    Ok(Json(
        json!({ "boot_device": device, "persistent": persistent }),
    ))
}

/// `GET /v1/nodes/{node}/management/boot_device/supported`.
pub async fn supported(
    State(state): State<AppState>,
    version: Version,
    Path(ident): Path<String>,
) -> ApiResult<Json<Value>> {
    lookup::check_path_node(&ident)?;
    let doc = find(&state, version, &ident).await?;
    let devices = names(Management::of(&doc.node).supported());
    Ok(Json(json!({ "supported_boot_devices": devices })))
}

/// `boot_device`: a string (or `null`, which Ironic passes on as `None`).
fn device_arg(args: &Map<String, Value>) -> ApiResult<String> {
    match args.get("boot_device") {
        None => Err(ApiError::bad_request(
            "Missing mandatory parameter: boot_device",
        )),
        Some(Value::Null) => Ok("None".to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ApiError::bad_request(format!(
            "Expected string for boot_device: {}",
            pyfmt::str_(other)
        ))),
    }
}

/// `PUT /v1/nodes/{node}/management/boot_device`: 204 once the BMC (or, for
/// a node without one, ironledger) took the setting.
pub async fn set_boot_device(
    State(state): State<AppState>,
    version: Version,
    who: Who,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<StatusCode> {
    lookup::check_path_node(&ident)?;
    let args = kwargs(&body, &BOOT_DEVICE_ARGS)?;
    let shown = device_arg(&args)?;
    let persistent = args
        .get("persistent")
        .map(|v| pyfmt::strict_bool("persistent", v))
        .transpose()
        .map_err(ApiError::bad_request)?
        .flatten()
        .unwrap_or(false);
    let doc = find(&state, version, &ident).await?;
    check_unlocked(&state, &doc)?;
    let management = Management::of(&doc.node);
    if let Management::Bmc(protocol) = management {
        let bmc = bmc_client(protocol, &doc)?;
        let device = management.device(&shown)?;
        bmc.set_boot_device(device, persistent, None)
            .await
            .map_err(|e| failure(protocol, &doc, Call::Set { device, persistent }, &e))?;
        tracing::info!(node = %doc.uuid(), device = %device, persistent, "the BMC took the boot device");
    }
    let device = management.device(&shown)?;
    state
        .engine
        .node(
            doc.uuid(),
            NodeCommand::RecordBootDevice {
                device: device.as_str().to_string(),
                persistent,
                mode: None,
            },
            &who.0,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
