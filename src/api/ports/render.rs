//! A port as the API shows it, at the client's version.

use super::*;

/// A port as Ironic shows it at `version`.
pub(super) fn render(doc: &Value, base: &BaseUrl, version: Version) -> Value {
    let uuid = doc["uuid"].as_str().unwrap_or_default();
    let mut m = Map::new();
    m.insert("uuid".into(), json!(uuid));
    m.insert("created_at".into(), doc["created_at"].clone());
    m.insert("updated_at".into(), doc["updated_at"].clone());
    m.insert("address".into(), doc["address"].clone());
    let extra = if doc["extra"].is_object() {
        doc["extra"].clone()
    } else {
        json!({})
    };
    m.insert("extra".into(), extra);
    let mut optional = |field: &str, value: Value| {
        if version.at_least(field_minor(field)) {
            m.insert(field.into(), value);
        }
    };
    optional("internal_info", json!({}));
    optional(
        "is_smartnic",
        json!(doc["is_smartnic"].as_bool().unwrap_or(false)),
    );
    optional("local_link_connection", shown_link(doc));
    optional("physical_network", doc["physical_network"].clone());
    optional("pxe_enabled", doc["pxe_enabled"].clone());
    optional("portgroup_uuid", Value::Null);
    m.insert("node_uuid".into(), doc["node_uuid"].clone());
    m.insert("links".into(), base.links(&format!("ports/{uuid}")));
    Value::Object(m)
}

/// A port's link as shown: `{}` when it has none, and also (as Ironic shows
/// it below 1.90) when it names OVN VTEP switches, which only a patch can set.
pub(super) fn shown_link(doc: &Value) -> Value {
    match doc.get("local_link_connection") {
        Some(Value::Object(link))
            if !local_link::VTEP_KEYS.iter().any(|k| link.contains_key(*k)) =>
        {
            Value::Object(link.clone())
        }
        _ => json!({}),
    }
}
