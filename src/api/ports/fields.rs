//! Which port fields exist at which API version, and the port's request
//! schema (Ironic's `PORT_SCHEMA`).

use super::*;

/// Ironic's `PORT_SCHEMA` (create, and the patched port).
pub static PORT_SCHEMA: Schema = Schema {
    props: &[
        Prop::new("address", &[Ty::String]),
        Prop::new("extra", &[Ty::Object, Ty::Null]),
        Prop::new("is_smartnic", &[Ty::String, Ty::Boolean, Ty::Null]),
        Prop::new("local_link_connection", &[Ty::Null, Ty::Object]),
        Prop::new("node_ident", &[Ty::String]),
        Prop::new("node_uuid", &[Ty::String]),
        Prop::max("physical_network", &[Ty::String, Ty::Null], 64),
        Prop::new("portgroup_uuid", &[Ty::String, Ty::Null]),
        Prop::new("pxe_enabled", &[Ty::String, Ty::Boolean, Ty::Null]),
        Prop::new("uuid", &[Ty::String, Ty::Null]),
        Prop::new("name", &[Ty::String, Ty::Null]),
        Prop::max("description", &[Ty::String, Ty::Null], 255),
        Prop::max("vendor", &[Ty::String, Ty::Null], 32),
        Prop::max("category", &[Ty::String, Ty::Null], 80),
        Prop::new("available_for_dynamic_portgroup", &[Ty::Boolean]),
    ],
    required: &["address"],
    one_of_required: Some(["node_ident", "node_uuid"]),
};

/// Every field of a port's representation (before version hiding), for
/// `fields=` (Ironic checks against its full dict).
pub(super) const ALL_FIELDS: &[&str] = &[
    "uuid",
    "created_at",
    "updated_at",
    "address",
    "extra",
    "internal_info",
    "is_smartnic",
    "local_link_connection",
    "physical_network",
    "pxe_enabled",
    "node_uuid",
    "links",
    "portgroup_uuid",
    "name",
    "description",
    "vendor",
    "category",
    "available_for_dynamic_portgroup",
];

/// The version that added each field newer than the port itself; above
/// ironledger's maximum (1.78) means "never".
pub(super) fn field_minor(field: &str) -> u32 {
    match field {
        "internal_info" => 18,
        "pxe_enabled" | "local_link_connection" => 19,
        "local_link_connection/network_type" => 64,
        "portgroup_uuid" => 24,
        "physical_network" => 34,
        "is_smartnic" => 53,
        "name" => 88,
        "description" => 97,
        "vendor" => 100,
        "category" => 101,
        "available_for_dynamic_portgroup" => 111,
        _ => 1,
    }
}

/// Ironic's `_check_allowed_port_fields` (406 for a field newer than the
/// request; `internal_info` is shown from 1.18 but never refused).
pub(super) fn check_allowed_fields<'a>(
    version: Version,
    fields: impl IntoIterator<Item = &'a str>,
) -> ApiResult<()> {
    for f in fields {
        if f != "internal_info" && !version.at_least(field_minor(f)) {
            return Err(not_acceptable());
        }
    }
    Ok(())
}

/// The same for a created port's link: `network_type` came with 1.64, the
/// OVN VTEP keys with 1.90 (above ironledger's maximum).
pub(super) fn check_allowed_link(version: Version, record: &Map<String, Value>) -> ApiResult<()> {
    let Some(Value::Object(link)) = record.get("local_link_connection") else {
        return Ok(());
    };
    if (link.contains_key("network_type") && !version.at_least(64))
        || local_link::VTEP_KEYS.iter().any(|k| link.contains_key(*k))
    {
        return Err(not_acceptable());
    }
    Ok(())
}

/// `fields=` as Ironic checks it for ports: the version (1.8), fields newer
/// than the request (406), unknown names (400, in the order given).
pub(super) fn parse_fields(version: Version, raw: &str) -> ApiResult<Vec<String>> {
    if !version.at_least(8) {
        return Err(not_acceptable());
    }
    let fields: Vec<String> = raw
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(String::from)
        .collect();
    check_allowed_fields(version, fields.iter().map(String::as_str))?;
    let invalid: Vec<&str> = fields
        .iter()
        .map(String::as_str)
        .filter(|f| !ALL_FIELDS.contains(f))
        .collect();
    if !invalid.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Field(s) \"{}\" are not valid",
            invalid.join(", ")
        )));
    }
    Ok(fields)
}
