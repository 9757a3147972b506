//! `GET /v1/nodes`, `GET /v1/nodes/detail` and `GET /v1/nodes/{node}`.
//!
//! Lists follow Ironic's `get_all`/`detail`: argument validation first (in the
//! controller's parameter order), then the microversion gates, then `detail`
//! and `fields`, then limit, sort and marker. Pagination is keyset-like: the
//! marker must name an existing node (else 404) and the page starts after its
//! place in the sort order, whatever the filters. A page holding exactly
//! `limit` nodes gets a `next` link carrying Ironic's query arguments (and, as
//! in Ironic, not the filters).

use super::super::error::{ApiError, ApiResult};
use super::super::links::BaseUrl;
use super::super::listing::{self, compare, Dir};
use super::super::lookup::NodeDoc;
use super::super::version::{needs_version, not_acceptable, Version};
use super::super::AppState;
use super::fields::{self, string_list};
use super::render::{self, View};
use super::{find, Params};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Map, Value};

/// Every provision state of Ironic's state machine (valid `provision_state` filters).
const MACHINE_STATES: &[&str] = &[
    "enroll",
    "verifying",
    "manageable",
    "available",
    "active",
    "deploying",
    "wait call-back",
    "deploy failed",
    "deploy hold",
    "deleting",
    "cleaning",
    "clean wait",
    "clean failed",
    "clean hold",
    "error",
    "inspecting",
    "inspect failed",
    "inspect wait",
    "adopting",
    "adopt failed",
    "rescue",
    "rescue failed",
    "rescue wait",
    "rescuing",
    "unrescue failed",
    "unrescuing",
    "servicing",
    "service wait",
    "service failed",
    "service hold",
];

const FAULTS: &str =
    "('power failure', 'clean failure', 'rescue abort failure', 'service failure')";

/// `GET /v1/nodes/{node}`.
pub async fn show(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    Path(ident): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    params.only(&["fields"])?;
    let selected = params.get("fields").map(string_list);
    let doc = find(&state, version, &ident).await?;
    if let Some(f) = &selected {
        fields::check_requested(f, version)?;
    }
    let view = View::new(&state, version, &base);
    Ok(Json(render::node(&doc, &view, selected.as_deref())))
}

/// `GET /v1/nodes`.
pub async fn list(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    params: Params,
) -> ApiResult<Json<Value>> {
    collection(state, version, base, params, false).await
}

/// `GET /v1/nodes/detail`.
pub async fn detail(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    params: Params,
) -> ApiResult<Json<Value>> {
    collection(state, version, base, params, true).await
}

/// The parameters `get_all` takes, in its signature's order (`detail` takes
/// the same without `fields` and `detail`).
const LIST_ARGS: &[&str] = &[
    "chassis_uuid",
    "instance_uuid",
    "associated",
    "maintenance",
    "retired",
    "provision_state",
    "marker",
    "limit",
    "sort_key",
    "sort_dir",
    "driver",
    "fields",
    "resource_class",
    "fault",
    "conductor_group",
    "detail",
    "conductor",
    "owner",
    "description_contains",
    "lessee",
    "project",
    "shard",
    "sharded",
    "include_children",
    "parent_node",
    "instance_name",
];

/// Parsed, validated filters.
#[derive(Default)]
struct Filters {
    chassis_uuid: Option<String>,
    instance_uuid: Option<String>,
    associated: Option<bool>,
    maintenance: Option<bool>,
    retired: Option<bool>,
    provision_state: Option<String>,
    driver: Option<String>,
    resource_class: Option<String>,
    fault: Option<String>,
    conductor_group: Option<String>,
    conductor: Option<String>,
    owner: Option<String>,
    description_contains: Option<String>,
    lessee: Option<String>,
    project: Option<String>,
}

fn uuid_arg(name: &str, raw: Option<&str>) -> ApiResult<Option<String>> {
    raw.map(|v| listing::uuid_arg(name, v).map(|u| u.to_string()))
        .transpose()
}

fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

async fn collection(
    state: AppState,
    version: Version,
    base: BaseUrl,
    params: Params,
    is_detail: bool,
) -> ApiResult<Json<Value>> {
    let allowed: Vec<&str> = LIST_ARGS
        .iter()
        .copied()
        .filter(|a| !is_detail || !matches!(*a, "fields" | "detail"))
        .collect();
    params.only(&allowed)?;
    let p = |n: &str| params.get(n);

    // Argument validation, in the controller's order.
    let mut f = Filters {
        chassis_uuid: uuid_arg("chassis_uuid", p("chassis_uuid"))?,
        instance_uuid: uuid_arg("instance_uuid", p("instance_uuid"))?,
        associated: params.boolean("associated")?,
        maintenance: params.boolean("maintenance")?,
        retired: params.boolean("retired")?,
        provision_state: p("provision_state").map(String::from),
        ..Filters::default()
    };
    let marker = uuid_arg("marker", p("marker"))?;
    let limit = p("limit")
        .map(|raw| listing::integer_arg("limit", raw))
        .transpose()?;
    let sort_key = p("sort_key").unwrap_or("id").to_string();
    let sort_dir = p("sort_dir").unwrap_or("asc").to_string();
    f.driver = p("driver").map(String::from);
    let requested_fields = p("fields").map(string_list);
    f.resource_class = p("resource_class").map(String::from);
    f.fault = p("fault").map(String::from);
    f.conductor_group = p("conductor_group").map(String::from);
    let detail = params.boolean("detail")?;
    f.conductor = p("conductor").map(String::from);
    f.owner = p("owner").map(String::from);
    f.description_contains = p("description_contains").map(String::from);
    f.lessee = p("lessee").map(String::from);
    f.project = p("project").map(String::from);
    params.boolean("sharded")?;
    params.boolean("include_children")?;

    // Version gates.
    if let Some(fl) = &requested_fields {
        if !version.at_least(8) {
            return Err(not_acceptable());
        }
        fields::check_versions(fl, version)?;
    }
    fields::check_versions(std::slice::from_ref(&sort_key), version)?;
    if let Some(s) = &f.provision_state {
        if !version.at_least(9) {
            return Err(not_acceptable());
        }
        if !MACHINE_STATES.contains(&s.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Provision state \"{s}\" is not valid"
            )));
        }
    }
    let gate = |present: bool, minor: u32| -> ApiResult<()> {
        if present && !version.at_least(minor) {
            Err(needs_version(minor))
        } else {
            Ok(())
        }
    };
    gate(f.driver.is_some(), 16)?;
    gate(f.resource_class.is_some(), 21)?;
    gate(f.fault.is_some(), 42)?;
    if let Some(fault) = &f.fault {
        if !FAULTS.contains(&format!("'{fault}'")) {
            return Err(ApiError::bad_request(format!(
                "Unrecognized fault \"{fault}\" is specified, allowed faults are {FAULTS}"
            )));
        }
    }
    gate(f.conductor_group.is_some(), 46)?;
    gate(f.conductor.is_some(), 49)?;
    gate(f.owner.is_some(), 50)?;
    gate(f.lessee.is_some(), 65)?;
    gate(p("shard").is_some() || p("sharded").is_some(), 82)?;
    if p("instance_name").is_some() && !version.at_least(104) {
        return Err(ApiError::not_acceptable(
            "instance_name is not acceptable in this API version",
        ));
    }
    gate(
        p("include_children").is_some() || p("parent_node").is_some(),
        83,
    )?;

    // detail / fields.
    if detail.is_some() && !version.at_least(43) {
        return Err(ApiError::bad_request(format!(
            "Invalid query parameter ?detail={} received.",
            py_bool(detail.unwrap_or(false))
        )));
    }
    if requested_fields.is_some() && detail == Some(true) {
        return Err(ApiError::bad_request(
            "Can not specify ?detail=True and fields in the same request.",
        ));
    }
    let shown: Option<Vec<String>> = if is_detail || detail == Some(true) {
        None
    } else {
        Some(
            requested_fields
                .clone()
                .unwrap_or_else(|| fields::DEFAULT_LIST.iter().map(|s| s.to_string()).collect()),
        )
    };
    if let Some(fl) = &requested_fields {
        for name in fl {
            if !fields::SELECTABLE.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "Field {name} is not a valid field."
                )));
            }
        }
    }

    // Limit, sort, marker.
    let limit = listing::limit(limit, state.config.api.max_limit)?;
    let desc = listing::sort_dir(Some(&sort_dir))? == Dir::Desc;
    if fields::UNSORTABLE.contains(&sort_key.as_str()) {
        return Err(ApiError::bad_request(format!(
            "The sort_key value {sort_key} is an invalid field for sorting"
        )));
    }
    let sortable = (fields::SELECTABLE.contains(&sort_key.as_str())
        && !fields::NOT_COLUMNS.contains(&sort_key.as_str()))
        || fields::SORT_ONLY.contains(&sort_key.as_str());
    if !sortable {
        return Err(ApiError::bad_request(format!(
            "The sort_key value \"{sort_key}\" is an invalid field for sorting"
        )));
    }

    let store = state.engine.store();
    let mut nodes: Vec<NodeDoc> = store
        .doc_list("nodes")
        .await?
        .into_iter()
        .map(|(_, doc)| NodeDoc::from_doc(doc))
        .collect::<ApiResult<_>>()?;
    let view = View::new(&state, version, &base);
    // Sort on the stored values (before masking and version hiding), then by
    // creation order, both in the requested direction, as Ironic's query does.
    let mut keyed: Vec<(Value, i64, NodeDoc)> = nodes
        .drain(..)
        .map(|d| {
            let key = if sort_key == "id" {
                Value::Null
            } else {
                render::all_fields(&d, &view)
                    .remove(&sort_key)
                    .unwrap_or(Value::Null)
            };
            let order = d.doc["created_position"].as_i64().unwrap_or(0);
            (key, order, d)
        })
        .collect();
    keyed.sort_by(|a, b| {
        let ord = compare(&a.0, &b.0).then_with(|| a.1.cmp(&b.1));
        if desc {
            ord.reverse()
        } else {
            ord
        }
    });
    let start = match &marker {
        None => 0,
        Some(m) => keyed
            .iter()
            .position(|(_, _, d)| &d.uuid().to_string() == m)
            .map(|i| i + 1)
            .ok_or_else(|| ApiError::not_found(format!("Node {m} could not be found.")))?,
    };
    let page: Vec<NodeDoc> = keyed
        .into_iter()
        .skip(start)
        .map(|(_, _, d)| d)
        .filter(|d| matches(d, &f, &view.host))
        .take(limit)
        .collect();

    let items: Vec<Value> = page
        .iter()
        .map(|d| render::node(d, &view, shown.as_deref()))
        .collect();
    let mut out = Map::new();
    out.insert("nodes".into(), Value::Array(items));
    // A lookup by instance is unique: Ironic never offers a next page for it.
    let has_next = f.instance_uuid.is_none() && !page.is_empty() && page.len() == limit;
    if has_next {
        let mut q = format!("sort_key={sort_key}&sort_dir={sort_dir}");
        if f.associated == Some(true) {
            q.push_str("&associated=True");
        }
        if f.maintenance == Some(true) {
            q.push_str("&maintenance=True");
        }
        if f.retired == Some(true) {
            q.push_str("&retired=True");
        }
        if !is_detail {
            if let Some(d) = detail {
                q.push_str(&format!("&detail={}", py_bool(d)));
            }
            if let Some(s) = &shown {
                q.push_str(&format!("&fields={}", s.join(",")));
            }
        }
        let last = page
            .last()
            .map(|d| d.uuid().to_string())
            .unwrap_or_default();
        let path = if is_detail { "nodes/detail" } else { "nodes" };
        out.insert(
            "next".into(),
            json!(format!("{}?{q}&limit={limit}&marker={last}", base.v1(path))),
        );
    }
    Ok(Json(Value::Object(out)))
}

fn eq_opt(field: &Value, want: &str) -> bool {
    field.as_str() == Some(want)
}

/// Whether a node passes every filter (Ironic's DB filters on the node row).
fn matches(d: &NodeDoc, f: &Filters, host: &str) -> bool {
    let n = &d.node;
    let get = |k: &str| n.fields.get(k).cloned().unwrap_or(Value::Null);
    if f.chassis_uuid.is_some() {
        // ironledger has no chassis: no node belongs to one.
        return false;
    }
    if let Some(u) = &f.instance_uuid {
        if n.instance_uuid.as_deref() != Some(u.as_str()) {
            return false;
        }
    }
    if let Some(a) = f.associated {
        if n.instance_uuid.is_some() != a {
            return false;
        }
    }
    if let Some(m) = f.maintenance {
        if n.maintenance != m {
            return false;
        }
    }
    if let Some(r) = f.retired {
        if n.is_retired() != r {
            return false;
        }
    }
    if let Some(s) = &f.provision_state {
        if n.provision_state.map(|p| p.as_str()) != Some(s.as_str()) {
            return false;
        }
    }
    if let Some(drv) = &f.driver {
        if &n.driver != drv {
            return false;
        }
    }
    if let Some(rc) = &f.resource_class {
        if !eq_opt(&get("resource_class"), rc) {
            return false;
        }
    }
    if f.fault.is_some() {
        // ironledger records no faults.
        return false;
    }
    if let Some(g) = &f.conductor_group {
        let mine = get("conductor_group");
        if mine.as_str().unwrap_or("").to_lowercase() != g.to_lowercase() {
            return false;
        }
    }
    if let Some(c) = &f.conductor {
        if c != host {
            return false;
        }
    }
    if let Some(o) = &f.owner {
        if !eq_opt(&get("owner"), o) {
            return false;
        }
    }
    if let Some(l) = &f.lessee {
        if !eq_opt(&get("lessee"), l) {
            return false;
        }
    }
    if let Some(p) = &f.project {
        if !eq_opt(&get("owner"), p) && !eq_opt(&get("lessee"), p) {
            return false;
        }
    }
    if let Some(s) = &f.description_contains {
        if !get("description")
            .as_str()
            .is_some_and(|d| d.contains(s.as_str()))
        {
            return false;
        }
    }
    true
}
