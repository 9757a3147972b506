//! The OpenAPI 3.0 document of the API, served at `/v1/openapi.json`.
//!
//! Built from one table ([`OPERATIONS`]) rather than from annotations on the
//! handlers: the table is short, and `tests/openapi.rs` keeps it true by
//! sending every documented operation to a running server (each must reach a
//! handler, not the router's 404/405) and by checking that the routes the
//! router serves are all documented.

use super::version::{MAX_MINOR, MIN_MINOR};
use axum::Json;
use serde_json::{json, Map, Value};

/// One documented operation.
pub struct Operation {
    pub method: &'static str,
    /// OpenAPI path template (`{node}` for path parameters).
    pub path: &'static str,
    pub summary: &'static str,
    /// The microversion that introduced it.
    pub since: u32,
    /// The success status.
    pub status: u16,
    /// Error statuses worth knowing.
    pub errors: &'static [u16],
    /// Whether it takes a JSON body.
    pub body: bool,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    since: u32,
    status: u16,
    errors: &'static [u16],
    body: bool,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        since,
        status,
        errors,
        body,
    }
}

const E_READ: &[u16] = &[400, 404, 406];
const E_WRITE: &[u16] = &[400, 404, 406, 409, 413];

/// Every operation the API serves.
pub const OPERATIONS: &[Operation] = &[
    op("get", "/", "API root: versions", 1, 200, &[406], false),
    op(
        "get",
        "/v1",
        "The v1 document: resources at the negotiated version",
        1,
        200,
        &[405, 406],
        false,
    ),
    op(
        "get",
        "/v1/openapi.json",
        "This document",
        1,
        200,
        &[],
        false,
    ),
    op(
        "get",
        "/v1/nodes",
        "List nodes (detail, fields, limit/marker, sort, filters)",
        1,
        200,
        E_READ,
        false,
    ),
    op("post", "/v1/nodes", "Enroll a node", 1, 201, E_WRITE, true),
    op(
        "get",
        "/v1/nodes/detail",
        "List nodes with every field",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/nodes/validate",
        "Validate a node's interfaces (?node=)",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/nodes/{node}",
        "Show a node (UUID or name)",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "patch",
        "/v1/nodes/{node}",
        "Update a node with a JSON patch",
        1,
        200,
        E_WRITE,
        true,
    ),
    op(
        "delete",
        "/v1/nodes/{node}",
        "Delete a node",
        1,
        204,
        &[400, 404, 409],
        false,
    ),
    op(
        "get",
        "/v1/nodes/{node}/states",
        "A node's power and provision states",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "put",
        "/v1/nodes/{node}/states/provision",
        "Provision verb (manage, provide, deploy, undeploy, …)",
        1,
        202,
        E_WRITE,
        true,
    ),
    op(
        "put",
        "/v1/nodes/{node}/states/power",
        "Power on, off, reboot",
        1,
        202,
        E_WRITE,
        true,
    ),
    op(
        "put",
        "/v1/nodes/{node}/maintenance",
        "Set maintenance mode",
        1,
        202,
        E_WRITE,
        true,
    ),
    op(
        "delete",
        "/v1/nodes/{node}/maintenance",
        "Unset maintenance mode",
        1,
        202,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/nodes/{node}/validate",
        "Validate a node's interfaces",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/nodes/{node}/history",
        "A node's history (from the event log)",
        78,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/nodes/{node}/history/{event}",
        "One history entry",
        78,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/nodes/{node}/ports",
        "List a node's ports",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/nodes/{node}/ports/detail",
        "List a node's ports with every field",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/nodes/{node}/volume",
        "A node's volume resources (links)",
        32,
        200,
        &[404],
        false,
    ),
    op(
        "get",
        "/v1/nodes/{node}/volume/connectors",
        "List a node's volume connectors",
        32,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/nodes/{node}/volume/targets",
        "List a node's volume targets (secrets masked)",
        32,
        200,
        E_READ,
        false,
    ),
    op("get", "/v1/ports", "List ports", 1, 200, E_READ, false),
    op("post", "/v1/ports", "Create a port", 1, 201, E_WRITE, true),
    op(
        "get",
        "/v1/ports/detail",
        "List ports with every field",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/ports/{port}",
        "Show a port",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "patch",
        "/v1/ports/{port}",
        "Update a port",
        1,
        200,
        E_WRITE,
        true,
    ),
    op(
        "delete",
        "/v1/ports/{port}",
        "Delete a port",
        1,
        204,
        &[400, 404, 409],
        false,
    ),
    op(
        "get",
        "/v1/volume",
        "Volume resources (links)",
        32,
        200,
        &[404],
        false,
    ),
    op(
        "get",
        "/v1/volume/connectors",
        "List volume connectors",
        32,
        200,
        E_READ,
        false,
    ),
    op(
        "post",
        "/v1/volume/connectors",
        "Create a volume connector",
        32,
        201,
        E_WRITE,
        true,
    ),
    op(
        "get",
        "/v1/volume/connectors/{connector}",
        "Show a volume connector",
        32,
        200,
        E_READ,
        false,
    ),
    op(
        "patch",
        "/v1/volume/connectors/{connector}",
        "Update a volume connector (node powered off)",
        32,
        200,
        E_WRITE,
        true,
    ),
    op(
        "delete",
        "/v1/volume/connectors/{connector}",
        "Delete a volume connector",
        32,
        204,
        &[400, 404, 409],
        false,
    ),
    op(
        "get",
        "/v1/volume/targets",
        "List volume targets (secrets masked)",
        32,
        200,
        E_READ,
        false,
    ),
    op(
        "post",
        "/v1/volume/targets",
        "Create a volume target",
        32,
        201,
        E_WRITE,
        true,
    ),
    op(
        "get",
        "/v1/volume/targets/{target}",
        "Show a volume target (secrets masked)",
        32,
        200,
        E_READ,
        false,
    ),
    op(
        "patch",
        "/v1/volume/targets/{target}",
        "Update a volume target (node powered off)",
        32,
        200,
        E_WRITE,
        true,
    ),
    op(
        "delete",
        "/v1/volume/targets/{target}",
        "Delete a volume target",
        32,
        204,
        &[400, 404, 409],
        false,
    ),
    op(
        "get",
        "/v1/drivers",
        "List hardware types",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/v1/drivers/{driver}",
        "Show a hardware type",
        1,
        200,
        E_READ,
        false,
    ),
    op(
        "get",
        "/health",
        "Liveness, store and projection checkpoints (no auth)",
        1,
        200,
        &[503],
        false,
    ),
    op(
        "get",
        "/boot/{path}",
        "Files of the HTTP boot root (iPXE scripts; no auth)",
        1,
        200,
        &[404],
        false,
    ),
];

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error_message"],
        "properties": {"error_message": {
            "type": "string",
            "description": "JSON text: {\"faultstring\", \"faultcode\", \"debuginfo\"} (or {\"code\", \"title\", \"description\"} for framework errors)"
        }}
    })
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let params: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .chain(std::iter::once(json!({
                "name": "X-OpenStack-Ironic-API-Version", "in": "header", "required": false,
                "schema": {"type": "string"},
                "description": format!("Microversion 1.{MIN_MINOR}…1.{MAX_MINOR} or `latest`; default 1.{MIN_MINOR}")
            })))
            .collect();
        let mut responses = Map::new();
        responses.insert(
            o.status.to_string(),
            if o.status == 204 || o.status == 202 {
                json!({"description": "Done (no body)"})
            } else {
                json!({"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}})
            },
        );
        for e in o.errors {
            responses.insert(
                e.to_string(),
                json!({"description": "Error in Ironic's envelope",
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
            );
        }
        let mut operation = json!({
            "summary": o.summary,
            "description": format!("Available from microversion 1.{}.", o.since),
            "parameters": params,
            "responses": responses,
        });
        if o.body {
            let content = if o.method == "patch" {
                json!({"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/PatchOp"}}}})
            } else {
                json!({"application/json": {"schema": {"type": "object"}}})
            };
            operation["requestBody"] = json!({"required": true, "content": content});
        }
        paths
            .entry(o.path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(o.method.to_string(), operation);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "ironledger: OpenStack Ironic v1 API (boot from volume)",
            "version": format!("1.{MAX_MINOR}"),
            "description": "The subset of Ironic's v1 API that the boot-from-volume workflow uses, answered as Ironic answers it. See docs/api.md for differences."
        },
        "paths": paths,
        "components": {"schemas": {
            "Error": error_schema(),
            "PatchOp": {
                "type": "object",
                "required": ["op", "path"],
                "properties": {
                    "op": {"type": "string", "enum": ["add", "replace", "remove"]},
                    "path": {"type": "string", "pattern": "^(/[\\w-]+)+$"},
                    "value": {}
                }
            }
        }}
    })
}

pub async fn serve() -> Json<Value> {
    Json(document())
}
