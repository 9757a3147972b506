//! The OpenAPI 3.1 document of the API, served at `/v1/openapi.json`.
//!
//! Built from one table ([`OPERATIONS`]) rather than from annotations on the
//! handlers: the table is short, and `tests/api/openapi.rs` keeps it true by
//! sending every documented operation to a running server (each must reach a
//! handler, not the router's 404/405) and by checking that the routes the
//! router serves are all documented.
//!
//! Request bodies are not written here: each is generated from the definition
//! its handler validates with ([`Schema::json_schema`] for the resources,
//! [`states`]' argument lists for the state changes), so the document cannot
//! say one thing while the API checks another. OpenAPI 3.1 is used because its
//! schemas *are* JSON Schema, the language Ironic's own body schemas are
//! written in (`type: ["string", "null"]` needs no translation). On top of a
//! validator's schema the document adds only [`REFINEMENTS`] keywords, for the
//! checks the handlers make after the schema (a `uuid` must look like one, the
//! driver must be enabled, …): a request the document allows is then one the
//! API can accept, which is what lets a schema-driven generator create nodes.
//! `tests/api/openapi.rs` checks both halves: without the refinements, every body
//! schema is exactly its validator's; and it runs schemathesis from the
//! document against a running server.

use super::nodes::create::{NODE_PATCH_SCHEMA, NODE_SCHEMA};
use super::nodes::states;
use super::ports::PORT_SCHEMA;
use super::schema::Schema;
use super::version::{MAX_MINOR, MIN_MINOR};
use super::volume::kinds::{CONNECTOR_SCHEMA, TARGET_SCHEMA};
use super::AppState;
use crate::config::{AuthStrategy, Config};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

/// The keywords the document may add to a validator's property schema: they
/// describe checks made after the schema, never the schema itself.
pub const REFINEMENTS: &[&str] = &["format", "enum", "pattern", "description", "minimum"];

/// A resource whose body is checked by a [`Schema`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Node,
    Port,
    Connector,
    Target,
}

impl Resource {
    /// The name of its body schema under `#/components/schemas`.
    pub fn component(self) -> &'static str {
        match self {
            Resource::Node => "Node",
            Resource::Port => "Port",
            Resource::Connector => "VolumeConnector",
            Resource::Target => "VolumeTarget",
        }
    }

    /// The schema `POST` validates its body with.
    pub fn schema(self) -> &'static Schema {
        match self {
            Resource::Node => &NODE_SCHEMA,
            Resource::Port => &PORT_SCHEMA,
            Resource::Connector => &CONNECTOR_SCHEMA,
            Resource::Target => &TARGET_SCHEMA,
        }
    }

    /// The schema the resource must satisfy after a `PATCH` is applied (the
    /// node's also admits the `protected` fields).
    pub fn patched_schema(self) -> &'static Schema {
        match self {
            Resource::Node => &NODE_PATCH_SCHEMA,
            other => other.schema(),
        }
    }
}

/// What an operation takes as its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    /// A new resource (`POST`).
    Create(Resource),
    /// A JSON patch of the resource (`PATCH`).
    Patch(Resource),
    /// `PUT …/states/provision`.
    Provision,
    /// `PUT …/states/power`.
    Power,
    /// `PUT …/maintenance` (optional).
    Maintenance,
    /// `PUT …/management/boot_device`.
    BootDevice,
}

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
    /// The error statuses it answers (401 is added when authentication is on).
    pub errors: &'static [u16],
    pub body: Body,
}

impl Operation {
    /// Whether it is part of the versioned API (version headers, 406).
    pub fn versioned(&self) -> bool {
        !matches!(self.path, "/health" | "/boot/{path}")
    }
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    since: u32,
    status: u16,
    errors: &'static [u16],
    body: Body,
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

/// A read of one resource, or of a node's sub-collection: a bad query (400),
/// an unknown resource or a version below the endpoint's (404), 406.
const E_READ: &[u16] = &[400, 404, 406];
/// A list at the top level: a bad query, or a version below the endpoint's.
const E_LIST: &[u16] = &[400, 404, 406];
/// A write: also a conflict (409) and an oversized body (413).
const E_WRITE: &[u16] = &[400, 404, 406, 409, 413];
/// A delete: no body, but conflicts.
const E_DELETE: &[u16] = &[400, 404, 406, 409];
/// A call to a node's BMC (`redfish`/`ipmitool` management): also its
/// lock (409) and the BMC's failure (500, Ironic's driver error).
const E_BMC_READ: &[u16] = &[400, 404, 406, 409, 500];
const E_BMC_WRITE: &[u16] = &[400, 404, 406, 409, 413, 500];

use Body::{BootDevice, Create, Maintenance, Patch, Power, Provision};
use Resource::{Connector, Node, Port, Target};
const NO: Body = Body::None;

/// Every operation the API serves.
#[rustfmt::skip]
pub const OPERATIONS: &[Operation] = &[
    op("get", "/", "API root: versions", 1, 200, &[406], NO),
    op("get", "/v1", "The v1 document: resources at the negotiated version", 1, 200, &[406], NO),
    op("get", "/v1/openapi.json", "This document", 1, 200, &[406], NO),
    op("get", "/v1/nodes", "List nodes (detail, fields, limit/marker, sort, filters)", 1, 200, E_LIST, NO),
    op("post", "/v1/nodes", "Enroll a node", 1, 201, E_WRITE, Create(Node)),
    op("get", "/v1/nodes/detail", "List nodes with every field", 1, 200, E_LIST, NO),
    op("get", "/v1/nodes/validate", "Validate a node's interfaces (?node=)", 1, 200, E_READ, NO),
    op("get", "/v1/nodes/{node}", "Show a node (UUID or name)", 1, 200, E_READ, NO),
    op("patch", "/v1/nodes/{node}", "Update a node with a JSON patch", 1, 200, E_WRITE, Patch(Node)),
    op("delete", "/v1/nodes/{node}", "Delete a node", 1, 204, E_DELETE, NO),
    op("get", "/v1/nodes/{node}/states", "A node's power and provision states", 1, 200, E_READ, NO),
    op("put", "/v1/nodes/{node}/states/provision", "Provision verb (manage, provide, deploy, undeploy, …)", 1, 202, E_WRITE, Provision),
    op("put", "/v1/nodes/{node}/states/power", "Power on, off, reboot", 1, 202, E_WRITE, Power),
    op("put", "/v1/nodes/{node}/maintenance", "Set maintenance mode", 1, 202, E_WRITE, Maintenance),
    op("delete", "/v1/nodes/{node}/maintenance", "Unset maintenance mode", 1, 202, E_DELETE, NO),
    op("get", "/v1/nodes/{node}/validate", "Validate a node's interfaces", 1, 200, E_READ, NO),
    op("get", "/v1/nodes/{node}/management/boot_device", "The boot device (the BMC's, or as last set)", 1, 200, E_BMC_READ, NO),
    op("put", "/v1/nodes/{node}/management/boot_device", "Set the boot device (through the BMC)", 1, 204, E_BMC_WRITE, BootDevice),
    op("get", "/v1/nodes/{node}/management/boot_device/supported", "The boot devices the management interface takes", 1, 200, E_READ, NO),
    op("get", "/v1/nodes/{node}/history", "A node's history (from the event log)", 78, 200, E_READ, NO),
    op("get", "/v1/nodes/{node}/history/{event}", "One history entry", 78, 200, E_READ, NO),
    op("get", "/v1/nodes/{node}/ports", "List a node's ports", 1, 200, E_READ, NO),
    op("get", "/v1/nodes/{node}/ports/detail", "List a node's ports with every field", 1, 200, E_READ, NO),
    op("get", "/v1/nodes/{node}/volume", "A node's volume resources (links)", 32, 200, E_READ, NO),
    op("get", "/v1/nodes/{node}/volume/connectors", "List a node's volume connectors", 32, 200, E_READ, NO),
    op("get", "/v1/nodes/{node}/volume/targets", "List a node's volume targets (secrets masked)", 32, 200, E_READ, NO),
    op("get", "/v1/ports", "List ports", 1, 200, E_LIST, NO),
    op("post", "/v1/ports", "Create a port", 1, 201, E_WRITE, Create(Port)),
    op("get", "/v1/ports/detail", "List ports with every field", 1, 200, E_LIST, NO),
    op("get", "/v1/ports/{port}", "Show a port", 1, 200, E_READ, NO),
    op("patch", "/v1/ports/{port}", "Update a port", 1, 200, E_WRITE, Patch(Port)),
    op("delete", "/v1/ports/{port}", "Delete a port", 1, 204, E_DELETE, NO),
    op("get", "/v1/volume", "Volume resources (links)", 32, 200, &[404, 406], NO),
    op("get", "/v1/volume/connectors", "List volume connectors", 32, 200, E_LIST, NO),
    op("post", "/v1/volume/connectors", "Create a volume connector", 32, 201, E_WRITE, Create(Connector)),
    op("get", "/v1/volume/connectors/{connector}", "Show a volume connector", 32, 200, E_READ, NO),
    op("patch", "/v1/volume/connectors/{connector}", "Update a volume connector (node powered off)", 32, 200, E_WRITE, Patch(Connector)),
    op("delete", "/v1/volume/connectors/{connector}", "Delete a volume connector", 32, 204, E_DELETE, NO),
    op("get", "/v1/volume/targets", "List volume targets (secrets masked)", 32, 200, E_LIST, NO),
    op("post", "/v1/volume/targets", "Create a volume target", 32, 201, E_WRITE, Create(Target)),
    op("get", "/v1/volume/targets/{target}", "Show a volume target (secrets masked)", 32, 200, E_READ, NO),
    op("patch", "/v1/volume/targets/{target}", "Update a volume target (node powered off)", 32, 200, E_WRITE, Patch(Target)),
    op("delete", "/v1/volume/targets/{target}", "Delete a volume target", 32, 204, E_DELETE, NO),
    op("get", "/v1/drivers", "List hardware types", 1, 200, &[400, 406], NO),
    op("get", "/v1/drivers/{driver}", "Show a hardware type", 1, 200, E_READ, NO),
    op("get", "/health", "Liveness, store and projection checkpoints (no auth)", 1, 200, &[503], NO),
    op("get", "/boot/{path}", "Files of the HTTP boot root (iPXE scripts; no auth)", 1, 200, &[404], NO),
    // ironledger's own, outside Ironic's paths, behind the same authentication.
    op("get", "/metrics", "Prometheus metrics (text format 0.0.4)", 1, 200, &[406], NO),
    op("get", "/feed", "Every committed event in feed order, a page at a time (after, limit, node)", 1, 200, &[400, 404, 406], NO),
    op("get", "/feed/stream", "Every committed event as Server-Sent Events, resuming after Last-Event-ID", 1, 200, &[400, 404, 406], NO),
    op("get", "/ui/", "The nodes, linked to their timeline pages (HTML)", 1, 200, &[400, 404, 406], NO),
    op("get", "/ui/nodes/{node}", "A node's whole history as a timeline (HTML)", 1, 200, &[404, 406], NO),
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

// The values `strict_bool` reads (any case, trimmed), as the document lists them.
use crate::domain::oslo::BOOL_WORDS;

fn boolish() -> Value {
    let mut values = vec![json!(true), json!(false), Value::Null];
    values.extend(BOOL_WORDS.iter().map(|w| json!(w)));
    json!({"enum": values})
}

fn uuid_format() -> Value {
    json!({"format": "uuid"})
}

fn logical_name() -> Value {
    json!({"pattern": super::lookup::LOGICAL_NAME_PATTERN})
}

/// What the handlers check after the schema, per property of a resource's body
/// (see [`REFINEMENTS`]); a property the validator does not have is a bug that
/// `tests/api/openapi.rs` catches.
pub fn refinements(resource: Resource, config: &Config) -> Vec<(String, Value)> {
    let none_of = |why: &str| json!({"enum": [null], "description": why});
    match resource {
        Resource::Node => {
            let catalog = &config.catalog;
            let mut out = named(vec![
                ("driver", json!({"enum": catalog.hardware_types})),
                ("uuid", uuid_format()),
                ("instance_uuid", uuid_format()),
                ("name", logical_name()),
                ("chassis_uuid", none_of("ironledger has no chassis")),
                (
                    "boot_mode",
                    none_of("ironledger does not support setting it"),
                ),
                (
                    "secure_boot",
                    none_of("ironledger does not support setting it"),
                ),
                (
                    "console_enabled",
                    json!({"enum": [false, null, "false", "0", "no", "off", "f", "n"],
                           "description": "ironledger has no console: only false"}),
                ),
            ]);
            for name in [
                "automated_clean",
                "disable_power_off",
                "maintenance",
                "retired",
                "protected",
            ] {
                out.push((name.to_string(), boolish()));
            }
            for kind in crate::domain::hardware::INTERFACE_KINDS {
                let Some(enabled) = catalog.interfaces.get(kind) else {
                    continue;
                };
                let mut values: Vec<Value> = enabled.enabled.iter().map(|e| json!(e)).collect();
                values.push(Value::Null);
                out.push((format!("{kind}_interface"), json!({"enum": values})));
            }
            out
        }
        Resource::Port => named(vec![
            (
                "address",
                json!({"pattern": "^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$", "description": "A MAC address"}),
            ),
            ("node_uuid", uuid_format()),
            ("node_ident", logical_name()),
            ("uuid", uuid_format()),
            ("pxe_enabled", boolish()),
            ("is_smartnic", boolish()),
            (
                "local_link_connection",
                json!({"description": "Where the port is cabled, text values only: switch_id (a MAC or a 16-hex-digit OpenFlow datapath ID) and port_id (+ switch_info); or hostname and port_id (a Smart NIC, which is_smartnic requires); or network_type unmanaged alone; or {}"}),
            ),
            (
                "physical_network",
                json!({"description": "The physical network the port is on; null, or a non-empty name"}),
            ),
        ]),
        Resource::Connector => named(vec![
            ("node_uuid", uuid_format()),
            ("uuid", uuid_format()),
            (
                "type",
                json!({"description": "Ironic's connector types: iqn, ip, mac, wwnn, wwpn, port, portgroup (the API takes any string; a deploy uses iqn, ip, wwnn and wwpn)"}),
            ),
        ]),
        Resource::Target => named(vec![
            ("node_uuid", uuid_format()),
            ("uuid", uuid_format()),
            (
                "volume_type",
                json!({"description": "iscsi, fibre_channel, …: the storage protocol"}),
            ),
        ]),
    }
}

fn named(pairs: Vec<(&str, Value)>) -> Vec<(String, Value)> {
    pairs.into_iter().map(|(n, v)| (n.to_string(), v)).collect()
}

/// A resource's body schema as published: its validator's, refined.
pub fn body_schema(resource: Resource, schema: &Schema, config: &Config) -> Value {
    let mut s = schema.json_schema();
    let props = s["properties"].as_object_mut().expect("properties");
    for (name, extra) in refinements(resource, config) {
        // The patched node's `protected` is not in the POST schema.
        let Some(Value::Object(p)) = props.get_mut(&name) else {
            continue;
        };
        for (k, v) in extra.as_object().expect("keywords") {
            p.insert(k.clone(), v.clone());
        }
    }
    s
}

/// A path parameter's schema.
fn path_param(name: &str, config: &Config) -> Value {
    let schema = match name {
        "node" => {
            json!({"type": "string", "pattern": super::lookup::LOGICAL_NAME_PATTERN, "description": "UUID or logical name"})
        }
        "driver" => json!({"type": "string", "enum": config.catalog.hardware_types}),
        "path" => json!({"type": "string"}),
        _ => json!({"type": "string", "format": "uuid"}),
    };
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

fn query(name: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema})
}

/// The query parameters of a list (`listing::ListParams`).
fn list_params(path: &str) -> Vec<Value> {
    let lists = [
        "/v1/nodes",
        "/v1/nodes/detail",
        "/v1/ports",
        "/v1/ports/detail",
        "/v1/volume/connectors",
        "/v1/volume/targets",
        "/v1/nodes/{node}/ports",
        "/v1/nodes/{node}/ports/detail",
        "/v1/nodes/{node}/volume/connectors",
        "/v1/nodes/{node}/volume/targets",
    ];
    if !lists.contains(&path) {
        return Vec::new();
    }
    let mut out = vec![
        query("limit", json!({"type": "integer", "minimum": 0})),
        query("marker", json!({"type": "string", "format": "uuid"})),
        query("sort_key", json!({"type": "string"})),
        query(
            "sort_dir",
            json!({"type": "string", "enum": ["asc", "desc"]}),
        ),
    ];
    if !path.ends_with("/detail") {
        out.push(query("fields", json!({"type": "string"})));
    }
    out
}

/// Every microversion the API answers, and `latest`.
fn versions() -> Vec<Value> {
    (MIN_MINOR..=MAX_MINOR)
        .map(|m| json!(format!("1.{m}")))
        .chain(std::iter::once(json!("latest")))
        .collect()
}

fn request_body(body: Body) -> Option<Value> {
    let (schema, required) = match body {
        Body::None => return None,
        Body::Create(r) => (
            json!({"$ref": format!("#/components/schemas/{}", r.component())}),
            true,
        ),
        Body::Patch(_) => (json!({"$ref": "#/components/schemas/JsonPatch"}), true),
        Body::Provision => (states::provision_schema(), true),
        Body::Power => (states::power_schema(), true),
        Body::BootDevice => (super::nodes::management::boot_device_schema(), true),
        // An empty body is `{}` (no reason).
        Body::Maintenance => (states::maintenance_schema(), false),
    };
    Some(json!({"required": required, "content": {"application/json": {"schema": schema}}}))
}

fn description(o: &Operation) -> String {
    let mut d = format!("Available from microversion 1.{}.", o.since);
    if let Body::Patch(r) = o.body {
        d.push_str(&format!(
            " The patched {} must satisfy `#/components/schemas/{}Patched`.",
            r.component(),
            r.component()
        ));
    }
    d
}

/// An operation's `operationId`: its method and path (`get_v1_nodes_node`).
pub fn operation_id(o: &Operation) -> String {
    let path: String = o
        .path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let path: Vec<&str> = path.split('_').filter(|s| !s.is_empty()).collect();
    format!("{}_{}", o.method, path.join("_"))
}

/// The path parameter a created resource's `uuid` fills.
fn created_param(r: Resource) -> &'static str {
    match r {
        Resource::Node => "node",
        Resource::Port => "port",
        Resource::Connector => "connector",
        Resource::Target => "target",
    }
}

/// OpenAPI links from a create to every operation on the created resource, so
/// a client (or a generator) knows the `uuid` answered is what those take.
fn links(o: &Operation) -> Option<Value> {
    let Body::Create(r) = o.body else {
        return None;
    };
    let param = created_param(r);
    let hole = format!("{{{param}}}");
    let links: Map<String, Value> = OPERATIONS
        .iter()
        .filter(|t| t.path.contains(&hole) && t.path.matches('{').count() == 1)
        .map(|t| {
            (
                operation_id(t),
                json!({"operationId": operation_id(t), "parameters": {param: "$response.body#/uuid"}}),
            )
        })
        .collect();
    Some(Value::Object(links))
}

fn responses(o: &Operation, auth: bool) -> Map<String, Value> {
    let error = json!({"description": "Error in Ironic's envelope",
                       "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut responses = Map::new();
    let success = match (o.status, o.path) {
        (_, "/boot/{path}") => {
            json!({"description": "The file", "content": {"text/plain": {"schema": {"type": "string"}}}})
        }
        (_, "/metrics") => {
            json!({"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}})
        }
        (_, "/feed/stream") => {
            json!({"description": "Server-Sent Events: `id` the position, `event` the type, `data` the entry", "content": {"text/event-stream": {"schema": {"type": "string"}}}})
        }
        (_, p) if p.starts_with("/ui/") => {
            json!({"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}})
        }
        (202 | 204, _) => json!({"description": "Done (no body)"}),
        _ => {
            json!({"description": "Success", "content": {"application/json": {"schema": {"type": "object"}}}})
        }
    };
    let mut success = success;
    if let Some(l) = links(o) {
        success["links"] = l;
    }
    responses.insert(o.status.to_string(), success);
    let mut errors = o.errors.to_vec();
    if auth && o.versioned() {
        errors.push(401);
    }
    errors.sort_unstable();
    for e in errors {
        let answer = match (e, o.path) {
            (404, p) if p.starts_with("/ui/") => {
                json!({"description": "No such node", "content": {"text/html": {"schema": {"type": "string"}}}})
            }
            (404, "/boot/{path}") => {
                json!({"description": "No such file", "content": {"text/plain": {"schema": {"type": "string"}}}})
            }
            (503, _) => {
                json!({"description": "The store or a projection is not available", "content": {"application/json": {"schema": {"type": "object"}}}})
            }
            _ => error.clone(),
        };
        responses.insert(e.to_string(), answer);
    }
    responses
}

/// The document, for the service as configured (enabled drivers and
/// interfaces, authentication).
pub fn document(config: &Config) -> Value {
    let auth = !matches!(config.auth, AuthStrategy::NoAuth);
    let version_header = json!({
        "name": "X-OpenStack-Ironic-API-Version", "in": "header", "required": false,
        "schema": {"type": "string", "enum": versions()},
        "description": format!("Microversion 1.{MIN_MINOR}…1.{MAX_MINOR} or `latest`; default 1.{MIN_MINOR}")
    });
    let mut paths = Map::new();
    for o in OPERATIONS {
        let mut params: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| path_param(name, config))
            .collect();
        if o.method == "get" {
            params.extend(list_params(o.path));
        }
        if o.versioned() {
            params.push(version_header.clone());
        }
        let mut operation = json!({
            "operationId": operation_id(o),
            "summary": o.summary,
            "description": description(o),
            "parameters": params,
            "responses": responses(o, auth),
        });
        if let Some(b) = request_body(o.body) {
            operation["requestBody"] = b;
        }
        if auth && !o.versioned() {
            operation["security"] = json!([]);
        }
        paths
            .entry(o.path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(o.method.to_string(), operation);
    }
    let mut schemas = Map::new();
    schemas.insert("Error".into(), error_schema());
    schemas.insert("JsonPatch".into(), super::patch::json_schema());
    for r in [
        Resource::Node,
        Resource::Port,
        Resource::Connector,
        Resource::Target,
    ] {
        schemas.insert(r.component().into(), body_schema(r, r.schema(), config));
        schemas.insert(
            format!("{}Patched", r.component()),
            body_schema(r, r.patched_schema(), config),
        );
    }
    let mut components = json!({"schemas": schemas});
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "ironledger: OpenStack Ironic v1 API (boot from volume)",
            "version": format!("1.{MAX_MINOR}"),
            "description": "The subset of Ironic's v1 API that the boot-from-volume workflow uses, answered as Ironic answers it. See docs/api.md for differences."
        },
        "paths": paths,
    });
    if auth {
        components["securitySchemes"] = json!({"basic": {"type": "http", "scheme": "basic"}});
        doc["security"] = json!([{"basic": []}]);
    }
    doc["components"] = components;
    doc
}

pub async fn serve(State(state): State<AppState>) -> Json<Value> {
    Json(document(&state.config))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refinement of a property no validator has would be silently dropped:
    /// each must name a property of the resource (the patched node's
    /// `protected` fields included), and use only refinement keywords.
    #[test]
    fn refinements_name_the_validators_properties() {
        let config = Config::load(&crate::config::Overrides {
            database_url: Some("memory".into()),
            data_dir: Some(std::env::temp_dir()),
            ..Default::default()
        })
        .expect("default config");
        for r in [
            Resource::Node,
            Resource::Port,
            Resource::Connector,
            Resource::Target,
        ] {
            for (name, extra) in refinements(r, &config) {
                assert!(
                    r.patched_schema().props.iter().any(|p| p.name == name),
                    "{r:?}: {name} is not a property"
                );
                for k in extra.as_object().unwrap().keys() {
                    assert!(REFINEMENTS.contains(&k.as_str()), "{r:?}.{name}: {k}");
                }
            }
        }
    }
}
