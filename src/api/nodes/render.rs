//! A node as Ironic shows it (`node_convert_with_links` + `node_sanitize`): every
//! field of the negotiated version, secrets masked, and the sub-resource links.
//!
//! Fields ironledger keeps no data for are shown with Ironic's empty values
//! (`null`, `{}`, `[]`, `false`), so clients that read them find what an idle
//! Ironic node would show.

use super::super::links::BaseUrl;
use super::super::lookup::NodeDoc;
use super::super::masking::{self, MASK};
use super::super::version::Version;
use super::super::AppState;
use super::fields;
use crate::domain::hardware::INTERFACE_KINDS;
use crate::domain::secrets::is_field_secret;
use crate::projections::NodeSummary;
use serde_json::{json, Map, Value};

/// What a rendering depends on besides the node.
pub struct View<'a> {
    pub version: Version,
    pub base: &'a BaseUrl,
    /// The host name shown as the node's `conductor`.
    pub host: String,
}

impl<'a> View<'a> {
    /// The view of a request: its version and base URL, this host.
    pub fn new(state: &AppState, version: Version, base: &'a BaseUrl) -> Self {
        View {
            version,
            base,
            host: super::host(state),
        }
    }
}

/// Provision state names as older clients know them: `available` was `null`
/// (NOSTATE) before 1.2, `inspect wait` was `inspecting` before 1.39.
pub fn legacy_state(state: Value, version: Version) -> Value {
    match state.as_str() {
        Some("available") if !version.at_least(2) => Value::Null,
        Some("inspect wait") if !version.at_least(39) => json!("inspecting"),
        _ => state,
    }
}

fn field_or(node: &crate::domain::Node, name: &str, empty: Value) -> Value {
    match node.fields.get(name) {
        Some(v) if !v.is_null() => v.clone(),
        _ => empty,
    }
}

fn opt_str(v: &Option<String>) -> Value {
    v.clone().map(Value::String).unwrap_or(Value::Null)
}

/// Ironic's `instance_info` masking: passwords, then a set `configdrive`
/// and `image_url` as a whole (the domain's list, which the store encrypts).
fn mask_instance_info(info: &Map<String, Value>) -> Value {
    mask_field("instance_info", info)
}

/// Ironic's `driver_info` masking: passwords and the SNMP keys.
fn mask_driver_info(info: &Map<String, Value>) -> Value {
    mask_field("driver_info", info)
}

/// Masks the secrets of one node field: sensitive key names anywhere, then
/// the field's own secret keys (`domain::secrets::FIELD_SECRETS`) whole.
fn mask_field(field: &str, info: &Map<String, Value>) -> Value {
    let mut masked = masking::mask(&Value::Object(info.clone()));
    if let Value::Object(m) = &mut masked {
        for (key, value) in info {
            if is_field_secret(field, key, value) {
                m.insert(key.clone(), json!(MASK));
            }
        }
    }
    masked
}

/// Every field of a node (including ones newer than any version asked for),
/// before version hiding and field selection.
pub fn all_fields(doc: &NodeDoc, view: &View) -> Map<String, Value> {
    let n = &doc.node;
    let d = &doc.doc;
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("uuid", json!(doc.uuid().to_string()));
    put("created_at", d["created_at"].clone());
    put("updated_at", d["updated_at"].clone());
    put(
        "automated_clean",
        field_or(n, "automated_clean", Value::Null),
    );
    for kind in INTERFACE_KINDS {
        put(&format!("{kind}_interface"), json!(n.interface(kind)));
    }
    put("boot_mode", Value::Null);
    put("secure_boot", Value::Null);
    put("clean_step", json!({}));
    put("deploy_step", json!({}));
    put("service_step", json!({}));
    put("conductor_group", field_or(n, "conductor_group", json!("")));
    put("console_enabled", json!(false));
    put("description", field_or(n, "description", Value::Null));
    put(
        "disable_power_off",
        field_or(n, "disable_power_off", json!(false)),
    );
    put("driver", json!(n.driver));
    put("driver_info", mask_driver_info(&n.driver_info));
    put(
        "driver_internal_info",
        masking::mask(&Value::Object(n.driver_internal_info.clone())),
    );
    put("extra", Value::Object(n.extra.clone()));
    put("fault", opt_str(&n.fault));
    put("health", Value::Null);
    put("inspection_finished_at", Value::Null);
    put("inspection_started_at", Value::Null);
    put("instance_info", mask_instance_info(&n.instance_info));
    put("instance_name", Value::Null);
    put("instance_uuid", opt_str(&n.instance_uuid));
    put("last_error", opt_str(&n.last_error));
    put("lessee", field_or(n, "lessee", Value::Null));
    put("maintenance", json!(n.maintenance));
    put("maintenance_reason", opt_str(&n.maintenance_reason));
    put("name", opt_str(&n.name));
    put("network_data", field_or(n, "network_data", json!({})));
    put("owner", field_or(n, "owner", Value::Null));
    put("parent_node", field_or(n, "parent_node", Value::Null));
    put("power_state", opt_str(&n.power_state));
    put("properties", Value::Object(n.properties.clone()));
    put("protected", field_or(n, "protected", json!(false)));
    put(
        "protected_reason",
        field_or(n, "protected_reason", Value::Null),
    );
    put(
        "provision_state",
        n.provision_state
            .map(|s| json!(s.as_str()))
            .unwrap_or(Value::Null),
    );
    // The nodes model stamps enrolment as a provision update; Ironic shows
    // null until the first real provision-state change.
    let pua = d["provision_updated_at"].clone();
    put(
        "provision_updated_at",
        if pua == d["created_at"] {
            Value::Null
        } else {
            pua
        },
    );
    put("raid_config", json!({}));
    put("target_raid_config", json!({}));
    put("reservation", Value::Null);
    put("resource_class", field_or(n, "resource_class", Value::Null));
    put("retired", field_or(n, "retired", json!(false)));
    put("retired_reason", field_or(n, "retired_reason", Value::Null));
    put("shard", field_or(n, "shard", Value::Null));
    put(
        "target_power_state",
        n.power_request
            .as_ref()
            .map(|r| json!(r.target))
            .unwrap_or(Value::Null),
    );
    put(
        "target_provision_state",
        n.target_provision_state
            .map(|s| json!(s.as_str()))
            .unwrap_or(Value::Null),
    );
    put("traits", json!([]));
    put("conductor", json!(view.host));
    put("allocation_uuid", Value::Null);
    put("chassis_uuid", field_or(n, "chassis_uuid", Value::Null));
    m
}

/// The node as Ironic answers it at `view.version`: all fields (with the
/// sub-resource links) when `selected` is `None`, else only those (and `links`).
pub fn node(doc: &NodeDoc, view: &View, selected: Option<&[String]>) -> Value {
    shape(
        all_fields(doc, view),
        &doc.uuid().to_string(),
        view,
        selected,
    )
}

/// The fields [`summary`] can answer: those a node's row holds as columns
/// (named as the fields) with the very value [`all_fields`] shows (the
/// default list's fields).
pub const SUMMARY_FIELDS: &[&str] = crate::projections::nodes::SUMMARY_COLUMNS;

/// The node as [`node`] answers it with `selected` fields, all of them among
/// [`SUMMARY_FIELDS`], from its row's columns alone.
pub fn summary(row: &NodeSummary, view: &View, selected: &[String]) -> Value {
    let text = |v: Option<&str>| v.map_or(Value::Null, |s| json!(s));
    let mut all = Map::new();
    all.insert("uuid".into(), json!(row.uuid()));
    all.insert("name".into(), text(row.name()));
    all.insert("instance_uuid".into(), text(row.instance_uuid()));
    all.insert("power_state".into(), text(row.power_state()));
    all.insert("provision_state".into(), text(row.provision_state()));
    all.insert("maintenance".into(), json!(row.maintenance()));
    shape(all, row.uuid(), view, Some(selected))
}

/// Picks `selected` fields (`None`: all, with the sub-resource links) of a
/// node's fields, hides what `view.version` does not know, and adds `links`.
fn shape(
    mut all: Map<String, Value>,
    uuid: &str,
    view: &View,
    selected: Option<&[String]>,
) -> Value {
    let mut out = Map::new();
    match selected {
        Some(fields) => {
            for f in fields {
                if let Some(v) = all.remove(f.as_str()) {
                    out.insert(f.clone(), v);
                }
            }
        }
        None => {
            out = all;
            let link = |sub: &str| view.base.links(&format!("nodes/{uuid}/{sub}"));
            out.insert("ports".into(), link("ports"));
            if view.version.at_least(14) {
                out.insert("states".into(), link("states"));
            }
            if view.version.at_least(24) {
                out.insert("portgroups".into(), link("portgroups"));
            }
            if view.version.at_least(32) {
                out.insert("volume".into(), link("volume"));
            }
        }
    }
    out.retain(|k, _| fields::allowed(k, view.version));
    if let Some(s) = out.remove("provision_state") {
        out.insert("provision_state".into(), legacy_state(s, view.version));
    }
    out.insert("links".into(), view.base.links(&format!("nodes/{uuid}")));
    Value::Object(out)
}

/// `GET /v1/nodes/{node}/states`.
pub fn states(doc: &NodeDoc, view: &View) -> Value {
    let all = all_fields(doc, view);
    let mut keys = vec![
        "console_enabled",
        "last_error",
        "power_state",
        "provision_state",
        "target_power_state",
        "target_provision_state",
        "provision_updated_at",
    ];
    if view.version.at_least(12) {
        keys.extend(["raid_config", "target_raid_config"]);
    }
    if view.version.at_least(75) {
        keys.extend(["boot_mode", "secure_boot"]);
    }
    let mut out = Map::new();
    for k in keys {
        let v = all.get(k).cloned().unwrap_or(Value::Null);
        let v = if k == "provision_state" {
            legacy_state(v, view.version)
        } else {
            v
        };
        out.insert(k.into(), v);
    }
    Value::Object(out)
}
