//! `PATCH /v1/nodes/{node}`: a JSON patch of the node's fields, applied to the
//! node's current state, checked, and recorded as one event per kind of change.

use super::events::NodeEvent;
use super::Node;
use crate::domain::error::DomainError;
use crate::domain::hardware::{HardwareCatalog, INTERFACE_KINDS};
use crate::domain::node_name::NodeName;
use crate::domain::oslo;
use crate::domain::patch::{self, PatchOp};
use crate::domain::state::ProvisionState;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Root fields of a node a patch may touch.
fn patchable_fields() -> Vec<String> {
    let mut fields: Vec<String> = [
        "name",
        "driver",
        "properties",
        "instance_info",
        "instance_uuid",
        "driver_info",
        "extra",
        "maintenance",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    fields.extend(Node::SIMPLE_FIELDS.iter().map(|s| s.to_string()));
    fields.extend(INTERFACE_KINDS.iter().map(|k| format!("{k}_interface")));
    fields
}

fn as_object(field: &str, v: &Value) -> Result<Map<String, Value>, DomainError> {
    match v {
        Value::Null => Ok(Map::new()),
        Value::Object(m) => Ok(m.clone()),
        other => Err(DomainError::Invalid(format!(
            "Invalid {field}: {other} is not of type 'object'"
        ))),
    }
}

fn as_opt_string(field: &str, v: &Value) -> Result<Option<String>, DomainError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(DomainError::Invalid(format!(
            "Invalid {field}: {other} is not of type 'string'"
        ))),
    }
}

/// `maintenance` as Ironic's API reads it (oslo `bool_from_string`, strict);
/// `null` (a removed field) means not in maintenance.
fn as_maintenance(v: &Value) -> Result<bool, DomainError> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::String(s) => oslo::bool_word(s)
            .ok_or_else(|| DomainError::Invalid(format!("Invalid value for maintenance: {v}"))),
        other => Err(DomainError::Invalid(format!(
            "Invalid value for maintenance: {other}"
        ))),
    }
}

/// Light type checks for the simple fields.
fn check_simple(field: &str, v: &Value) -> Result<(), DomainError> {
    let ok = match field {
        "automated_clean" | "protected" | "retired" | "disable_power_off" => {
            v.is_boolean() || v.is_null()
        }
        "network_data" => v.is_object() || v.is_null(),
        _ => v.is_string() || v.is_null(),
    };
    if ok {
        Ok(())
    } else {
        Err(DomainError::Invalid(format!(
            "Invalid value for {field}: {v}"
        )))
    }
}

impl Node {
    /// Ironic's conductor rules for `protected`/`retired` and their reasons
    /// (`_check_update_protected`, `_check_update_retired`): clearing the flag
    /// clears the reason; setting it needs a suitable provision state; a reason
    /// without the flag is refused.
    fn check_flag_with_reason(
        &self,
        after: &Map<String, Value>,
        simple: &mut BTreeMap<String, Value>,
        flag: &str,
    ) -> Result<(), DomainError> {
        let reason = format!("{flag}_reason");
        let on = after.get(flag) == Some(&Value::Bool(true));
        let was_on = self.fields.get(flag) == Some(&Value::Bool(true));
        let mut final_reason = after.get(&reason).cloned().unwrap_or(Value::Null);
        if on != was_on {
            if !on {
                final_reason = Value::Null;
                if self.fields.get(&reason).is_some_and(|r| !r.is_null())
                    || simple.contains_key(&reason)
                {
                    simple.insert(reason.clone(), Value::Null);
                }
            } else if flag == "protected" && self.state() != ProvisionState::Active {
                return Err(DomainError::Conflict(format!(
                    "Node {} can only be made protected in provision states 'active' or 'rescue', the current state is '{}'",
                    self.id(),
                    self.state()
                )));
            } else if flag == "retired" && self.state() == ProvisionState::Available {
                return Err(DomainError::Conflict(format!(
                    "Node {} can not have 'retired' set in provision state 'available', the current state is '{}'",
                    self.id(),
                    self.state()
                )));
            }
        }
        if simple.contains_key(&reason) && oslo::truthy(&final_reason) && !on {
            return Err(DomainError::Invalid(format!(
                "The {reason} field can only be set when {flag} is True"
            )));
        }
        Ok(())
    }

    /// Ironic's `UPDATE_ALLOWED_STATES` rule: a node in the middle of a
    /// transition may be patched only in some states, except that removing
    /// the instance from a node in maintenance (that one operation alone) is
    /// always allowed. The API asks it before its other checks, to answer in
    /// Ironic's order; the aggregate asks it again on the current state.
    pub fn patch_blocked_by_transition(&self, ops: &[PatchOp]) -> bool {
        self.target_provision_state.is_some()
            && !self.state().update_allowed()
            && !self.patch_recovers_instance(ops)
    }

    /// Whether the patch is that one exception: a node in maintenance, and
    /// the patch only removes its `instance_uuid` (how an operator frees a
    /// node whose deploy went wrong).
    pub fn patch_recovers_instance(&self, ops: &[PatchOp]) -> bool {
        self.maintenance
            && ops.len() == 1
            && ops[0].op == "remove"
            && ops[0].path == "/instance_uuid"
    }

    /// The node as a patch sees it: every patchable field, `null` when unset.
    /// The API adds Ironic's defaults and read-only fields to it for its
    /// schema check (`api::nodes::update`).
    pub fn patch_view(&self) -> Map<String, Value> {
        let mut doc = Map::new();
        doc.insert(
            "name".into(),
            self.name.clone().map(Value::String).unwrap_or(Value::Null),
        );
        doc.insert("driver".into(), Value::String(self.driver.clone()));
        doc.insert("properties".into(), Value::Object(self.properties.clone()));
        doc.insert(
            "instance_info".into(),
            Value::Object(self.instance_info.clone()),
        );
        doc.insert(
            "driver_info".into(),
            Value::Object(self.driver_info.clone()),
        );
        doc.insert("extra".into(), Value::Object(self.extra.clone()));
        doc.insert("maintenance".into(), Value::Bool(self.maintenance));
        doc.insert(
            "instance_uuid".into(),
            self.instance_uuid
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        for f in Node::SIMPLE_FIELDS {
            doc.insert(
                f.to_string(),
                self.fields.get(*f).cloned().unwrap_or(Value::Null),
            );
        }
        for k in INTERFACE_KINDS {
            doc.insert(
                format!("{k}_interface"),
                Value::String(self.interface(k).to_string()),
            );
        }
        doc
    }

    pub(super) fn patch(
        &self,
        ops: &[PatchOp],
        catalog: &HardwareCatalog,
    ) -> Result<Vec<NodeEvent>, DomainError> {
        let allowed_owned = patchable_fields();
        let allowed: Vec<&str> = allowed_owned.iter().map(String::as_str).collect();
        let before = self.patch_view();
        let after = patch::apply(&before, ops, &allowed)?;

        if self.patch_blocked_by_transition(ops) {
            return Err(DomainError::Conflict(format!(
                "Node {} can not be updated while a state transition is in progress.",
                self.id()
            )));
        }

        let mut events = Vec::new();
        let changed = |f: &str| before.get(f) != after.get(f);

        if changed("name") {
            let to = as_opt_string("name", &after["name"])?;
            if let Some(n) = &to {
                if NodeName::parse(n).is_err() {
                    return Err(DomainError::Invalid(format!(
                        "Cannot update node with invalid name '{n}'"
                    )));
                }
            }
            events.push(NodeEvent::NodeRenamed {
                from: self.name.clone(),
                to,
            });
        }

        // `maintenance` is patchable (Ironic's PATCH_ALLOWED_FIELDS); the patched
        // value is what the interface rule below looks at, as in Ironic's
        // conductor, which checks the updated node.
        let maintenance = as_maintenance(&after["maintenance"])?;
        if maintenance != self.maintenance {
            events.push(if maintenance {
                NodeEvent::MaintenanceSet { reason: None }
            } else {
                NodeEvent::MaintenanceUnset
            });
        }

        let mut simple = BTreeMap::new();
        let driver = match as_opt_string("driver", &after["driver"])? {
            Some(d) => d,
            None => {
                return Err(DomainError::Invalid(
                    "'driver' is a required property".into(),
                ))
            }
        };
        if driver != self.driver {
            catalog.check_driver(&driver)?;
            simple.insert("driver".to_string(), Value::String(driver.clone()));
        }
        for f in Node::SIMPLE_FIELDS {
            if changed(f) {
                check_simple(f, &after[*f])?;
                simple.insert(f.to_string(), after[*f].clone());
            }
        }
        self.check_flag_with_reason(&after, &mut simple, "protected")?;
        self.check_flag_with_reason(&after, &mut simple, "retired")?;

        // Interfaces: an explicit value must be usable with the (new) driver; a
        // removed one goes back to the default; a driver change re-resolves the
        // interfaces the new driver cannot use.
        for kind in INTERFACE_KINDS {
            let field = format!("{kind}_interface");
            let requested = as_opt_string(&field, &after[&field])?;
            let current = self.interface(kind).to_string();
            let new = match requested {
                Some(name) if name == current && driver == self.driver => continue,
                Some(name) if name == current => {
                    match catalog.resolve(&driver, kind, Some(&name)) {
                        Ok(n) => n,
                        Err(_) => catalog.resolve(&driver, kind, None)?,
                    }
                }
                Some(name) => catalog.resolve(&driver, kind, Some(&name))?,
                None => catalog.resolve(&driver, kind, None)?,
            };
            if new == current {
                continue;
            }
            if !self.state().interface_change_allowed() && !maintenance {
                return Err(DomainError::Conflict(format!(
                    "Node {} can not have {field} updated unless it is in one of allowed (enroll, inspecting, inspect wait, manageable, available) states or in maintenance mode. Current state is '{}'.",
                    self.id(),
                    self.state()
                )));
            }
            events.push(if kind == "storage" {
                NodeEvent::StorageInterfaceSet {
                    from: current,
                    to: new,
                }
            } else {
                NodeEvent::InterfaceSet {
                    interface: kind.to_string(),
                    from: current,
                    to: new,
                }
            });
        }
        if !simple.is_empty() {
            events.push(NodeEvent::NodeUpdated { changes: simple });
        }
        if changed("properties") {
            events.push(NodeEvent::PropertiesUpdated {
                before: self.properties.clone(),
                after: as_object("properties", &after["properties"])?,
            });
        }
        if changed("instance_info") {
            events.push(NodeEvent::InstanceInfoUpdated {
                before: self.instance_info.clone(),
                after: as_object("instance_info", &after["instance_info"])?,
            });
        }
        if changed("driver_info") {
            events.push(NodeEvent::DriverInfoUpdated {
                after: as_object("driver_info", &after["driver_info"])?,
            });
        }
        if changed("extra") {
            let extra = as_object("extra", &after["extra"])?;
            let mut changes = BTreeMap::new();
            changes.insert("extra".to_string(), Value::Object(extra));
            events.push(NodeEvent::NodeUpdated { changes });
        }
        if changed("instance_uuid") {
            let to = as_opt_string("instance_uuid", &after["instance_uuid"])?;
            // Ironic's rule: a node's instance is set or cleared, never
            // swapped for another (that would take a deployed machine from
            // under its instance).
            if let (Some(current), Some(_)) = (&self.instance_uuid, &to) {
                return Err(DomainError::Conflict(format!(
                    "Node {} is associated with instance {current}.",
                    self.id()
                )));
            }
            if let Some(u) = &to {
                if uuid::Uuid::parse_str(u).is_err() {
                    return Err(DomainError::Invalid(format!(
                        "Expected a UUID but received {u}."
                    )));
                }
            }
            events.push(NodeEvent::InstanceAssociated {
                from: self.instance_uuid.clone(),
                to,
            });
        }
        Ok(events)
    }
}
