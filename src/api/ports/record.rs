//! A port as a child record of its node (`api::child_record::Kind`):
//! Ironic's checks of a created or patched port, the command that adds it.

use super::*;

/// Ironic's `as_dict` of a port, as a patch sees it: what ironledger does not
/// model has its empty value; `node_ident` is not a field (adding it at the root
/// is refused, as in Ironic).
pub(super) fn patch_doc(record: &Value) -> Map<String, Value> {
    let mut m = fields_of(
        record,
        &[
            "uuid",
            "address",
            "extra",
            "pxe_enabled",
            "created_at",
            "updated_at",
        ],
    );
    let link = match record.get("local_link_connection") {
        Some(v @ Value::Object(_)) => v.clone(),
        _ => json!({}),
    };
    m.insert("local_link_connection".into(), link);
    m.insert("portgroup_uuid".into(), Value::Null);
    m.insert("internal_info".into(), json!({}));
    m.insert(
        "physical_network".into(),
        record
            .get("physical_network")
            .cloned()
            .unwrap_or(Value::Null),
    );
    m.insert(
        "is_smartnic".into(),
        json!(record["is_smartnic"].as_bool().unwrap_or(false)),
    );
    for k in ["name", "description", "vendor", "category"] {
        m.insert(k.into(), Value::Null);
    }
    m.insert("available_for_dynamic_portgroup".into(), json!(false));
    m
}

/// oslo's `is_valid_mac`, normalised to Ironic's stored form.
pub(super) fn normalize_mac(raw: &str) -> Option<String> {
    MacAddress::parse_oslo(raw).map(MacAddress::into_string)
}

/// A boolean field given as a boolean or a bool-string (`args.boolean`).
pub(super) fn boolean(doc: &mut Map<String, Value>, name: &str) -> ApiResult<()> {
    if let Some(Value::String(s)) = doc.get(name) {
        let b = listing::parse_bool(name, s)?;
        doc.insert(name.into(), Value::Bool(b));
    }
    Ok(())
}

/// Ironic's checks of a created or patched port: its `PORT_VALIDATOR_EXTRA`,
/// a non-empty `physical_network`, then ironledger's refusal of values for
/// fields it does not model.
pub(super) fn check_record(doc: &mut Map<String, Value>) -> ApiResult<()> {
    validate_values(doc)?;
    check_physical_network(doc)?;
    refuse_unmodelled(doc)
}

/// Ironic's `PORT_VALIDATOR_EXTRA`, in its order, normalising as it does (MAC
/// in lower case, bool-strings as booleans).
pub(super) fn validate_values(doc: &mut Map<String, Value>) -> ApiResult<()> {
    if let Some(v) = doc.get("address") {
        let raw = py_str(v);
        let mac = normalize_mac(&raw).ok_or_else(|| {
            ApiError::bad_request(format!("Expected valid MAC address for address: {raw}"))
        })?;
        doc.insert("address".into(), Value::String(mac));
    }
    schema::check_uuid_field(doc, "node_uuid")?;
    boolean(doc, "is_smartnic")?;
    if let Some(Value::Object(link)) = doc.get("local_link_connection") {
        local_link::check(link).map_err(ApiError::bad_request)?;
    }
    schema::check_uuid_field(doc, "portgroup_uuid")?;
    boolean(doc, "pxe_enabled")?;
    schema::check_uuid_field(doc, "uuid")?;
    boolean(doc, "available_for_dynamic_portgroup")?;
    if let Some(Value::String(pg)) = doc.get("portgroup_uuid") {
        // ironledger has no port groups, so any named one does not exist.
        return Err(ApiError::bad_request(format!(
            "Portgroup {pg} could not be found."
        )));
    }
    Ok(())
}

/// Ironic refuses an empty physical network (`null` is "none").
pub(super) fn check_physical_network(doc: &Map<String, Value>) -> ApiResult<()> {
    if doc
        .get("physical_network")
        .is_some_and(|v| v.as_str() == Some(""))
    {
        return Err(ApiError::bad_request(
            "A non-empty value is required when setting physical_network",
        ));
    }
    Ok(())
}

/// Ironic's checks of a new port after its node and version: a Smart NIC
/// port's link names its host, a physical network is not empty; then the
/// fields ironledger does not model.
pub(super) fn check_created(record: &Map<String, Value>) -> ApiResult<()> {
    if record.get("is_smartnic") == Some(&Value::Bool(true))
        && !local_link::fits_smart_nic(record.get("local_link_connection"))
    {
        return Err(ApiError::bad_request(
            "Smart NIC port must have port_id and hostname in local_link_connection",
        ));
    }
    check_physical_network(record)?;
    refuse_unmodelled(record)
}

/// A value other than the empty one for a field ironledger does not model
/// (those Ironic added after 1.78) is refused rather than silently dropped.
pub(super) fn refuse_unmodelled(doc: &Map<String, Value>) -> ApiResult<()> {
    let unmodelled = |field: &str, v: &Value| match field {
        "available_for_dynamic_portgroup" => !matches!(v, Value::Null | Value::Bool(false)),
        _ => !v.is_null(),
    };
    for field in [
        "name",
        "description",
        "vendor",
        "category",
        "available_for_dynamic_portgroup",
    ] {
        if let Some(v) = doc.get(field) {
            if unmodelled(field, v) {
                return Err(ApiError::bad_request(format!(
                    "ironledger does not model the port field {field}; it can only be empty."
                )));
            }
        }
    }
    Ok(())
}

pub(super) fn add(uuid: Uuid, doc: &Map<String, Value>) -> NodeCommand {
    NodeCommand::AddPort(NewPort {
        uuid,
        address: doc
            .get("address")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        // Ironic answers a null pxe_enabled with a 500; ironledger takes the default.
        pxe_enabled: doc
            .get("pxe_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        extra: object_of(doc, "extra"),
        local_link_connection: doc
            .get("local_link_connection")
            .and_then(Value::as_object)
            .map(|link| {
                link.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        physical_network: doc
            .get("physical_network")
            .and_then(Value::as_str)
            .map(String::from),
        is_smartnic: doc
            .get("is_smartnic")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// Values the aggregate takes in its own types: a bool-string becomes a boolean,
/// a MAC its lower-case form.
pub(super) fn normalize(op: &mut PatchOp) {
    match (op.path.as_str(), op.value.as_mut()) {
        (path @ ("/pxe_enabled" | "/is_smartnic"), Some(v @ Value::String(_))) => {
            if let Ok(b) = listing::parse_bool(&path[1..], v.as_str().unwrap_or_default()) {
                *v = Value::Bool(b);
            }
        }
        ("/address", Some(Value::String(s))) => *s = s.to_ascii_lowercase(),
        _ => {}
    }
}

pub(super) static PORTS: Kind = Kind {
    body_name: "port",
    model: children::PORTS,
    not_found: "Port {} could not be found.",
    schema: &PORT_SCHEMA,
    patch_allowed: &[
        "address",
        "extra",
        "is_smartnic",
        "local_link_connection",
        "node_ident",
        "node_uuid",
        "physical_network",
        "portgroup_uuid",
        "pxe_enabled",
        "name",
        "description",
        "vendor",
        "category",
        "available_for_dynamic_portgroup",
    ],
    domain_fields: PORT_FIELDS,
    child: ChildKind::Port,
    patch_doc,
    check_record,
    add,
    patch: |uuid, ops| NodeCommand::PatchPort { uuid, ops },
    remove: |uuid| NodeCommand::RemovePort { uuid },
    normalize,
};
