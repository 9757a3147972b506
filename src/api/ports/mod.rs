//! The ports API: `/v1/ports`, `/v1/ports/detail`, `/v1/ports/{port}` and the
//! read-only `/v1/nodes/{node}/ports[/detail]`.
//!
//! A port is a MAC address of a node (its per-MAC iPXE entry point) and where
//! it is cabled: ironledger models `address`, `pxe_enabled`, `extra` and the
//! network fields Nova, Neutron and inspection send (`local_link_connection`,
//! checked in [`local_link`]; `physical_network`; `is_smartnic`). The other
//! fields Ironic's port has up to 1.78 are shown with their empty values
//! (`internal_info: {}`, `portgroup_uuid: null`), each only from the version
//! that added it; a port group named in a request does not exist. Validation
//! messages are Ironic's (compared with Ironic 39); create, patch (with
//! re-homing) and delete share their steps with the volume API
//! ([`super::child_record`]).

mod local_link;

use super::body::JsonBody;
use super::child_record::{self as resource, fields_of, object_of, Kind};
use super::error::{ApiError, ApiResult};
use super::links::{self, BaseUrl};
use super::listing::{self, ListParams, ListSpec, Params};
use super::lookup::{self, check_path_node, check_uuid_or_name};
use super::patch::{self, PatchOp};
use super::pyfmt::str_ as py_str;
use super::root::method_not_allowed;
use super::schema::{self, Prop, Schema, Ty};
use super::version::{not_acceptable, Version};
use super::{with_slash, AppState, Who};
use crate::domain::mac_address::MacAddress;
use crate::domain::node::commands::NewPort;
use crate::domain::node::entities::ChildKind;
use crate::domain::node::entities::PORT_FIELDS;
use crate::domain::NodeCommand;
use crate::projections::children::{self, ChildFilter};
use crate::projections::nodes::{self, NodeFilter};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use uuid::Uuid;

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
const ALL_FIELDS: &[&str] = &[
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
fn field_minor(field: &str) -> u32 {
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
fn check_allowed_fields<'a>(
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
fn check_allowed_link(version: Version, record: &Map<String, Value>) -> ApiResult<()> {
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
fn parse_fields(version: Version, raw: &str) -> ApiResult<Vec<String>> {
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

/// A port as Ironic shows it at `version`.
fn render(doc: &Value, base: &BaseUrl, version: Version) -> Value {
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
fn shown_link(doc: &Value) -> Value {
    match doc.get("local_link_connection") {
        Some(Value::Object(link))
            if !local_link::VTEP_KEYS.iter().any(|k| link.contains_key(*k)) =>
        {
            Value::Object(link.clone())
        }
        _ => json!({}),
    }
}

// ---- the resource as a patchable child record ---------------------------------------

/// Ironic's `as_dict` of a port, as a patch sees it: what ironledger does not
/// model has its empty value; `node_ident` is not a field (adding it at the root
/// is refused, as in Ironic).
fn patch_doc(record: &Value) -> Map<String, Value> {
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
fn normalize_mac(raw: &str) -> Option<String> {
    MacAddress::parse_oslo(raw).map(MacAddress::into_string)
}

/// A boolean field given as a boolean or a bool-string (`args.boolean`).
fn boolean(doc: &mut Map<String, Value>, name: &str) -> ApiResult<()> {
    if let Some(Value::String(s)) = doc.get(name) {
        let b = listing::parse_bool(name, s)?;
        doc.insert(name.into(), Value::Bool(b));
    }
    Ok(())
}

/// Ironic's checks of a created or patched port: its `PORT_VALIDATOR_EXTRA`,
/// a non-empty `physical_network`, then ironledger's refusal of values for
/// fields it does not model.
fn check_record(doc: &mut Map<String, Value>) -> ApiResult<()> {
    validate_values(doc)?;
    check_physical_network(doc)?;
    refuse_unmodelled(doc)
}

/// Ironic's `PORT_VALIDATOR_EXTRA`, in its order, normalising as it does (MAC
/// in lower case, bool-strings as booleans).
fn validate_values(doc: &mut Map<String, Value>) -> ApiResult<()> {
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
fn check_physical_network(doc: &Map<String, Value>) -> ApiResult<()> {
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
fn check_created(record: &Map<String, Value>) -> ApiResult<()> {
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
fn refuse_unmodelled(doc: &Map<String, Value>) -> ApiResult<()> {
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

fn add(uuid: Uuid, doc: &Map<String, Value>) -> NodeCommand {
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
fn normalize(op: &mut PatchOp) {
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

static PORTS: Kind = Kind {
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
    update_needs_power_off: false,
    patch_doc,
    check_record,
    add,
    patch: |uuid, ops| NodeCommand::PatchPort { uuid, ops },
    remove: |uuid| NodeCommand::RemovePort { uuid },
    normalize,
};

// ---- routes ----------------------------------------------------------------------

pub fn routes() -> Router<AppState> {
    let collection =
        get(|s: State<AppState>, v: Version, b: BaseUrl, q: Params| list(s, v, b, None, false, q))
            .post(
                |s: State<AppState>, v: Version, b: BaseUrl, w: Who, body: JsonBody| {
                    create(s, v, b, w, false, body)
                },
            )
            .fallback(method_not_allowed);
    let detail =
        get(|s: State<AppState>, v: Version, b: BaseUrl, q: Params| list(s, v, b, None, true, q))
            .fallback(method_not_allowed);
    let item = get(
        |s: State<AppState>, v: Version, b: BaseUrl, Path(p): Path<String>, q: Params| {
            get_one(s, v, b, false, p, q)
        },
    )
    .patch(
        |s: State<AppState>,
         v: Version,
         b: BaseUrl,
         w: Who,
         Path(p): Path<String>,
         body: JsonBody| { patch(s, v, b, w, false, p, body) },
    )
    .delete(|s: State<AppState>, w: Who, Path(p): Path<String>| delete(s, w, false, p))
    .fallback(method_not_allowed);
    let node_collection = get(
        |s: State<AppState>, v: Version, b: BaseUrl, Path(n): Path<String>, q: Params| {
            list(s, v, b, Some(n), false, q)
        },
    )
    .post(
        |s: State<AppState>, v: Version, b: BaseUrl, w: Who, body: JsonBody| {
            create(s, v, b, w, true, body)
        },
    )
    .fallback(method_not_allowed);
    let node_detail = get(
        |s: State<AppState>, v: Version, b: BaseUrl, Path(n): Path<String>, q: Params| {
            list(s, v, b, Some(n), true, q)
        },
    )
    .fallback(method_not_allowed);
    let node_item = get(
        |s: State<AppState>,
         v: Version,
         b: BaseUrl,
         Path((_, p)): Path<(String, String)>,
         q: Params| { get_one(s, v, b, true, p, q) },
    )
    .patch(
        |s: State<AppState>,
         v: Version,
         b: BaseUrl,
         w: Who,
         Path((_, p)): Path<(String, String)>,
         body: JsonBody| { patch(s, v, b, w, true, p, body) },
    )
    .delete(
        |s: State<AppState>, w: Who, Path((_, p)): Path<(String, String)>| delete(s, w, true, p),
    )
    .fallback(method_not_allowed);
    // Collections and items also answer with a trailing slash, as in Ironic;
    // `/ports/detail/` is a 404 there, and here.
    let r = Router::new().route("/ports/detail", detail);
    let r = with_slash(r, "/ports", collection);
    let r = with_slash(r, "/ports/{port}", item);
    let r = with_slash(r, "/nodes/{node}/ports", node_collection);
    let r = r.route("/nodes/{node}/ports/detail", node_detail);
    with_slash(r, "/nodes/{node}/ports/{port}", node_item)
}

// ---- list -------------------------------------------------------------------------

const LIST_ARGS: &[&str] = &[
    "node",
    "node_uuid",
    "address",
    "marker",
    "limit",
    "sort_key",
    "sort_dir",
    "fields",
    "portgroup",
    "detail",
    "shard",
    "description_contains",
    "conductor_groups",
];

/// Sort keys Ironic refuses by name (unquoted message).
const UNSORTABLE: &[&str] = &["extra", "internal_info", "local_link_connection"];
/// Sort keys ironledger can order by (the columns it has; `id` is creation order).
const SORTABLE: &[&str] = &[
    "id",
    "uuid",
    "address",
    "created_at",
    "updated_at",
    "pxe_enabled",
    "physical_network",
    "is_smartnic",
];

/// `GET /v1/ports`, `/v1/ports/detail` and the node-scoped forms.
///
/// Ironic's node-scoped list answers 404 `Portgroup None could not be found.`
/// (a bug in Ironic 39); ironledger lists the node's ports, with `next`
/// pointing at the global collection as Ironic builds it.
async fn list(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    path_node: Option<String>,
    detail_endpoint: bool,
    q: Params,
) -> ApiResult<Json<Value>> {
    if let Some(n) = &path_node {
        check_path_node(n)?;
    }
    let allowed: Vec<&str> = LIST_ARGS
        .iter()
        .copied()
        .filter(|a| !detail_endpoint || !["fields", "detail"].contains(a))
        .collect();
    q.only(&allowed)?;

    // args.validate
    if let Some(n) = q.get("node") {
        check_uuid_or_name("node", n)?;
    }
    if let Some(n) = q.get("node_uuid") {
        listing::uuid_arg("node_uuid", n)?;
    }
    let address = match q.get("address") {
        None => None,
        Some(a) => Some(normalize_mac(a).ok_or_else(|| {
            ApiError::bad_request(format!("Expected valid MAC address for address: {a}"))
        })?),
    };
    let marker = q
        .get("marker")
        .map(|m| listing::uuid_arg("marker", m))
        .transpose()?;
    let limit = q
        .get("limit")
        .map(|raw| listing::integer_arg("limit", raw))
        .transpose()?;
    if let Some(pg) = q.get("portgroup") {
        check_uuid_or_name("portgroup", pg)?;
    }
    let detail = q.boolean("detail")?;

    // The controller's own checks.
    let fields = q
        .get("fields")
        .map(|f| parse_fields(version, f))
        .transpose()?;
    let sort_key = q.get("sort_key").unwrap_or("id").to_string();
    check_allowed_fields(version, [sort_key.as_str()])?;
    if q.contains("portgroup") && !version.at_least(24) {
        return Err(not_acceptable());
    }
    if q.contains("shard") {
        // Filtering by shard came with 1.82, above ironledger's maximum.
        return Err(not_acceptable());
    }
    if let Some(d) = detail {
        if !version.at_least(43) {
            return Err(ApiError::bad_request(format!(
                "Invalid query parameter ?detail={} received.",
                if d { "True" } else { "False" }
            )));
        }
        if d && fields.is_some() {
            return Err(ApiError::bad_request(
                "Can not specify ?detail=True and fields in the same request.",
            ));
        }
    }
    let node_ident = path_node
        .clone()
        .or_else(|| q.get("node_uuid").map(String::from))
        .or_else(|| q.get("node").map(String::from));
    if let Some(n) = &node_ident {
        if !version.at_least(5) && Uuid::parse_str(n).is_err() {
            return Err(not_acceptable());
        }
    }
    let limit = listing::limit(limit, state.config.api.max_limit)?;
    let sort_dir = listing::sort_dir(q.get("sort_dir"))?;
    let store = state.engine.store().as_ref();
    if let Some(m) = marker {
        if children::get(store, children::PORTS, &m.to_string())
            .await?
            .is_none()
        {
            return Err(PORTS.not_found(m));
        }
    }
    if UNSORTABLE.contains(&sort_key.as_str()) {
        return Err(ApiError::bad_request(format!(
            "The sort_key value {sort_key} is an invalid field for sorting"
        )));
    }
    if let Some(pg) = q.get("portgroup") {
        return Err(ApiError::not_found(format!(
            "Portgroup {pg} could not be found."
        )));
    }
    let node = match &node_ident {
        Some(ident) => Some(lookup::node(store, ident).await?.uuid().to_string()),
        None => None,
    };
    if !SORTABLE.contains(&sort_key.as_str()) {
        return Err(ApiError::bad_request(format!(
            "The sort_key value \"{sort_key}\" is an invalid field for sorting"
        )));
    }
    let conductor_groups: Option<Vec<String>> = q.get("conductor_groups").map(|g| {
        g.split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    });
    if conductor_groups.is_some() && (node.is_some() || address.is_some()) {
        return Err(ApiError::bad_request(
            "Filtering by conductor_groups cannot be combined with node_ident, portgroup_ident, or node address filters.",
        ));
    }
    let spec = ListSpec {
        collection: "ports",
        path: if detail_endpoint {
            "ports/detail"
        } else {
            "ports"
        },
        fields: ALL_FIELDS,
        default_fields: &["uuid", "address"],
        unsortable: UNSORTABLE,
        filters: &[],
        not_found: "Port {} could not be found.",
    };
    let detailed = detail_endpoint || detail == Some(true);
    let params = ListParams {
        limit,
        marker,
        sort_key,
        sort_dir,
        explicit_fields: fields.is_some(),
        fields: match (&fields, detailed) {
            (Some(f), _) => Some(f.clone()),
            (None, true) => None,
            (None, false) => Some(vec!["uuid".into(), "address".into()]),
        },
        // The detail endpoint's next link carries no detail=.
        detail: !detail_endpoint && detail == Some(true),
    };
    let description = q.get("description_contains").filter(|d| !d.is_empty());
    let full = |doc: &Value| render(doc, &base, Version::MAX);
    let mut page = if description.is_some() {
        // Ports have no description in ironledger, so none contains the text.
        spec.answer(vec![], &params, &base)
    } else if let Some(groups) = &conductor_groups {
        ports_of_groups(store, groups, &spec, &params, &base, &full).await?
    } else {
        // Ironic: the node filter wins over the address filter.
        let filter = ChildFilter {
            address: address.clone().filter(|_| node.is_none()),
            node_uuid: node,
        };
        listing::child_page(
            store,
            children::PORTS,
            &spec,
            &filter,
            &params,
            &base,
            &full,
        )
        .await?
    };
    // Hide what the requested version does not show (the page was built from
    // the newest form so sorting saw every column).
    if let Some(Value::Array(ports)) = page.get_mut("ports") {
        for p in ports.iter_mut() {
            if let Value::Object(m) = p {
                m.retain(|k, _| version.at_least(field_minor(k)));
            }
        }
    }
    Ok(Json(page))
}

/// The ports of the nodes in some conductor groups: the groups' nodes from
/// the nodes' `conductor_group` index, then each node's ports from the ports'
/// `node_uuid` index, sorted and cut here (costs the ports of those groups).
async fn ports_of_groups(
    store: &dyn crate::store::LogStore,
    groups: &[String],
    spec: &ListSpec,
    params: &ListParams,
    base: &BaseUrl,
    full: &(dyn Fn(&Value) -> Value + Sync),
) -> ApiResult<Value> {
    let mut items = vec![];
    for group in groups {
        let in_group = NodeFilter {
            conductor_group: Some(group.clone()),
            ..NodeFilter::default()
        };
        for node in nodes::every(store, &in_group).await? {
            let of_node = ChildFilter {
                node_uuid: Some(node.uuid().to_string()),
                address: None,
            };
            let ports = children::every(store, children::PORTS, &of_node).await?;
            items.extend(ports.iter().map(|doc| listing::with_order(full(doc), doc)));
        }
    }
    spec.page(items, params, base)
}

// ---- one port -----------------------------------------------------------------------

/// A port by UUID, or (Ironic's `uuid_or_name`) by a name, which no port has
/// before 1.88: 404.
async fn find(state: &AppState, ident: &str, param: &str) -> ApiResult<(Uuid, Value)> {
    check_uuid_or_name(param, ident)?;
    let uuid = Uuid::parse_str(ident).map_err(|_| PORTS.not_found(ident))?;
    Ok((uuid, PORTS.load(state, uuid).await?))
}

async fn get_one(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    scoped: bool,
    ident: String,
    q: Params,
) -> ApiResult<Json<Value>> {
    q.only(&["fields"])?;
    check_uuid_or_name("port_ident", &ident)?;
    if scoped {
        return Err(ApiError::malformed_uri());
    }
    let (_, doc) = find(&state, &ident, "port_ident").await?;
    let fields = q
        .get("fields")
        .map(|f| parse_fields(version, f))
        .transpose()?;
    Ok(Json(listing::select(
        render(&doc, &base, version),
        fields.as_deref(),
    )))
}

/// `POST /v1/ports`: schema, Ironic's value checks, the node (400 when
/// missing), fields newer than the request (406), then the aggregate (a taken
/// MAC or UUID → 409).
async fn create(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    Who(who): Who,
    scoped: bool,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let mut record = resource::check_create_body(&PORTS, &body)?;
    validate_values(&mut record)?;
    if scoped {
        return Err(ApiError::malformed_uri());
    }
    if record.contains_key("node_ident") {
        // Creating a port with node_ident came after 1.78.
        return Err(not_acceptable());
    }
    let node_raw = record.get("node_uuid").map(py_str).unwrap_or_default();
    let node = Uuid::parse_str(&node_raw).expect("checked by the schema and check_record");
    if lookup::node_by_uuid(state.engine.store().as_ref(), node)
        .await?
        .is_none()
    {
        return Err(ApiError::bad_request(format!(
            "Node {node_raw} could not be found."
        )));
    }
    check_allowed_fields(version, record.keys().map(String::as_str))?;
    check_allowed_link(version, &record)?;
    check_created(&record)?;
    let uuid = record
        .get("uuid")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(Uuid::new_v4);
    state.engine.node(node, add(uuid, &record), &who).await?;
    let doc = PORTS.load(&state, uuid).await?;
    Ok(links::created(
        &base,
        &format!("ports/{uuid}"),
        render(&doc, &base, version),
    ))
}

/// `PATCH /v1/ports/{port}`; a new `node_uuid` moves the port to that node.
async fn patch(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    Who(who): Who,
    scoped: bool,
    ident: String,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    check_uuid_or_name("port_ident", &ident)?;
    let ops = patch::parse(&body)?;
    if scoped {
        return Err(ApiError::malformed_uri());
    }
    patch::check_allowed(&ops, PORTS.patch_allowed)?;
    let gated = [
        "pxe_enabled",
        "local_link_connection",
        "portgroup_uuid",
        "physical_network",
        "is_smartnic",
        "local_link_connection/network_type",
    ];
    let touched = gated.iter().copied().filter(|f| {
        let path = format!("/{f}");
        ops.iter().any(|o| {
            (o.path == path && o.op != "remove" && o.value.is_some())
                || (o.op == "remove" && (o.path == path || o.path.starts_with(&format!("{path}/"))))
        })
    });
    check_allowed_fields(version, touched)?;
    let (uuid, doc) = find(&state, &ident, "port_ident").await?;
    resource::patch(&state, &PORTS, uuid, &doc, &ops, &who).await?;
    let doc = PORTS.load(&state, uuid).await?;
    Ok(Json(render(&doc, &base, version)))
}

async fn delete(
    State(state): State<AppState>,
    Who(who): Who,
    scoped: bool,
    raw: String,
) -> ApiResult<StatusCode> {
    let uuid = Uuid::parse_str(&raw)
        .map_err(|_| ApiError::bad_request(format!("Expected UUID for port_uuid: {raw}")))?;
    if scoped {
        return Err(ApiError::malformed_uri());
    }
    let doc = PORTS.load(&state, uuid).await?;
    resource::remove(&state, &PORTS, uuid, &doc, &who).await?;
    Ok(StatusCode::NO_CONTENT)
}
