//! `GET /v1/nodes/{node}/states`, `PUT …/states/provision`, `PUT …/states/power`,
//! `PUT`/`DELETE …/maintenance`.
//!
//! The provision endpoint checks, in Ironic's order: the body's argument types,
//! the node, the verb's minimum version (406), maintenance for deploy/rebuild
//! (400), the state machine (400, or 409 while ironledger is working the node),
//! then the misuse of optional arguments (400). Every accepted request is 202
//! with `Location: …/v1/nodes/{node}/states` and no body; the client polls.

use super::super::error::{ApiError, ApiResult};
use super::super::links::{accepted, BaseUrl};
use super::super::lookup::NodeDoc;
use super::super::pyfmt::{self, truthy};
use super::super::version::{needs_version, not_acceptable, Version};
use super::super::{AppState, Who};
use super::render::{self, View};
use super::{find, host, kwargs, JsonBody, Params};
use crate::domain::node::commands::ProvisionRequest;
use crate::domain::state::{transition, FsmEvent, ProvisionState};
use crate::domain::NodeCommand;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::Json;
use serde_json::{json, Map, Value};

/// One body argument: its name and the JSON Schema of what the handler's checks
/// accept. The handlers take exactly the names of their table (anything else
/// is Ironic's "unexpected" 400) and the OpenAPI document publishes exactly
/// these schemas.
type Arg = (&'static str, fn() -> Value);

/// The arguments of `PUT …/states/provision`.
const PROVISION: [Arg; 8] = [
    (
        "target",
        || json!({"type": "string", "enum": FsmEvent::VERBS}),
    ),
    (
        "configdrive",
        || json!({"type": ["null", "object", "string"], "description": "A URL, base64 text, or {meta_data, network_data, user_data, vendor_data} (1.56)"}),
    ),
    (
        "clean_steps",
        || json!({"type": ["null", "array"], "items": {"type": "object"}}),
    ),
    (
        "deploy_steps",
        || json!({"type": ["null", "array"], "items": {"type": "object"}}),
    ),
    ("rescue_password", || json!({"type": ["string", "null"]})),
    (
        "disable_ramdisk",
        || json!({"type": ["string", "boolean", "null"]}),
    ),
    ("service_steps", || json!({"type": ["null", "array"]})),
    ("runbook", || json!({"type": ["null", "string"]})),
];
pub const PROVISION_ARGS: [&str; 8] = names(&PROVISION);

/// The arguments of `PUT …/states/power`.
const POWER: [Arg; 2] = [
    (
        "target",
        || json!({"type": "string", "enum": crate::domain::state::POWER_TARGETS}),
    ),
    (
        "timeout",
        || json!({"type": ["integer", "null"], "minimum": 1, "description": "Seconds (1.27)"}),
    ),
];
pub const POWER_ARGS: [&str; 2] = names(&POWER);

/// The arguments of `PUT …/maintenance`.
const MAINTENANCE: [Arg; 1] = [("reason", || json!({"type": ["string", "null"]}))];
pub const MAINTENANCE_ARGS: [&str; 1] = names(&MAINTENANCE);

const fn names<const N: usize>(args: &[Arg; N]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = args[i].0;
        i += 1;
    }
    out
}

fn object_schema(args: &[Arg], required: &[&str]) -> Value {
    let props: Map<String, Value> = args.iter().map(|(n, s)| (n.to_string(), s())).collect();
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

/// The provision body as JSON Schema (OpenAPI).
pub fn provision_schema() -> Value {
    object_schema(&PROVISION, &["target"])
}

/// The power body as JSON Schema (OpenAPI).
pub fn power_schema() -> Value {
    object_schema(&POWER, &["target"])
}

/// The maintenance body as JSON Schema (OpenAPI).
pub fn maintenance_schema() -> Value {
    object_schema(&MAINTENANCE, &[])
}

/// `GET /v1/nodes/{node}/states`.
pub async fn get_states(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    Path(ident): Path<String>,
    params: Params,
) -> ApiResult<Json<Value>> {
    params.only(&[])?;
    let doc = find(&state, version, &ident).await?;
    let view = View::new(&state, version, &base);
    Ok(Json(render::states(&doc, &view)))
}

fn states_location(base: &BaseUrl, ident: &str) -> Option<String> {
    Some(base.v1(&format!("nodes/{ident}/states")))
}

/// `Missing mandatory parameter: target` / `Expected string for target: 5`.
fn target_arg(args: &Map<String, Value>) -> ApiResult<String> {
    match args.get("target") {
        None | Some(Value::Null) => {
            Err(ApiError::bad_request("Missing mandatory parameter: target"))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ApiError::bad_request(format!(
            "Expected string for target: {}",
            pyfmt::str_(other)
        ))),
    }
}

/// `args.types(...)`: the Python type names in Ironic's message.
fn types_arg(args: &Map<String, Value>, name: &str, allowed: &[&str]) -> ApiResult<()> {
    let Some(v) = args.get(name) else {
        return Ok(());
    };
    if allowed.iter().any(|t| pyfmt::is_type(v, t)) {
        return Ok(());
    }
    let names: Vec<&str> = allowed
        .iter()
        .map(|t| match *t {
            "null" => "<class 'NoneType'>",
            "object" => "<class 'dict'>",
            "string" => "<class 'str'>",
            "array" => "<class 'list'>",
            other => other,
        })
        .collect();
    Err(ApiError::bad_request(format!(
        "Expected types {} for {name}: {}",
        names.join(", "),
        pyfmt::str_(v)
    )))
}

fn string_arg(args: &Map<String, Value>, name: &str) -> ApiResult<Option<String>> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::bad_request(format!(
            "Expected string for {name}: {}",
            pyfmt::str_(other)
        ))),
    }
}

/// The verbs' minimum versions (Ironic's `MIN_VERB_VERSIONS`).
fn verb_min_version(verb: &str) -> Option<u32> {
    match verb {
        "manage" | "provide" => Some(4),
        "inspect" => Some(6),
        "abort" => Some(13),
        "clean" => Some(15),
        "adopt" => Some(17),
        "rescue" | "unrescue" => Some(38),
        "deploy" | "undeploy" => Some(73),
        _ => None,
    }
}

/// States in which ironledger's engine is working the node: a refused verb
/// there is Ironic's `NodeLocked` (409, "retry later") rather than a 400.
pub(super) fn being_worked(state: ProvisionState) -> bool {
    matches!(state, ProvisionState::Deploying | ProvisionState::Deleting)
}

/// The config drive checks of Ironic's `check_allow_configdrive`.
fn check_configdrive(verb: &str, configdrive: &Value, version: Version) -> ApiResult<()> {
    let allowed: &[&str] = if version.at_least(35) {
        &["active", "rebuild"]
    } else {
        &["active"]
    };
    if !allowed.contains(&verb) {
        return Err(ApiError::bad_request(format!(
            "Adding a config drive is only supported when setting provision state to {}",
            allowed.join(", ")
        )));
    }
    match configdrive {
        Value::Object(m) => {
            const KEYS: &[&str] = &["meta_data", "network_data", "user_data", "vendor_data"];
            let extra: Vec<&str> = m
                .keys()
                .map(String::as_str)
                .filter(|k| !KEYS.contains(k))
                .collect();
            if !extra.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "Invalid configdrive format: {}",
                    pyfmt::additional_properties(&extra)
                )));
            }
            for (k, v) in m {
                let ok: &[&str] = if k == "user_data" {
                    &["object", "array", "string", "null"]
                } else {
                    &["object"]
                };
                pyfmt::check_type(v, ok).map_err(|e| {
                    ApiError::bad_request(format!("Invalid configdrive format: {e}"))
                })?;
            }
            if !version.at_least(56) {
                return Err(ApiError::bad_request(
                    "Providing a JSON object for configdrive is only supported starting with API version 1.56",
                ));
            }
            if m.contains_key("vendor_data") && !version.at_least(59) {
                return Err(ApiError::bad_request(
                    "Providing vendor_data in configdrive is only supported starting with API version 1.59",
                ));
            }
        }
        Value::String(s) => {
            let b64 = |c: char| c.is_ascii_alphanumeric() || "+/=\n\r\t ".contains(c);
            if !s.contains("://") && !s.chars().all(b64) {
                return Err(ApiError::bad_request(
                    "Invalid configdrive format: it is neither a JSON, nor a URL, nor a base64 string",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Ironic's step schema, as far as ironledger checks it (interface and step
/// named; deploy steps also carry args and priority).
fn check_steps(kind: &str, steps: &Value, deploy: bool) -> ApiResult<()> {
    let bad = |m: String| ApiError::bad_request(format!("Invalid {kind}_steps: {m}"));
    for step in steps.as_array().into_iter().flatten() {
        let Value::Object(s) = step else {
            return Err(bad(pyfmt::type_error(step, &["object"])));
        };
        let required: &[&str] = if deploy {
            &["interface", "step", "args", "priority"]
        } else {
            &["interface", "step"]
        };
        for r in required {
            if !s.contains_key(*r) {
                return Err(bad(pyfmt::required(r)));
            }
        }
        if s["step"].as_str().is_none_or(|x| x.is_empty()) {
            return Err(bad(format!(
                "{} is not of type 'string'",
                pyfmt::repr(&s["step"])
            )));
        }
    }
    Ok(())
}

/// `PUT /v1/nodes/{node}/states/provision`.
pub async fn provision(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    who: Who,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let args = kwargs(&body, &PROVISION_ARGS)?;
    let verb = target_arg(&args)?;
    types_arg(&args, "configdrive", &["null", "object", "string"])?;
    types_arg(&args, "clean_steps", &["null", "array"])?;
    types_arg(&args, "deploy_steps", &["null", "array"])?;
    let rescue_password = string_arg(&args, "rescue_password")?;
    let disable_ramdisk = args
        .get("disable_ramdisk")
        .map(|v| pyfmt::strict_bool("disable_ramdisk", v))
        .transpose()
        .map_err(ApiError::bad_request)?
        .flatten();
    types_arg(&args, "service_steps", &["null", "array"])?;
    types_arg(&args, "runbook", &["null", "string"])?;

    let doc = find(&state, version, &ident).await?;
    let node = &doc.node;
    if verb_min_version(&verb).is_some_and(|m| !version.at_least(m)) {
        return Err(not_acceptable());
    }
    if matches!(verb.as_str(), "active" | "rebuild") && node.maintenance {
        return Err(ApiError::bad_request(format!(
            "The provisioning operation can't be performed on node {} because it's in maintenance mode.",
            doc.uuid()
        )));
    }
    let from = node.state();
    // Verbs Ironic has and ironledger does not model can never be taken here,
    // except that `service` is first refused by its version, as in Ironic.
    let actionable = match FsmEvent::from_verb(&verb) {
        Some(ev) => {
            transition(from, ev, node.target_provision_state).is_some()
                && !(ev == FsmEvent::Clean && from == ProvisionState::Deleting)
        }
        None => {
            if verb == "service" && matches!(from, ProvisionState::Active) && !version.at_least(87)
            {
                return Err(not_acceptable());
            }
            false
        }
    };
    if !actionable {
        if being_worked(from) {
            return Err(ApiError::conflict(format!(
                "Node {} is locked by host {}, please retry after the current operation is completed.",
                doc.uuid(),
                host(&state)
            )));
        }
        return Err(crate::domain::DomainError::invalid_state(
            &verb,
            &doc.uuid().to_string(),
            from.as_str(),
        )
        .into());
    }
    let configdrive = args.get("configdrive").filter(|v| truthy(v)).cloned();
    if let Some(cd) = &configdrive {
        check_configdrive(&verb, cd, version)?;
    }
    if args.get("runbook").is_some_and(|v| !v.is_null()) {
        // Runbooks arrived in 1.92, above ironledger's maximum.
        return Err(not_acceptable());
    }
    if disable_ramdisk.is_some() {
        if verb == "clean" {
            if !version.at_least(70) {
                return Err(ApiError::not_acceptable(
                    "disable_ramdisk is not acceptable in this API version",
                ));
            }
        } else {
            return Err(ApiError::bad_request(
                "disable_ramdisk is supported only with manual cleaning or servicing",
            ));
        }
    }
    let clean_steps = args.get("clean_steps").filter(|v| truthy(v)).cloned();
    if clean_steps.is_some() && verb != "clean" {
        return Err(ApiError::bad_request(
            "\"clean_steps\" is only valid when setting target provision state to clean",
        ));
    }
    let deploy_steps = args.get("deploy_steps").filter(|v| truthy(v)).cloned();
    if deploy_steps.is_some() {
        if !version.at_least(69) {
            return Err(needs_version(69));
        }
        if !matches!(verb.as_str(), "active" | "rebuild") {
            return Err(ApiError::bad_request(
                "\"deploy_steps\" is only valid when setting target provision state to active or rebuild",
            ));
        }
    }
    if rescue_password.is_some() && verb != "rescue" {
        return Err(ApiError::bad_request(
            "\"rescue_password\" is only valid when setting target provision state to rescue",
        ));
    }
    if verb == "abort" {
        if from == ProvisionState::InspectWait && !version.at_least(41) {
            return Err(not_acceptable());
        }
        if from == ProvisionState::WaitCallBack && !version.at_least(110) {
            return Err(not_acceptable());
        }
    }
    if args.get("service_steps").is_some_and(truthy) {
        return Err(ApiError::bad_request(
            "\"service_steps\" is only valid when setting target provision state to service",
        ));
    }
    if let Some(steps) = &deploy_steps {
        check_steps("deploy", steps, true)?;
    }
    if verb == "clean" {
        match &clean_steps {
            None => {
                return Err(ApiError::bad_request(
                    "\"clean_steps\" is required when setting target provision state to clean",
                ))
            }
            Some(steps) => check_steps("clean", steps, false)?,
        }
    }

    let req = ProvisionRequest {
        verb: verb.clone(),
        configdrive,
        clean_steps,
        deploy_steps,
    };
    state
        .engine
        .node(doc.uuid(), NodeCommand::Provision(req), &who.0)
        .await?;
    Ok(accepted(states_location(&base, &ident)))
}

/// `PUT /v1/nodes/{node}/states/power`.
pub async fn power(
    State(state): State<AppState>,
    version: Version,
    base: BaseUrl,
    who: Who,
    Path(ident): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let args = kwargs(&body, &POWER_ARGS)?;
    let target = target_arg(&args)?;
    let timeout = match args.get("timeout") {
        None | Some(Value::Null) => None,
        Some(v) => Some(pyfmt::python_int(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Expected an integer for timeout: {}",
                pyfmt::str_(v)
            ))
        })?),
    };
    let doc: NodeDoc = find(&state, version, &ident).await?;
    let soft = matches!(target.as_str(), "soft rebooting" | "soft power off");
    if (soft || timeout.is_some_and(|t| t != 0)) && !version.at_least(27) {
        return Err(not_acceptable());
    }
    if timeout.is_some_and(|t| t < 1) {
        return Err(ApiError::bad_request("timeout has to be positive integer"));
    }
    let shown = |s: &Option<String>| s.clone().unwrap_or_else(|| "None".into());
    if crate::domain::state::power_target_result(&target).is_none() {
        return Err(crate::domain::DomainError::invalid_state(
            &target,
            &ident,
            &shown(&doc.node.power_state),
        )
        .into());
    }
    let ps = doc.node.state();
    if matches!(ps, ProvisionState::Cleaning | ProvisionState::CleanWait) {
        return Err(crate::domain::DomainError::invalid_state(&target, &ident, ps.as_str()).into());
    }
    if doc.node.power_request.is_some() {
        // Ironic holds the node's lock for the whole power change.
        return Err(ApiError::conflict(format!(
            "Node {} is locked by host {}, please retry after the current operation is completed.",
            doc.uuid(),
            host(&state)
        )));
    }
    let timeout = timeout.map(|t| t as u64);
    state
        .engine
        .node(
            doc.uuid(),
            NodeCommand::RequestPower {
                target,
                timeout,
                at: Some(crate::effects::now_iso()),
            },
            &who.0,
        )
        .await?;
    Ok(accepted(states_location(&base, &ident)))
}

/// `PUT /v1/nodes/{node}/maintenance` (`{"reason": …}`, body optional): 202.
pub async fn set_maintenance(
    State(state): State<AppState>,
    version: Version,
    who: Who,
    Path(ident): Path<String>,
    params: Params,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    // Ironic takes `reason` from the body or the query string.
    let mut args = kwargs(&body, &MAINTENANCE_ARGS)?;
    params.only(&["reason"])?;
    if let Some(r) = params.get("reason") {
        args.entry("reason").or_insert(Value::String(r.to_string()));
    }
    let reason = string_arg(&args, "reason")?;
    let doc = find(&state, version, &ident).await?;
    let mut meta = who.0;
    if meta.reason.is_none() {
        meta.reason = reason.clone();
    }
    state
        .engine
        .node(doc.uuid(), NodeCommand::SetMaintenance { reason }, &meta)
        .await?;
    Ok(accepted(None))
}

/// `DELETE /v1/nodes/{node}/maintenance`: 202.
pub async fn unset_maintenance(
    State(state): State<AppState>,
    version: Version,
    who: Who,
    Path(ident): Path<String>,
) -> ApiResult<Response> {
    let doc = find(&state, version, &ident).await?;
    state
        .engine
        .node(doc.uuid(), NodeCommand::UnsetMaintenance, &who.0)
        .await?;
    Ok(accepted(None))
}
