//! The volume API (`docs/ironic-behaviour.md` §7): `/v1/volume`, volume connectors and
//! volume targets, top level and read-only under a node.
//!
//! | module | what |
//! |---|---|
//! | this one | routes, handlers, the node-scoped and version rules |
//! | [`kinds`] | connectors and targets: schemas, fields, commands, rendering |
//!
//! Patching (and moving to another node) and removing are shared with ports
//! ([`super::child_record`]).
//!
//! Request validation in Ironic's words is the API's: [`super::schema`] (bodies),
//! [`super::patch`] (patch documents), [`super::listing`] (query strings).
//!
//! Every answer was compared with Ironic 39 (`shared/peers/ironic`). Where
//! ironledger deliberately answers differently (a 500 in Ironic, a name in
//! the node-scoped path), the handler says so.

pub mod kinds;

pub use super::body::JsonBody;
use super::child_record::{self as resource, Kind};
use super::error::{ApiError, ApiResult};
use super::links::{self, BaseUrl};
use super::listing::{self, ListSpec, Params};
use super::lookup::{self, check_path_node};
use super::patch;
use super::root::method_not_allowed;
use super::schema;
use super::version::Version;
use super::{with_slash, AppState, Who};
use crate::api::listing::child_page;
use crate::projections::children::ChildFilter;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, MethodRouter};
use axum::{Json, Router};
use kinds::{CONNECTORS, TARGETS};
use serde_json::{json, Value};
use uuid::Uuid;

/// The microversion that added the volume API.
pub const VOLUME_MINOR: u32 = 32;

/// A volume resource: the shared [`Kind`] plus what its endpoints need.
pub struct VolumeKind {
    pub kind: Kind,
    pub spec: ListSpec,
    /// The path parameter's name in Ironic's messages (`connector_uuid`).
    pub uuid_param: &'static str,
    /// `volume/connectors`.
    pub link_resource: &'static str,
    /// The full representation of a read-model document.
    pub render: fn(&Value, &BaseUrl) -> Value,
}

/// Fields of the schema that are not columns: Ironic's database refuses them as
/// sort keys with the quoted message.
const NOT_COLUMNS: &[&str] = &["node_uuid", "links"];

pub fn routes() -> Router<AppState> {
    let r = Router::new();
    let r = with_slash(r, "/volume", get(volume_links).fallback(method_not_allowed));
    let r = with_slash(
        r,
        "/nodes/{node}/volume",
        get(node_volume_links).fallback(method_not_allowed),
    );
    let r = with_slash(r, "/volume/connectors", collection(&CONNECTORS));
    let r = with_slash(r, "/volume/connectors/{uuid}", item(&CONNECTORS));
    let r = with_slash(r, "/volume/targets", collection(&TARGETS));
    let r = with_slash(r, "/volume/targets/{uuid}", item(&TARGETS));
    let r = with_slash(
        r,
        "/nodes/{node}/volume/connectors",
        node_collection(&CONNECTORS),
    );
    let r = with_slash(
        r,
        "/nodes/{node}/volume/connectors/{uuid}",
        node_item(&CONNECTORS),
    );
    let r = with_slash(r, "/nodes/{node}/volume/targets", node_collection(&TARGETS));
    with_slash(
        r,
        "/nodes/{node}/volume/targets/{uuid}",
        node_item(&TARGETS),
    )
}

fn collection(k: &'static VolumeKind) -> MethodRouter<AppState> {
    get(move |s: State<AppState>, v: Version, b: BaseUrl, q: Params| list(k, s, v, b, None, q))
        .post(
            move |s: State<AppState>, v: Version, b: BaseUrl, w: Who, body: JsonBody| {
                create(k, s, v, b, w, None, body)
            },
        )
        .patch(move |v: Version| missing_uuid(k, v, None))
        .delete(move |v: Version| missing_uuid(k, v, None))
        .fallback(method_not_allowed)
}

fn item(k: &'static VolumeKind) -> MethodRouter<AppState> {
    get(
        move |s: State<AppState>, v: Version, b: BaseUrl, Path(id): Path<String>, q: Params| {
            get_one(k, s, v, b, None, id, q)
        },
    )
    .patch(
        move |s: State<AppState>,
              v: Version,
              b: BaseUrl,
              w: Who,
              Path(id): Path<String>,
              body: JsonBody| { patch(k, s, v, b, w, None, id, body) },
    )
    .delete(
        move |s: State<AppState>, v: Version, w: Who, Path(id): Path<String>| {
            delete(k, s, v, w, None, id)
        },
    )
    .fallback(method_not_allowed)
}

fn node_collection(k: &'static VolumeKind) -> MethodRouter<AppState> {
    get(
        move |s: State<AppState>, v: Version, b: BaseUrl, Path(node): Path<String>, q: Params| {
            list(k, s, v, b, Some(node), q)
        },
    )
    .post(
        move |s: State<AppState>,
              v: Version,
              b: BaseUrl,
              w: Who,
              Path(node): Path<String>,
              body: JsonBody| { create(k, s, v, b, w, Some(node), body) },
    )
    .patch(move |v: Version, Path(node): Path<String>| missing_uuid(k, v, Some(node)))
    .delete(move |v: Version, Path(node): Path<String>| missing_uuid(k, v, Some(node)))
    .fallback(method_not_allowed)
}

fn node_item(k: &'static VolumeKind) -> MethodRouter<AppState> {
    get(
        move |s: State<AppState>,
              v: Version,
              b: BaseUrl,
              Path((node, id)): Path<(String, String)>,
              q: Params| { get_one(k, s, v, b, Some(node), id, q) },
    )
    .patch(
        move |s: State<AppState>,
              v: Version,
              b: BaseUrl,
              w: Who,
              Path((node, id)): Path<(String, String)>,
              body: JsonBody| { patch(k, s, v, b, w, Some(node), id, body) },
    )
    .delete(
        move |s: State<AppState>, v: Version, w: Who, Path((node, id)): Path<(String, String)>| {
            delete(k, s, v, w, Some(node), id)
        },
    )
    .fallback(method_not_allowed)
}

// ---- request plumbing -----------------------------------------------------------

/// `/v1/volume` and `/v1/nodes/{node}/volume` below 1.32: Ironic's handler 404.
fn require_root(version: Version) -> ApiResult<()> {
    super::version::require(version, VOLUME_MINOR)
}

/// Anything below those below 1.32: Ironic's router aborts with a bare 404.
fn require_sub(version: Version) -> ApiResult<()> {
    if version.at_least(VOLUME_MINOR) {
        Ok(())
    } else {
        Err(ApiError::framework(StatusCode::NOT_FOUND, "").bare())
    }
}

fn parse_item_uuid(k: &VolumeKind, raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::bad_request(format!("Expected UUID for {}: {raw}", k.uuid_param)))
}

// ---- handlers -------------------------------------------------------------------

fn links_doc(base: &BaseUrl, prefix: &str) -> Value {
    json!({
        "links": base.links(&format!("{prefix}/")),
        "connectors": base.links(&format!("{prefix}/connectors")),
        "targets": base.links(&format!("{prefix}/targets")),
    })
}

async fn volume_links(version: Version, base: BaseUrl) -> ApiResult<Json<Value>> {
    require_root(version)?;
    Ok(Json(links_doc(&base, "volume")))
}

/// The node is echoed, not looked up (as Ironic).
async fn node_volume_links(
    version: Version,
    base: BaseUrl,
    Path(node): Path<String>,
) -> ApiResult<Json<Value>> {
    require_root(version)?;
    check_path_node(&node)?;
    Ok(Json(links_doc(&base, &format!("nodes/{node}/volume"))))
}

async fn missing_uuid(k: &VolumeKind, version: Version, node: Option<String>) -> ApiResult<()> {
    require_sub(version)?;
    if let Some(n) = &node {
        check_path_node(n)?;
    }
    Err(ApiError::bad_request(format!(
        "Missing mandatory parameter: {}",
        k.uuid_param
    )))
}

/// `GET …/connectors` and `GET …/targets` (§7.4). Under a node, the path's node
/// is the filter and `next` points at the global collection without `node=`,
/// as Ironic's does. The path's node may be a name (Ironic's api-ref says so;
/// Ironic itself answers 404 for one).
async fn list(
    k: &VolumeKind,
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    path_node: Option<String>,
    q: Params,
) -> ApiResult<Json<Value>> {
    require_sub(version)?;
    if let Some(n) = &path_node {
        check_path_node(n)?;
    }
    if let Some(n) = q.get("node") {
        lookup::check_uuid_or_name("node", n)?;
    }
    let params = k.spec.parse(&q, state.config.api.max_limit)?;
    if NOT_COLUMNS.contains(&params.sort_key.as_str()) {
        return Err(ApiError::bad_request(format!(
            "The sort_key value \"{}\" is an invalid field for sorting",
            params.sort_key
        )));
    }
    let store = state.engine.store().as_ref();
    let node = match path_node.as_deref().or(q.get("node")) {
        Some(ident) => Some(lookup::node(store, ident).await?.uuid().to_string()),
        None => None,
    };
    let filter = ChildFilter {
        node_uuid: node,
        address: None,
    };
    Ok(Json(
        child_page(
            store,
            k.kind.model,
            &k.spec,
            &filter,
            &params,
            &base,
            &|doc| (k.render)(doc, &base),
        )
        .await?,
    ))
}

/// `GET …/{uuid}`: `fields` only (`detail` is an unexpected argument here).
async fn get_one(
    k: &VolumeKind,
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    path_node: Option<String>,
    raw: String,
    q: Params,
) -> ApiResult<Json<Value>> {
    require_sub(version)?;
    if let Some(n) = &path_node {
        check_path_node(n)?;
    }
    let uuid = parse_item_uuid(k, &raw)?;
    q.only(&["fields"])?;
    let fields = q
        .get("fields")
        .map(|f| listing::parse_fields(f, k.spec.fields))
        .transpose()?;
    let doc = k.kind.load(&state, uuid).await?;
    if path_node.is_some() {
        return Err(ApiError::malformed_uri());
    }
    Ok(Json(listing::select(
        (k.render)(&doc, &base),
        fields.as_deref(),
    )))
}

/// `POST …` (§7.5): schema, UUID fields, the node (400 when missing), then the
/// node-scoped refusal, then the aggregate (duplicates → 409).
async fn create(
    k: &VolumeKind,
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    Who(who): Who,
    path_node: Option<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    require_sub(version)?;
    if let Some(n) = &path_node {
        check_path_node(n)?;
    }
    let mut record = resource::check_create_body(&k.kind, &body)?;
    schema::check_uuid_field(&record, "node_uuid")?;
    schema::check_uuid_field(&record, "uuid")?;
    let node_raw = resource::string_of(&record, "node_uuid");
    let node_uuid = Uuid::parse_str(&node_raw).expect("checked");
    if lookup::node_by_uuid(state.engine.store().as_ref(), node_uuid)
        .await?
        .is_none()
    {
        // Ironic's InvalidInput with an empty reason: note the trailing space.
        return Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute node_uuid. Value: '{node_raw}'. "
        )));
    }
    if path_node.is_some() {
        return Err(ApiError::malformed_uri());
    }
    (k.kind.check_record)(&mut record)?;
    let uuid = record
        .get("uuid")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(Uuid::new_v4);
    state
        .engine
        .node(node_uuid, (k.kind.add)(uuid, &record), &who)
        .await?;
    let doc = k.kind.load(&state, uuid).await?;
    let path = format!("{}/{uuid}", k.link_resource);
    Ok(links::created(&base, &path, (k.render)(&doc, &base)))
}

/// `PATCH …/{uuid}` (§7.6).
#[allow(clippy::too_many_arguments)]
async fn patch(
    k: &VolumeKind,
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    Who(who): Who,
    path_node: Option<String>,
    raw: String,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    require_sub(version)?;
    if let Some(n) = &path_node {
        check_path_node(n)?;
    }
    let uuid = parse_item_uuid(k, &raw)?;
    let ops = patch::parse(&body)?;
    let doc = k.kind.load(&state, uuid).await?;
    if path_node.is_some() {
        return Err(ApiError::malformed_uri());
    }
    resource::patch(&state, &k.kind, uuid, &doc, &ops, &who).await?;
    let doc = k.kind.load(&state, uuid).await?;
    Ok(Json((k.render)(&doc, &base)))
}

/// `DELETE …/{uuid}` (§7.7): the aggregate checks the node's state.
async fn delete(
    k: &VolumeKind,
    State(state): State<AppState>,
    version: Version,
    Who(who): Who,
    path_node: Option<String>,
    raw: String,
) -> ApiResult<StatusCode> {
    require_sub(version)?;
    if let Some(n) = &path_node {
        check_path_node(n)?;
    }
    let uuid = parse_item_uuid(k, &raw)?;
    let doc = k.kind.load(&state, uuid).await?;
    if path_node.is_some() {
        return Err(ApiError::malformed_uri());
    }
    resource::remove(&state, &k.kind, uuid, &doc, &who).await?;
    Ok(StatusCode::NO_CONTENT)
}
