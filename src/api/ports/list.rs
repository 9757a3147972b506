//! `GET /v1/ports[/detail]` and `GET /v1/nodes/{node}/ports[/detail]`.

use super::*;

pub(super) const LIST_ARGS: &[&str] = &[
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
pub(super) const UNSORTABLE: &[&str] = &["extra", "internal_info", "local_link_connection"];
/// Sort keys ironledger can order by (the columns it has; `id` is creation order).
pub(super) const SORTABLE: &[&str] = &[
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
pub(super) async fn list(
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
pub(super) async fn ports_of_groups(
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
