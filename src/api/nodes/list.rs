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
use crate::projections::nodes::{self, NodeFilter};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::value::RawValue;
use serde_json::Value;

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
) -> ApiResult<Json<ListPage>> {
    collection(state, version, base, params, false).await
}

/// `GET /v1/nodes/detail`.
pub async fn detail(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    params: Params,
) -> ApiResult<Json<ListPage>> {
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
) -> ApiResult<Json<ListPage>> {
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

    let store = state.engine.store().as_ref();
    let view = View::new(&state, version, &base);
    let marker_row = match &marker {
        None => None,
        Some(m) => Some(
            nodes::get(store, m)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("Node {m} could not be found.")))?,
        ),
    };
    // Filters no row can pass: ironledger has no chassis, and it is the
    // only conductor (`conductor=` names it or nothing).
    let nothing = f.chassis_uuid.is_some() || f.conductor.as_ref().is_some_and(|c| *c != view.host);
    let filter = NodeFilter {
        instance_uuid: f.instance_uuid.clone(),
        associated: f.associated,
        maintenance: f.maintenance,
        retired: f.retired,
        provision_state: f.provision_state.clone(),
        driver: f.driver.clone(),
        resource_class: f.resource_class.clone(),
        fault: f.fault.clone(),
        conductor_group: f.conductor_group.clone(),
        owner: f.owner.clone(),
        lessee: f.lessee.clone(),
        project: f.project.clone(),
        description_contains: f.description_contains.clone(),
    };
    // The page, and the link to the next one when it is full.
    let answer = |nodes: Vec<Box<RawValue>>, last: Option<String>| -> ListPage {
        // A lookup by instance is unique: Ironic never offers a next page for it.
        let has_next = f.instance_uuid.is_none() && !nodes.is_empty() && nodes.len() == limit;
        let next = has_next.then(|| {
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
            let last = last.unwrap_or_default();
            let path = if is_detail { "nodes/detail" } else { "nodes" };
            format!("{}?{q}&limit={limit}&marker={last}", base.v1(path))
        });
        ListPage { next, nodes }
    };
    // The default list (and any `fields=` within it) is answered from the
    // rows' columns, without reading a single document.
    let summary_only = shown.as_ref().is_some_and(|s| {
        s.iter()
            .all(|f| render::SUMMARY_FIELDS.contains(&f.as_str()))
    });
    let column = nodes::sort_column(&sort_key);
    if let (false, true, Some(column)) = (nothing, summary_only, column) {
        let shown = shown.as_deref().unwrap_or_default();
        let page = nodes::summaries(
            store,
            &filter,
            column,
            desc,
            marker_row.as_ref(),
            limit as u32,
        )
        .await?;
        let last = page.last().map(|s| s.uuid().to_string());
        let items = page
            .iter()
            .map(|s| rendered(render::summary(s, &view, shown)))
            .collect();
        return Ok(Json(answer(items, last)));
    }
    let page: Vec<NodeDoc> = if nothing {
        vec![]
    } else if let Some(column) = column {
        // The common case: filtered, sorted and cut by an index.
        nodes::page(
            store,
            &filter,
            column,
            desc,
            marker_row.as_ref(),
            limit as u32,
        )
        .await?
    } else {
        sorted_in_memory(
            store,
            &filter,
            &sort_key,
            desc,
            marker_row.as_ref(),
            limit,
            &view,
        )
        .await?
    };

    let last = page.last().map(|d| d.uuid().to_string());
    // Each node is rendered, serialized and dropped in turn: the page holds
    // its answer's bytes, not every node's decoded document and rendered
    // tree at once (a `detail=true` page of 1,000 nodes peaked at ~100 MB).
    let items = page
        .into_iter()
        .map(|d| rendered(render::node(&d, &view, shown.as_deref())))
        .collect();
    Ok(Json(answer(items, last)))
}

/// A page of the node list as Ironic answers it: the nodes and, when the
/// page is full, the link to the next one (the order of the keys is that of
/// a sorted JSON object, as every other answer's).
#[derive(Debug, serde::Serialize)]
pub struct ListPage {
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    nodes: Vec<Box<RawValue>>,
}

/// One node of a list, serialized.
fn rendered(node: Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(&node).expect("a JSON value always serializes")
}

/// A page ordered by a sort key that has no column (an interface, a JSON
/// field's text): every node passing the filter is read, page by page, and
/// sorted here, by the value the API shows before masking and version
/// hiding, then by creation order. Such a list costs the nodes that pass the
/// filter (`docs/performance.md` says so); the keys operators sort by have
/// columns.
async fn sorted_in_memory(
    store: &dyn crate::store::LogStore,
    filter: &NodeFilter,
    sort_key: &str,
    desc: bool,
    marker: Option<&NodeDoc>,
    limit: usize,
    view: &View<'_>,
) -> ApiResult<Vec<NodeDoc>> {
    let key_of = |d: &NodeDoc| {
        render::all_fields(d, view)
            .remove(sort_key)
            .unwrap_or(Value::Null)
    };
    let mut keyed: Vec<(Value, i64, NodeDoc)> = nodes::every(store, filter)
        .await?
        .into_iter()
        .map(|d| (key_of(&d), d.ord(), d))
        .collect();
    let order = |a: (&Value, i64), b: (&Value, i64)| {
        let ord = compare(a.0, b.0).then_with(|| a.1.cmp(&b.1));
        if desc {
            ord.reverse()
        } else {
            ord
        }
    };
    keyed.sort_by(|a, b| order((&a.0, a.1), (&b.0, b.1)));
    let after = marker.map(|m| (key_of(m), m.ord()));
    Ok(keyed
        .into_iter()
        .filter(|(k, o, _)| {
            after
                .as_ref()
                .is_none_or(|(mk, mo)| order((k, *o), (mk, *mo)).is_gt())
        })
        .map(|(_, _, d)| d)
        .take(limit)
        .collect())
}
