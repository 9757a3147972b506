//! Reading events stored in older schema versions.
//!
//! Stored events are never rewritten. When an event's shape changes, its
//! version goes up ([`NodeEvent::version`]) and an upcaster is registered here
//! that turns the older payload into the current one **when it is read**. The
//! same upcasters serve every reader:
//!
//! - the write model: cqrs-es's `PersistedEventStore::with_upcasters` (see
//!   `engine`), which applies them to the events `Repo::get_events` loaded;
//! - the engine's `load_node`, the projections reading the feed, and the audit
//!   tools (`ironledger events`, `history`, `show --as-of`, `verify`): they call
//!   [`upcast`] / [`node_event`] below.
//!
//! Upcasters are cqrs-es `SemanticVersionEventUpcaster`s: one applies to every
//! event of its type whose version is lower than its own, and sets the version
//! to its own; they are listed oldest first, so a 1.0 payload goes through the
//! 1.1 upcaster, then the 1.2 one, and so on.
//!
//! # Changes so far
//!
//! | Event | Version | Change |
//! |---|---|---|
//! | `DeployFailed`, `UndeployFailed` | 1.1 | `error` renamed `last_error` (the node field it sets) |

use super::NodeEvent;
use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster, SerializedEvent};
use serde_json::Value;

/// Renames key `from` to `to` inside the externally tagged payload's body
/// (`{"<Event>": {…}}`); a payload without `from` is left alone.
fn rename_in_body(from: &'static str, to: &'static str) -> impl Fn(Value) -> Value + Send + Sync {
    move |mut payload: Value| {
        if let Some(body) = payload
            .as_object_mut()
            .and_then(|m| m.values_mut().next())
            .and_then(Value::as_object_mut)
        {
            if let Some(v) = body.remove(from) {
                body.insert(to.to_string(), v);
            }
        }
        payload
    }
}

/// Every upcaster of the `Node` aggregate's events, oldest version first.
pub fn node_upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![
        Box::new(SemanticVersionEventUpcaster::new(
            "DeployFailed",
            "1.1",
            Box::new(rename_in_body("error", "last_error")),
        )),
        Box::new(SemanticVersionEventUpcaster::new(
            "UndeployFailed",
            "1.1",
            Box::new(rename_in_body("error", "last_error")),
        )),
    ]
}

/// The upcasters, built once (they are immutable).
fn upcasters() -> &'static [Box<dyn EventUpcaster>] {
    static UPCASTERS: std::sync::OnceLock<Vec<Box<dyn EventUpcaster>>> = std::sync::OnceLock::new();
    UPCASTERS.get_or_init(node_upcasters)
}

/// Brings one stored event to the current schema (a no-op for other
/// aggregates' events and for current versions).
pub fn upcast(event: SerializedEvent) -> SerializedEvent {
    if event.aggregate_type != "Node" {
        return event;
    }
    upcasters().iter().fold(event, |event, u| {
        if u.can_upcast(&event.event_type, &event.event_version) {
            u.upcast(event)
        } else {
            event
        }
    })
}

/// The current-schema payload of a stored node event given by its parts.
pub fn upcast_payload(event_type: &str, event_version: &str, payload: Value) -> (String, Value) {
    let e = upcast(SerializedEvent {
        aggregate_id: String::new(),
        sequence: 0,
        aggregate_type: "Node".into(),
        event_type: event_type.into(),
        event_version: event_version.into(),
        payload,
        metadata: Value::Null,
    });
    (e.event_version, e.payload)
}

/// Decodes a stored node event of any known version.
pub fn node_event(
    event_type: &str,
    event_version: &str,
    payload: &Value,
) -> Result<NodeEvent, serde_json::Error> {
    let (_, payload) = upcast_payload(event_type, event_version, payload.clone());
    serde_json::from_value(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transition() -> Value {
        json!({"event": "fail", "from": "deploying", "to": "deploy failed", "target": "active"})
    }

    #[test]
    fn a_1_0_deploy_failed_reads_as_1_1() {
        let old = json!({"DeployFailed": {"transition": transition(), "error": "boom"}});
        let (version, payload) = upcast_payload("DeployFailed", "1.0", old.clone());
        // cqrs-es writes the upcaster's version in full semantic form.
        assert_eq!(version, "1.1.0");
        assert_eq!(payload["DeployFailed"]["last_error"], "boom");
        assert!(payload["DeployFailed"].get("error").is_none());
        match node_event("DeployFailed", "1.0", &old).unwrap() {
            NodeEvent::DeployFailed { last_error, .. } => assert_eq!(last_error, "boom"),
            other => panic!("{other:?}"),
        }
        // A 1.0 payload cannot be read without the upcaster.
        assert!(serde_json::from_value::<NodeEvent>(old).is_err());
    }

    #[test]
    fn current_versions_are_untouched() {
        let new = json!({"UndeployFailed": {"transition": transition(), "last_error": "x"}});
        let (version, payload) = upcast_payload("UndeployFailed", "1.1", new.clone());
        assert_eq!((version.as_str(), payload), ("1.1", new));
        let other = json!({"MaintenanceUnset": null});
        assert_eq!(
            upcast_payload("MaintenanceUnset", "1.0", other.clone()),
            ("1.0".to_string(), other)
        );
    }

    #[test]
    fn written_versions_match_the_upcasters() {
        let e = NodeEvent::DeployFailed {
            transition: serde_json::from_value(transition()).unwrap(),
            last_error: "x".into(),
        };
        assert_eq!(cqrs_es::DomainEvent::event_version(&e), "1.1");
        assert_eq!(NodeEvent::MaintenanceUnset.version(), "1.0");
    }
}
