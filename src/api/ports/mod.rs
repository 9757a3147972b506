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
//!
//! | file | what |
//! |---|---|
//! | this one | the routes |
//! | `fields` | which fields exist at which version; the request schema |
//! | `render` | a port as answered |
//! | `record` | a port as a child record: Ironic's checks, the add command |
//! | `local_link` | `local_link_connection`'s checks |
//! | `list` | the collections, filters, sorting, pages |
//! | `one` | get, create, patch (and move), delete |

mod fields;
mod list;
mod local_link;
mod one;
mod record;
mod render;

pub use fields::PORT_SCHEMA;
use fields::*;
use list::*;
use one::*;
use record::*;
use render::*;

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
