//! One port: `GET`, `POST /v1/ports`, `PATCH` and `DELETE /v1/ports/{port}`.

use super::*;

/// A port by UUID, or (Ironic's `uuid_or_name`) by a name, which no port has
/// before 1.88: 404.
pub(super) async fn find(state: &AppState, ident: &str, param: &str) -> ApiResult<(Uuid, Value)> {
    check_uuid_or_name(param, ident)?;
    let uuid = Uuid::parse_str(ident).map_err(|_| PORTS.not_found(ident))?;
    Ok((uuid, PORTS.load(state, uuid).await?))
}

pub(super) async fn get_one(
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
pub(super) async fn create(
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
pub(super) async fn patch(
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

pub(super) async fn delete(
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
