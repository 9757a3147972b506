//! `/v1/nodes…` (except the volume and port sub-resources) and `/v1/drivers`.
//!
//! | module | endpoints |
//! |---|---|
//! | [`list`] | `GET /v1/nodes`, `GET /v1/nodes/detail`, `GET /v1/nodes/{node}` |
//! | [`create`] | `POST /v1/nodes` |
//! | [`update`] | `PATCH /v1/nodes/{node}`, `DELETE /v1/nodes/{node}` |
//! | [`states`] | `GET …/states`, `PUT …/states/provision`, `PUT …/states/power`, `PUT`/`DELETE …/maintenance` |
//! | [`management`] | `GET`/`PUT …/management/boot_device`, `GET …/management/boot_device/supported` |
//! | [`validate`] | `GET …/validate`, `GET /v1/nodes/validate?node=` |
//! | [`history`] | `GET …/history`, `GET …/history/{event}` (1.78) |
//! | [`drivers`] | `GET /v1/drivers`, `GET /v1/drivers/{name}` |
//!
//! Each handler checks a request in the order Ironic's controller does, so the
//! first problem a client hears about is the one Ironic would name. Checks that
//! need the node's current state are made once on the read model, for Ironic's
//! wording, and again by the aggregate on the write model, which decides.

pub mod create;
pub mod drivers;
pub mod fields;
pub mod history;
pub mod list;
pub mod management;
pub mod render;
pub mod states;
pub mod update;
pub mod validate;

pub use super::body::JsonBody;
use super::error::{ApiError, ApiResult};
pub use super::listing::Params;
pub use super::lookup::uuid_like;
use super::lookup::{self, NodeDoc};
pub use super::root::method_not_allowed;
use super::version::Version;
use super::{with_slash, AppState};
use axum::routing::{get, put, MethodRouter};
use axum::Router;
use serde_json::{Map, Value};

/// The routes, each also with a trailing slash (Ironic answers both).
pub fn routes() -> Router<AppState> {
    let n = method_not_allowed;
    let table: Vec<(&str, MethodRouter<AppState>)> = vec![
        ("/nodes", get(list::list).post(create::create).fallback(n)),
        ("/nodes/detail", get(list::detail).fallback(n)),
        ("/nodes/validate", get(validate::by_query).fallback(n)),
        (
            "/nodes/{node}",
            get(list::show)
                .patch(update::update)
                .delete(update::delete)
                .fallback(n),
        ),
        ("/nodes/{node}/states", get(states::get_states).fallback(n)),
        (
            "/nodes/{node}/states/provision",
            put(states::provision).fallback(n),
        ),
        ("/nodes/{node}/states/power", put(states::power).fallback(n)),
        (
            "/nodes/{node}/maintenance",
            put(states::set_maintenance)
                .delete(states::unset_maintenance)
                .fallback(n),
        ),
        (
            "/nodes/{node}/management/boot_device",
            get(management::get_boot_device)
                .put(management::set_boot_device)
                .fallback(n),
        ),
        (
            "/nodes/{node}/management/boot_device/supported",
            get(management::supported).fallback(n),
        ),
        ("/nodes/{node}/validate", get(validate::by_path).fallback(n)),
        ("/nodes/{node}/history", get(history::list).fallback(n)),
        (
            "/nodes/{node}/history/{event}",
            get(history::show).fallback(n),
        ),
        ("/drivers", get(drivers::list).fallback(n)),
        ("/drivers/{name}", get(drivers::show).fallback(n)),
    ];
    table.into_iter().fold(Router::new(), |r, (path, methods)| {
        with_slash(r, path, methods)
    })
}

/// The host name ironledger reports as the conductor of every node:
/// `[DEFAULT] host` if configured, else the machine's name.
pub fn host(state: &AppState) -> String {
    state.config.host.clone()
}

/// Finds the node a path names, as Ironic does: an identifier that is neither
/// a UUID nor a valid name is the routing layer's 400; names only exist from
/// 1.5 (before, a name is simply not found); unknown → 404.
pub async fn find(state: &AppState, version: Version, ident: &str) -> ApiResult<NodeDoc> {
    lookup::check_path_node(ident)?;
    if !uuid_like(ident) && !version.at_least(5) {
        return Err(ApiError::not_found(format!(
            "Node {ident} could not be found."
        )));
    }
    lookup::node(state.engine.store().as_ref(), ident).await
}

/// Re-reads a node after a command (the engine guarantees the read models
/// already show it).
pub async fn reread(state: &AppState, uuid: uuid::Uuid) -> ApiResult<NodeDoc> {
    lookup::existing_node(state.engine.store().as_ref(), uuid).await
}

/// The keys of a body whose top-level keys are a handler's arguments (Ironic
/// passes such a body as keyword arguments; anything but an object carries none).
pub fn kwargs(body: &Value, allowed: &[&str]) -> ApiResult<Map<String, Value>> {
    match body {
        Value::Object(m) => {
            super::listing::unexpected(m.keys().map(String::as_str), allowed)?;
            Ok(m.clone())
        }
        _ => Ok(Map::new()),
    }
}
