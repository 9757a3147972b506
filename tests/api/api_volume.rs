//! The volume API over real HTTP (`docs/ironic-behaviour.md` §7): every status and message,
//! masking in every answer, no partial writes, and one winner when two nodes
//! race for an IQN. Expected texts are Ironic 39's answers to the same
//! requests (checked against the real Ironic, `shared/peers/ironic`).
//!
//! Nodes are enrolled and powered through the engine (the nodes API is another
//! module's); everything about volumes goes through HTTP. The key cases also run
//! on PostgreSQL (`mod postgres` at the end).

use crate::common;

use common::api::{Answer, Api};
use ironledger::domain::node::commands::ProvisionRequest;
use ironledger::domain::state::ProvisionState;
use ironledger::domain::NodeCommand;
use ironledger::engine::Meta;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

const MISSING: &str = "11111111-2222-4333-8444-555555555555";

fn meta() -> Meta {
    Meta::actor("test")
}

/// Enrolls a node (in `enroll`, power state unknown).
async fn node(api: &Api, name: Option<&str>) -> Uuid {
    node_owned(api, name, None).await
}

async fn node_owned(api: &Api, name: Option<&str>, owner: Option<&str>) -> Uuid {
    api.enroll(name, owner).await
}

async fn power(api: &Api, node: Uuid, target: &str) {
    api.engine
        .node(
            node,
            NodeCommand::SetPowerState {
                at: None,
                target: target.into(),
            },
            &meta(),
        )
        .await
        .expect("power");
}

async fn provision(api: &Api, node: Uuid, verb: &str) {
    api.engine
        .node(
            node,
            NodeCommand::Provision(ProvisionRequest::verb(verb)),
            &meta(),
        )
        .await
        .expect(verb);
}

/// The number of events the node has (to prove that a refusal wrote nothing).
async fn events_of(api: &Api, node: Uuid) -> usize {
    api.event_count(node).await
}

async fn connector(api: &Api, node: Uuid, id: &str) -> String {
    let a = api
        .post(
            "/v1/volume/connectors",
            json!({"node_uuid": node, "type": "iqn", "connector_id": id}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    a.body["uuid"].as_str().unwrap().to_string()
}

fn chap_properties() -> Value {
    json!({
        "target_iqn": "iqn.2010-10.org.openstack:volume-1",
        "target_lun": 0,
        "target_portal": "192.168.0.123:3260",
        "auth_method": "CHAP",
        "auth_username": "chap-user",
        "auth_password": "chap-secret",
        "discovery_auth_password": "disco-secret",
        "reverse_auth_username": "target-user",
        "reverse_auth_password": "reverse-secret",
        "nested": {"my_secret": "deep-secret", "plain": "ok"},
        "note": "login password=inline-secret user=a",
    })
}

async fn target(api: &Api, node: Uuid, boot_index: i64, properties: Value) -> String {
    let a = api
        .post(
            "/v1/volume/targets",
            json!({"node_uuid": node, "volume_type": "iscsi", "boot_index": boot_index,
                   "volume_id": format!("vol-{boot_index}"), "properties": properties}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    a.body["uuid"].as_str().unwrap().to_string()
}

/// One request and the status and error text it must get.
struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    version: Option<&'static str>,
    status: u16,
    /// The decoded faultstring (or framework description); `None`: not checked.
    message: Option<String>,
}

fn case(
    method: Method,
    path: impl Into<String>,
    body: Option<Value>,
    status: u16,
    message: &str,
) -> Case {
    Case {
        method,
        path: path.into(),
        body,
        version: Some("1.78"),
        status,
        message: Some(message.to_string()),
    }
}

async fn run(api: &Api, cases: Vec<Case>) {
    let mut failures = vec![];
    for c in cases {
        let a = api
            .call_v(c.method.clone(), &c.path, c.body.clone(), c.version)
            .await;
        let ok_status = a.status.as_u16() == c.status;
        let ok_message = c.message.as_ref().is_none_or(|m| &a.error() == m);
        let is_json = a.status.is_success()
            || a.headers.get("content-type").and_then(|v| v.to_str().ok())
                == Some("application/json");
        if !(ok_status && ok_message && is_json) {
            failures.push(format!(
                "{} {} (version {:?}) body {:?}\n   expected {} {:?}\n   got      {} {:?}",
                c.method,
                c.path,
                c.version,
                c.body,
                c.status,
                c.message,
                a.status,
                a.error()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn keys_of(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn error(a: &Answer) -> String {
    a.error()
}

// ---- §7.1 routes, versions, links --------------------------------------------------

#[tokio::test]
async fn links_documents() {
    let api = common::api::start(common::memory().await).await;
    let a = api.get("/v1/volume").await;
    assert_eq!(a.status, StatusCode::OK);
    let b = &api.base;
    assert_eq!(
        a.body,
        json!({
            "links": [{"href": format!("{b}/v1/volume/"), "rel": "self"}, {"href": format!("{b}/volume/"), "rel": "bookmark"}],
            "connectors": [{"href": format!("{b}/v1/volume/connectors"), "rel": "self"}, {"href": format!("{b}/volume/connectors"), "rel": "bookmark"}],
            "targets": [{"href": format!("{b}/v1/volume/targets"), "rel": "self"}, {"href": format!("{b}/volume/targets"), "rel": "bookmark"}],
        })
    );
    // The bookmark form (no /v1) and the trailing-slash self link answer too.
    assert_eq!(api.get("/volume").await.body, a.body);
    assert_eq!(api.get("/v1/volume/").await.body, a.body);

    // Node-scoped: the node is echoed, never looked up.
    let a = api.get("/v1/nodes/no-such-node/volume").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body["connectors"][0]["href"],
        format!("{b}/v1/nodes/no-such-node/volume/connectors")
    );
    assert_eq!(
        a.body["links"][1]["href"],
        format!("{b}/nodes/no-such-node/volume/")
    );
    assert_eq!(
        a.body["targets"][0]["href"],
        format!("{b}/v1/nodes/no-such-node/volume/targets")
    );
}

#[tokio::test]
async fn routes_and_versions() {
    let api = common::api::start(common::memory().await).await;
    let n = node(&api, Some("rack1")).await;
    let c = connector(&api, n, "iqn.routes").await;
    let not_supported = "The API is not supported for this version";
    let mut cases = vec![];
    // Below 1.32 everything volume is 404: the handler's message for the two
    // link documents, the router's bare 404 for the rest.
    for v in [None, Some("1.1"), Some("1.31")] {
        for (m, p, msg) in [
            (Method::GET, "/v1/volume".to_string(), not_supported),
            (Method::GET, format!("/v1/nodes/{n}/volume"), not_supported),
            (Method::GET, "/v1/volume/connectors".to_string(), ""),
            (Method::POST, "/v1/volume/connectors".to_string(), ""),
            (Method::GET, format!("/v1/volume/connectors/{c}"), ""),
            (Method::PATCH, format!("/v1/volume/connectors/{c}"), ""),
            (Method::DELETE, format!("/v1/volume/connectors/{c}"), ""),
            (Method::GET, "/v1/volume/targets".to_string(), ""),
            (Method::GET, format!("/v1/nodes/{n}/volume/connectors"), ""),
            (Method::GET, format!("/v1/nodes/{n}/volume/targets"), ""),
            (
                Method::GET,
                "/v1/volume/connectors/not-a-uuid".to_string(),
                "",
            ),
        ] {
            let body = matches!(m, Method::POST | Method::PATCH).then(|| json!({}));
            cases.push(Case {
                method: m,
                path: p,
                body,
                version: v,
                status: 404,
                message: Some(msg.into()),
            });
        }
    }
    cases.extend([
        // Unknown sub-resources and a node-less node path.
        case(Method::GET, "/v1/volume/foo", None, 404, ""),
        case(Method::GET, format!("/v1/nodes/{n}/volume/foo"), None, 404, ""),
        case(Method::GET, "/v1/nodes/volume/connectors", None, 404, ""),
        // Not a UUID (detail included) → 400 naming the parameter.
        case(Method::GET, "/v1/volume/connectors/detail", None, 400, "Expected UUID for connector_uuid: detail"),
        case(Method::GET, "/v1/volume/targets/nope", None, 400, "Expected UUID for target_uuid: nope"),
        case(Method::PATCH, "/v1/volume/connectors/nope", Some(json!([])), 400, "Expected UUID for connector_uuid: nope"),
        case(Method::DELETE, "/v1/volume/targets/nope", None, 400, "Expected UUID for target_uuid: nope"),
        // Unknown uuids → 404 with Ironic's text.
        case(Method::GET, format!("/v1/volume/connectors/{MISSING}"), None, 404, &format!("Volume connector {MISSING} could not be found.")),
        case(Method::GET, format!("/v1/volume/targets/{MISSING}"), None, 404, &format!("Volume target {MISSING} could not be found.")),
        case(Method::DELETE, format!("/v1/volume/connectors/{MISSING}"), None, 404, &format!("Volume connector {MISSING} could not be found.")),
        case(Method::PATCH, format!("/v1/volume/targets/{MISSING}"), Some(json!([])), 404, &format!("Volume target {MISSING} could not be found.")),
        // ?detail= on a single GET, and other unexpected arguments.
        case(Method::GET, format!("/v1/volume/connectors/{c}?detail=true"), None, 400, "Unexpected arguments: detail"),
        case(Method::GET, format!("/v1/volume/connectors/{c}?detail=false"), None, 400, "Unexpected arguments: detail"),
        case(Method::GET, format!("/v1/volume/connectors/{c}?foo=1"), None, 400, "Unexpected arguments: foo"),
        case(Method::GET, format!("/v1/volume/connectors/{c}?fields=type,bogus"), None, 400,
             "Schema error: 'bogus' is not one of ['connector_id', 'created_at', 'extra', 'links', 'node_uuid', 'type', 'updated_at', 'uuid']"),
        // Node-scoped: only the list. An existing item → 400 Malformed, a
        // missing one → 404 first (Ironic looks it up before refusing).
        case(Method::GET, format!("/v1/nodes/{n}/volume/connectors/{c}"), None, 400, "Malformed request URI."),
        case(Method::PATCH, format!("/v1/nodes/{n}/volume/connectors/{c}"), Some(json!([{"op": "add", "path": "/extra/a", "value": 1}])), 400, "Malformed request URI."),
        case(Method::DELETE, format!("/v1/nodes/{n}/volume/connectors/{c}"), None, 400, "Malformed request URI."),
        case(Method::GET, format!("/v1/nodes/{n}/volume/connectors/{MISSING}"), None, 404, &format!("Volume connector {MISSING} could not be found.")),
        case(Method::DELETE, format!("/v1/nodes/{n}/volume/targets/{MISSING}"), None, 404, &format!("Volume target {MISSING} could not be found.")),
        case(Method::GET, format!("/v1/nodes/{n}/volume/targets/nope"), None, 400, "Expected UUID for target_uuid: nope"),
        case(Method::POST, format!("/v1/nodes/{n}/volume/connectors"), Some(json!({"node_uuid": n, "type": "iqn", "connector_id": "iqn.scoped"})), 400, "Malformed request URI."),
        case(Method::POST, format!("/v1/nodes/{n}/volume/targets"), Some(json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 5, "volume_id": "v"})), 400, "Malformed request URI."),
        // …but a missing node_uuid is reported before the node-scoped refusal.
        case(Method::POST, format!("/v1/nodes/{n}/volume/connectors"), Some(json!({"node_uuid": MISSING, "type": "iqn", "connector_id": "iqn.scoped"})), 400,
             &format!("Invalid input for field/attribute node_uuid. Value: '{MISSING}'. ")),
        // PATCH or DELETE of a collection.
        case(Method::PATCH, "/v1/volume/connectors", Some(json!([])), 400, "Missing mandatory parameter: connector_uuid"),
        case(Method::DELETE, "/v1/volume/targets", None, 400, "Missing mandatory parameter: target_uuid"),
        case(Method::PATCH, format!("/v1/nodes/{n}/volume/connectors"), Some(json!([])), 400, "Missing mandatory parameter: connector_uuid"),
        case(Method::DELETE, format!("/v1/nodes/{n}/volume/targets"), None, 400, "Missing mandatory parameter: target_uuid"),
        // Other methods.
        case(Method::PUT, "/v1/volume/connectors", Some(json!({})), 405, ""),
        case(Method::PUT, format!("/v1/volume/targets/{c}"), Some(json!({})), 405, ""),
        case(Method::POST, "/v1/volume", Some(json!({})), 405, ""),
        case(Method::DELETE, "/v1/volume", None, 405, ""),
        // A node path segment that is neither a UUID nor a name.
        case(Method::GET, "/v1/nodes/bad%20name/volume", None, 400, "Expected UUID or name for node: bad name"),
        case(Method::GET, "/v1/nodes/bad%20name/volume/connectors", None, 400, "Expected UUID or name for node: bad name"),
    ]);
    run(&api, cases).await;
    // A trailing slash names the same resource (Ironic's web framework).
    let a = api.get(&format!("/v1/volume/connectors/?node={n}")).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["connectors"][0]["uuid"], c.as_str());
    assert_eq!(
        api.get(&format!("/v1/volume/connectors/{c}/")).await.body["uuid"],
        c.as_str()
    );
    assert_eq!(
        api.get(&format!("/v1/nodes/{n}/volume/targets/"))
            .await
            .status,
        StatusCode::OK
    );
    // The node-scoped list accepts a node name (Ironic's api-ref; see docs/api.md).
    let a = api.get("/v1/nodes/rack1/volume/connectors").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["connectors"][0]["uuid"], c.as_str());
}

// ---- §7.5 create ----------------------------------------------------------------

#[tokio::test]
async fn create_connector() {
    let api = common::api::start(common::memory().await).await;
    let n = node(&api, None).await;
    let a = api
        .post(
            "/v1/volume/connectors",
            json!({"node_uuid": n, "type": "iqn", "connector_id": "iqn.2017-08.org.openstack.n1", "extra": {"rack": 7}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let uuid = a.body["uuid"].as_str().unwrap();
    assert_eq!(
        a.headers["location"].to_str().unwrap(),
        format!("{}/v1/volume/connectors/{uuid}", api.base)
    );
    let b = &api.base;
    let expected_keys: Vec<&str> = vec![
        "connector_id",
        "created_at",
        "extra",
        "links",
        "node_uuid",
        "type",
        "updated_at",
        "uuid",
    ];
    let mut keys: Vec<&str> = a
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, expected_keys);
    assert_eq!(a.body["node_uuid"], n.to_string());
    assert_eq!(a.body["type"], "iqn");
    assert_eq!(a.body["extra"], json!({"rack": 7}));
    assert_eq!(a.body["updated_at"], Value::Null);
    assert!(a.body["created_at"].as_str().unwrap().ends_with("+00:00"));
    assert_eq!(
        a.body["links"],
        json!([{"href": format!("{b}/v1/volume/connectors/{uuid}"), "rel": "self"},
               {"href": format!("{b}/volume/connectors/{uuid}"), "rel": "bookmark"}])
    );
    // A GET shows the same resource.
    assert_eq!(
        api.get(&format!("/v1/volume/connectors/{uuid}")).await.body,
        a.body
    );

    // A given uuid is kept; null uuid and null extra are accepted.
    let mine = Uuid::new_v4();
    let a = api
        .post(
            "/v1/volume/connectors",
            json!({"node_uuid": n, "type": "wwpn", "connector_id": "50:00", "uuid": mine}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["uuid"], mine.to_string());
    let a = api
        .post("/v1/volume/connectors", json!({"node_uuid": n, "type": "ip", "connector_id": "10.0.0.1", "uuid": null, "extra": null}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["extra"], json!({}));
    // The API does not restrict `type`.
    let a = api
        .post(
            "/v1/volume/connectors",
            json!({"node_uuid": n, "type": "anything", "connector_id": "x"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
}

#[tokio::test]
async fn create_errors() {
    let api = common::api::start(common::memory().await).await;
    let n = node(&api, None).await;
    let n2 = node(&api, None).await;
    let c = connector(&api, n, "iqn.taken").await;
    let t = target(&api, n, 0, json!({})).await;
    let before = events_of(&api, n).await;
    let before2 = events_of(&api, n2).await;
    let conn = |body: Value| case(Method::POST, "/v1/volume/connectors", Some(body), 400, "");
    let mut cases = vec![];
    let schema = |body: Value, msg: &str| {
        let mut c = conn(body);
        c.message = Some(format!("Schema error for connector: {msg}"));
        c
    };
    cases.extend([
        schema(
            json!({"node_uuid": 123, "type": "iqn", "connector_id": "x"}),
            "123 is not of type 'string'",
        ),
        schema(
            json!({"node_uuid": n, "type": "iqn"}),
            "'connector_id' is a required property",
        ),
        schema(json!({}), "'connector_id' is a required property"),
        schema(
            json!({"node_uuid": 123, "foo": 1}),
            "'connector_id' is a required property",
        ),
        schema(
            json!({"node_uuid": n, "type": "iqn", "connector_id": "x", "foo": 1}),
            "Additional properties are not allowed ('foo' was unexpected)",
        ),
        schema(
            json!({"node_uuid": n, "type": "iqn", "connector_id": "x", "b": 1, "a": 2}),
            "Additional properties are not allowed ('a', 'b' were unexpected)",
        ),
        // Among wrong properties, jsonschema reports the one whose name sorts last.
        schema(
            json!({"node_uuid": 123, "type": 5, "connector_id": "x"}),
            "5 is not of type 'string'",
        ),
        schema(
            json!({"node_uuid": n, "type": "t", "connector_id": "x", "extra": []}),
            "[] is not of type 'object', 'null'",
        ),
        schema(
            json!({"node_uuid": n, "type": true, "connector_id": "x"}),
            "True is not of type 'string'",
        ),
        schema(json!([1]), "[1] is not of type 'object'"),
        schema(json!("str"), "'str' is not of type 'object'"),
    ]);
    cases.extend([
        case(Method::POST, "/v1/volume/connectors", Some(json!({"node_uuid": "notauuid", "type": "iqn", "connector_id": "x"})), 400, "Expected UUID for node_uuid: notauuid"),
        case(Method::POST, "/v1/volume/connectors", Some(json!({"node_uuid": n, "type": "iqn", "connector_id": "x", "uuid": "zzz"})), 400, "Expected UUID for uuid: zzz"),
        // Missing node → 400 InvalidInput, with Ironic's trailing space.
        case(Method::POST, "/v1/volume/connectors", Some(json!({"node_uuid": MISSING, "type": "iqn", "connector_id": "x"})), 400,
             &format!("Invalid input for field/attribute node_uuid. Value: '{MISSING}'. ")),
        case(Method::POST, "/v1/volume/targets", Some(json!({"node_uuid": MISSING, "volume_type": "iscsi", "boot_index": 3, "volume_id": "v"})), 400,
             &format!("Invalid input for field/attribute node_uuid. Value: '{MISSING}'. ")),
        // Duplicates → 409 with Ironic's texts, global for (type, connector_id).
        case(Method::POST, "/v1/volume/connectors", Some(json!({"node_uuid": n2, "type": "iqn", "connector_id": "iqn.taken"})), 409,
             "A volume connector with type iqn and connector ID iqn.taken already exists."),
        case(Method::POST, "/v1/volume/connectors", Some(json!({"node_uuid": n, "type": "iqn", "connector_id": "iqn.taken"})), 409,
             "A volume connector with type iqn and connector ID iqn.taken already exists."),
        case(Method::POST, "/v1/volume/connectors", Some(json!({"node_uuid": n2, "type": "iqn", "connector_id": "iqn.other", "uuid": c})), 409,
             &format!("A volume connector with UUID {c} already exists.")),
        case(Method::POST, "/v1/volume/connectors", Some(json!({"node_uuid": n, "type": "iqn", "connector_id": "iqn.other", "uuid": c})), 409,
             &format!("A volume connector with UUID {c} already exists.")),
        case(Method::POST, "/v1/volume/targets", Some(json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v2"})), 409,
             "A volume target with boot index '0' for the same node already exists."),
        case(Method::POST, "/v1/volume/targets", Some(json!({"node_uuid": n2, "volume_type": "iscsi", "boot_index": 4, "volume_id": "v2", "uuid": t})), 409,
             &format!("A volume target with UUID {t} already exists.")),
        // boot_index is an integer: a string is a schema error (the api-ref is wrong).
        case(Method::POST, "/v1/volume/targets", Some(json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": "0", "volume_id": "v"})), 400,
             "Schema error for target: '0' is not of type 'integer'"),
        case(Method::POST, "/v1/volume/targets", Some(json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 2.5, "volume_id": "v"})), 400,
             "Schema error for target: 2.5 is not of type 'integer'"),
        case(Method::POST, "/v1/volume/targets", Some(json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": true, "volume_id": "v"})), 400,
             "Schema error for target: True is not of type 'integer'"),
        case(Method::POST, "/v1/volume/targets", Some(json!({})), 400, "Schema error for target: 'boot_index' is a required property"),
        case(Method::POST, "/v1/volume/targets", Some(json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 1, "volume_id": "v", "properties": [1]})), 400,
             "Schema error for target: [1] is not of type 'object', 'null'"),
    ]);
    run(&api, cases).await;
    // An empty body reads as {} (as in Ironic).
    let a = api
        .client
        .post(format!("{}/v1/volume/connectors", api.base))
        .header("X-OpenStack-Ironic-API-Version", "1.78")
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::BAD_REQUEST);
    // No refusal wrote anything.
    assert_eq!(events_of(&api, n).await, before);
    assert_eq!(events_of(&api, n2).await, before2);
    assert_eq!(
        api.get("/v1/volume/connectors").await.body["connectors"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        api.get("/v1/volume/targets").await.body["targets"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn create_target_values() {
    let api = common::api::start(common::memory().await).await;
    let n = node(&api, None).await;
    // 1.0 is an integer to jsonschema (stored as 1); negative indexes are accepted.
    let a = api
        .post(
            "/v1/volume/targets",
            json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 1.0, "volume_id": "v1"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.body["boot_index"], json!(1));
    assert_eq!(a.body["properties"], json!({}));
    let a = api
        .post("/v1/volume/targets", json!({"node_uuid": n, "volume_type": "fibre_channel", "boot_index": -3, "volume_id": "v1", "properties": null}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["boot_index"], json!(-3));
    let uuid = a.body["uuid"].as_str().unwrap();
    assert_eq!(
        a.headers["location"].to_str().unwrap(),
        format!("{}/v1/volume/targets/{uuid}", api.base)
    );
    let mut keys: Vec<String> = a.body.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "boot_index",
            "created_at",
            "extra",
            "links",
            "node_uuid",
            "properties",
            "updated_at",
            "uuid",
            "volume_id",
            "volume_type"
        ]
    );
    // volume_id is not unique.
    let a = api
        .post(
            "/v1/volume/targets",
            json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 2, "volume_id": "v1"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
}

// ---- §7.9 masking ------------------------------------------------------------------

fn assert_masked(p: &Value) {
    assert_eq!(p["auth_password"], "******", "{p}");
    assert_eq!(p["discovery_auth_password"], "******");
    // Mutual CHAP's target secret is masked like the initiator's.
    assert_eq!(p["reverse_auth_password"], "******");
    assert_eq!(p["reverse_auth_username"], "target-user");
    assert_eq!(p["nested"]["my_secret"], "******");
    assert_eq!(p["nested"]["plain"], "ok");
    assert_eq!(p["auth_username"], "chap-user");
    assert_eq!(p["note"], "login password=****** user=a");
    for s in [
        "chap-secret",
        "disco-secret",
        "deep-secret",
        "inline-secret",
    ] {
        assert!(!p.to_string().contains(s), "{s} leaked: {p}");
    }
}

#[tokio::test]
async fn target_properties_are_masked_in_every_answer() {
    let api = common::api::start(common::memory().await).await;
    let n = node(&api, None).await;
    let a = api
        .post(
            "/v1/volume/targets",
            json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v", "properties": chap_properties()}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_masked(&a.body["properties"]);
    let t = a.body["uuid"].as_str().unwrap().to_string();
    assert_masked(&api.get(&format!("/v1/volume/targets/{t}")).await.body["properties"]);
    assert_masked(
        &api.get(&format!("/v1/volume/targets/{t}?fields=properties"))
            .await
            .body["properties"],
    );
    assert_masked(
        &api.get("/v1/volume/targets?detail=true").await.body["targets"][0]["properties"],
    );
    assert_masked(
        &api.get("/v1/volume/targets?fields=uuid,properties")
            .await
            .body["targets"][0]["properties"],
    );
    assert_masked(
        &api.get(&format!("/v1/nodes/{n}/volume/targets?detail=True"))
            .await
            .body["targets"][0]["properties"],
    );
    power(&api, n, "power off").await;
    let a = api
        .patch(
            &format!("/v1/volume/targets/{t}"),
            json!([{"op": "add", "path": "/properties/new_password", "value": "patched-secret"}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_masked(&a.body["properties"]);
    assert_eq!(a.body["properties"]["new_password"], "******");
    // The stored value is intact.
    let stored = api.engine.load_node(n).await.unwrap();
    let p = &stored.targets[0].properties;
    assert_eq!(p["auth_password"], "chap-secret");
    assert_eq!(p["discovery_auth_password"], "disco-secret");
    assert_eq!(p["reverse_auth_password"], "reverse-secret");
    assert_eq!(p["nested"]["my_secret"], "deep-secret");
    assert_eq!(p["note"], "login password=inline-secret user=a");
    assert_eq!(p["new_password"], "patched-secret");
    // Connectors are not masked.
    let a = api
        .post(
            "/v1/volume/connectors",
            json!({"node_uuid": n, "type": "iqn", "connector_id": "c", "extra": {"password": "p"}}),
        )
        .await;
    assert_eq!(a.body["extra"]["password"], "p");
}

// ---- §7.4 lists -------------------------------------------------------------------

#[tokio::test]
async fn lists() {
    let api = common::api::start(common::memory().await).await;
    let n1 = node(&api, Some("first")).await;
    let n2 = node(&api, Some("second")).await;
    let c1 = connector(&api, n1, "iqn.b").await;
    let c2 = connector(&api, n2, "iqn.a").await;
    let c3 = connector(&api, n1, "iqn.c").await;
    let t1 = target(&api, n1, 0, json!({"auth_password": "x"})).await;
    let b = api.base.clone();

    // Default fields, creation order.
    let a = api.get("/v1/volume/connectors").await;
    let list = a.body["connectors"].as_array().unwrap();
    assert_eq!(
        list.iter()
            .map(|c| c["uuid"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [&c1, &c2, &c3]
    );
    let mut keys: Vec<&str> = list[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(keys, ["connector_id", "links", "node_uuid", "type", "uuid"]);
    assert!(a.body.get("next").is_none());
    let a = api.get("/v1/volume/targets").await;
    let mut keys: Vec<&str> = a.body["targets"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "boot_index",
            "links",
            "node_uuid",
            "uuid",
            "volume_id",
            "volume_type"
        ]
    );
    assert_eq!(a.body["targets"][0]["uuid"], t1.as_str());

    // detail, fields.
    let a = api.get("/v1/volume/connectors?detail=True").await;
    assert!(a.body["connectors"][0].get("created_at").is_some());
    assert!(a.body["connectors"][0].get("extra").is_some());
    let a = api.get("/v1/volume/connectors?detail=0").await;
    assert!(a.body["connectors"][0].get("extra").is_none());
    let a = api.get("/v1/volume/connectors?fields=type").await;
    assert_eq!(a.body["connectors"][0].as_object().unwrap().len(), 2); // type + links
    let a = api
        .get("/v1/volume/connectors?fields=type&fields=uuid")
        .await;
    assert_eq!(a.body["connectors"][0].as_object().unwrap().len(), 3);

    // Pagination: next whenever the page is full, with the default fields spelled out.
    let a = api.get("/v1/volume/connectors?limit=1").await;
    assert_eq!(a.body["connectors"].as_array().unwrap().len(), 1);
    assert_eq!(
        a.body["next"],
        format!("{b}/v1/volume/connectors?sort_key=id&sort_dir=asc&fields=uuid,node_uuid,type,connector_id&limit=1&marker={c1}")
    );
    let a = api
        .get(&format!("/v1/volume/connectors?limit=1&marker={c1}"))
        .await;
    assert_eq!(a.body["connectors"][0]["uuid"], c2.as_str());
    let a = api
        .get(&format!("/v1/volume/connectors?limit=2&marker={c1}"))
        .await;
    assert_eq!(a.body["connectors"].as_array().unwrap().len(), 2);
    assert!(
        a.body["next"]
            .as_str()
            .unwrap()
            .ends_with(&format!("marker={c3}")),
        "a full page has next even at the end"
    );
    let a = api
        .get(&format!("/v1/volume/connectors?limit=5&marker={c1}"))
        .await;
    assert!(a.body.get("next").is_none());
    let a = api.get("/v1/volume/connectors?limit=1&detail=true").await;
    assert_eq!(
        a.body["next"],
        format!(
            "{b}/v1/volume/connectors?sort_key=id&sort_dir=asc&detail=True&limit=1&marker={c1}"
        )
    );
    // An empty fields list shows only links, and the next link leaves it out (as Ironic).
    let a = api.get("/v1/volume/connectors?limit=1&fields=").await;
    assert_eq!(keys_of(&a.body["connectors"][0]), ["links"]);
    assert_eq!(
        a.body["next"],
        format!("{b}/v1/volume/connectors?sort_key=id&sort_dir=asc&limit=1&marker={c1}")
    );
    let a = api
        .get("/v1/volume/targets?limit=1&fields=boot_index")
        .await;
    assert_eq!(
        a.body["next"],
        format!(
            "{b}/v1/volume/targets?sort_key=id&sort_dir=asc&fields=boot_index&limit=1&marker={t1}"
        )
    );

    // Sorting.
    let a = api.get("/v1/volume/connectors?sort_key=connector_id").await;
    let ids: Vec<&str> = a.body["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connector_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["iqn.a", "iqn.b", "iqn.c"]);
    let a = api
        .get("/v1/volume/connectors?sort_key=connector_id&sort_dir=desc")
        .await;
    assert_eq!(a.body["connectors"][0]["connector_id"], "iqn.c");
    let a = api.get("/v1/volume/connectors?sort_dir=desc").await;
    assert_eq!(a.body["connectors"][0]["uuid"], c3.as_str());

    // The node filter by uuid or name; node-scoped lists; next without node=.
    for q in [format!("node={n1}"), "node=first".to_string()] {
        let a = api.get(&format!("/v1/volume/connectors?{q}")).await;
        let got: Vec<&str> = a.body["connectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["uuid"].as_str().unwrap())
            .collect();
        assert_eq!(got, [&c1, &c3], "{q}");
    }
    for ident in [n1.to_string(), "first".to_string()] {
        let a = api
            .get(&format!("/v1/nodes/{ident}/volume/connectors?limit=1"))
            .await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body["connectors"][0]["uuid"], c1.as_str());
        assert_eq!(
            a.body["next"],
            format!("{b}/v1/volume/connectors?sort_key=id&sort_dir=asc&fields=uuid,node_uuid,type,connector_id&limit=1&marker={c1}")
        );
    }
    let a = api.get(&format!("/v1/nodes/{n2}/volume/targets")).await;
    assert_eq!(a.body, json!({"targets": []}));
    // The path's node wins over ?node=.
    let a = api
        .get(&format!("/v1/nodes/{n2}/volume/connectors?node=first"))
        .await;
    assert_eq!(a.body["connectors"][0]["uuid"], c2.as_str());

    let mut cases = vec![];
    for coll in ["connectors", "targets"] {
        cases.extend([
            case(Method::GET, format!("/v1/volume/{coll}?limit=0"), None, 400, "Limit must be positive"),
            case(Method::GET, format!("/v1/volume/{coll}?limit=-1"), None, 400, "Limit must be positive"),
            case(Method::GET, format!("/v1/volume/{coll}?limit=abc"), None, 400, "Expected an integer for limit: abc"),
            case(Method::GET, format!("/v1/volume/{coll}?marker=nope"), None, 400, "Expected UUID for marker: nope"),
            case(Method::GET, format!("/v1/volume/{coll}?sort_key=extra"), None, 400, "The sort_key value extra is an invalid field for sorting"),
            case(Method::GET, format!("/v1/volume/{coll}?sort_key=bogus"), None, 400, "The sort_key value \"bogus\" is an invalid field for sorting"),
            case(Method::GET, format!("/v1/volume/{coll}?sort_key=node_uuid"), None, 400, "The sort_key value \"node_uuid\" is an invalid field for sorting"),
            case(Method::GET, format!("/v1/volume/{coll}?sort_dir=up"), None, 400, "Schema error: 'up' is not one of ['asc', 'desc']"),
            case(Method::GET, format!("/v1/volume/{coll}?detail=maybe"), None, 400,
                 "Invalid detail: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"),
            case(Method::GET, format!("/v1/volume/{coll}?fields=uuid&detail=true"), None, 400, "Can't fetch a subset of fields with 'detail' set"),
            case(Method::GET, format!("/v1/volume/{coll}?node=bad%20name"), None, 400, "Expected UUID or name for node: bad name"),
            case(Method::GET, format!("/v1/volume/{coll}?node=nosuch"), None, 404, "Node nosuch could not be found."),
            case(Method::GET, format!("/v1/volume/{coll}?node={MISSING}"), None, 404, &format!("Node {MISSING} could not be found.")),
            case(Method::GET, format!("/v1/nodes/nosuch/volume/{coll}"), None, 404, "Node nosuch could not be found."),
            case(Method::GET, format!("/v1/nodes/{MISSING}/volume/{coll}"), None, 404, &format!("Node {MISSING} could not be found.")),
            case(Method::GET, format!("/v1/volume/{coll}?foo=1&bar=2"), None, 400, "Unexpected arguments: bar, foo"),
        ]);
    }
    cases.extend([
        case(Method::GET, "/v1/volume/targets?sort_key=properties", None, 400, "The sort_key value properties is an invalid field for sorting"),
        case(Method::GET, format!("/v1/volume/connectors?marker={MISSING}"), None, 404, &format!("Volume connector {MISSING} could not be found.")),
        case(Method::GET, format!("/v1/volume/targets?marker={MISSING}"), None, 404, &format!("Volume target {MISSING} could not be found.")),
        case(Method::GET, "/v1/volume/targets?fields=bogus", None, 400,
             "Schema error: 'bogus' is not one of ['boot_index', 'created_at', 'extra', 'links', 'node_uuid', 'properties', 'updated_at', 'uuid', 'volume_id', 'volume_type']"),
    ]);
    run(&api, cases).await;
}

// ---- §7.6 patch ------------------------------------------------------------------

#[tokio::test]
async fn patch_rules() {
    let api = common::api::start(common::memory().await).await;
    let n = node(&api, None).await;
    let c = connector(&api, n, "iqn.p").await;
    let t = target(&api, n, 0, json!({})).await;
    let _t1 = target(&api, n, 1, json!({})).await;
    let other = connector(&api, n, "iqn.other").await;
    let cp = format!("/v1/volume/connectors/{c}");
    let tp = format!("/v1/volume/targets/{t}");
    let p = |path: &str, ops: Value, status: u16, msg: &str| {
        case(Method::PATCH, path, Some(ops), status, msg)
    };

    // The power state is unknown (None): no update, whatever the patch.
    let before = events_of(&api, n).await;
    run(&api, vec![
        p(&cp, json!([{"op": "add", "path": "/extra/a", "value": 1}]), 400,
          &format!("The requested action \"volume connector update\" can not be performed on node \"{n}\" while it is in state \"None\".")),
        p(&cp, json!([]), 400,
          &format!("The requested action \"volume connector update\" can not be performed on node \"{n}\" while it is in state \"None\".")),
        p(&tp, json!([{"op": "replace", "path": "/volume_id", "value": "v9"}]), 400,
          &format!("The requested action \"volume target update\" can not be performed on node \"{n}\" while it is in state \"None\".")),
    ]).await;
    power(&api, n, "power on").await;
    run(&api, vec![
        p(&tp, json!([{"op": "replace", "path": "/volume_id", "value": "v9"}]), 400,
          &format!("The requested action \"volume target update\" can not be performed on node \"{n}\" while it is in state \"power on\".")),
    ]).await;
    assert_eq!(
        events_of(&api, n).await,
        before + 1,
        "only the power change was recorded"
    );
    power(&api, n, "power off").await;

    let schema = |m: &str| format!("Schema error for patch: {m}");
    let allowed_c = "Cannot patch /uuid. Only the following can be updated: connector_id, extra, node_uuid, type";
    let before = events_of(&api, n).await;
    run(&api, vec![
        p(&cp, json!({}), 400, &schema("{} is not of type 'array'")),
        p(&cp, json!([{"op": "move", "path": "/extra/a", "from": "/extra/b"}]), 400, &schema("Additional properties are not allowed ('from' was unexpected)")),
        p(&cp, json!([{"op": "test", "path": "/extra/a", "value": 1}]), 400, &schema("'test' is not one of ['add', 'replace', 'remove']")),
        p(&cp, json!([{"op": "copy", "path": "/extra/a", "value": 1}]), 400, &schema("'copy' is not one of ['add', 'replace', 'remove']")),
        p(&cp, json!([{"op": "replace", "path": "extra", "value": {}}]), 400, &schema(r"'extra' does not match '^(/[\\w-]+)+$'")),
        p(&cp, json!([{"path": "/type", "value": "x"}]), 400, &schema("'op' is a required property")),
        p(&cp, json!([{"op": "replace", "path": "/type", "value": "x", "bogus": 1}]), 400, &schema("Additional properties are not allowed ('bogus' was unexpected)")),
        p(&cp, json!([{"op": "replace", "path": "/uuid", "value": "x"}]), 400, allowed_c),
        p(&cp, json!([{"op": "replace", "path": "/created_at", "value": "x"}]), 400,
          "Cannot patch /created_at. Only the following can be updated: connector_id, extra, node_uuid, type"),
        p(&cp, json!([{"op": "add", "path": "/foo", "value": 1}]), 400,
          "Cannot patch /foo. Only the following can be updated: connector_id, extra, node_uuid, type"),
        p(&tp, json!([{"op": "replace", "path": "/node_id", "value": 1}]), 400,
          "Cannot patch /node_id. Only the following can be updated: boot_index, extra, node_uuid, properties, volume_id, volume_type"),
        p(&cp, json!([{"op": "replace", "path": "/node_uuid", "value": "x"}]), 400, "Expected a UUID for node_uuid, but received x."),
        p(&cp, json!([{"op": "replace", "path": "/node_uuid", "value": 5}]), 400, "Expected a UUID for node_uuid, but received 5."),
        p(&cp, json!([{"op": "replace", "path": "/node_uuid", "value": "first"}]), 400, "Expected a UUID for node_uuid, but received first."),
        p(&cp, json!([{"op": "replace", "path": "/node_uuid", "value": MISSING}]), 400,
          &format!("Unable to apply the requested node_uuid '{MISSING}'. Requested value was invalid.")),
        p(&cp, json!([{"op": "remove", "path": "/type"}]), 400, &schema("'type' is a required property")),
        p(&cp, json!([{"op": "replace", "path": "/type", "value": 5}]), 400, &schema("5 is not of type 'string'")),
        p(&cp, json!([{"op": "remove", "path": "/extra/nope"}]), 400,
          "Couldn't apply patch '{'op': 'remove', 'path': '/extra/nope'}'. Reason: can't remove a non-existent object 'nope'"),
        p(&cp, json!([{"op": "replace", "path": "/type"}]), 400,
          "Couldn't apply patch '{'op': 'replace', 'path': '/type'}'. Reason: The operation does not contain a 'value' member"),
        p(&cp, json!([{"op": "replace", "path": "/extra/missing", "value": 1}]), 400,
          "Couldn't apply patch '{'op': 'replace', 'path': '/extra/missing', 'value': 1}'. Reason: can't replace a non-existent object 'missing'"),
        p(&tp, json!([{"op": "replace", "path": "/boot_index", "value": "1"}]), 400, &schema("'1' is not of type 'integer'")),
        p(&tp, json!([{"op": "replace", "path": "/properties", "value": [1]}]), 400, &schema("[1] is not of type 'object', 'null'")),
        p(&tp, json!([{"op": "replace", "path": "/volume_id", "value": null}]), 400, &schema("None is not of type 'string'")),
        // Uniqueness, as on create.
        p(&tp, json!([{"op": "replace", "path": "/boot_index", "value": 1}]), 409,
          "A volume target with boot index '1' for the same node already exists."),
        p(&cp, json!([{"op": "replace", "path": "/connector_id", "value": "iqn.other"}]), 409,
          "A volume connector with type iqn and connector ID iqn.other already exists."),
    ]).await;
    assert_eq!(
        events_of(&api, n).await,
        before,
        "no refused patch wrote anything"
    );
    let _ = other;

    // Successes: 200 with the full resource.
    let a = api.patch(&cp, json!([{"op": "add", "path": "/extra/a", "value": 1}, {"op": "replace", "path": "/connector_id", "value": "iqn.q"}])).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["extra"], json!({"a": 1}));
    assert_eq!(a.body["connector_id"], "iqn.q");
    assert!(a.body["updated_at"].is_string());
    assert_eq!(
        a.body["links"][0]["href"],
        format!("{}/v1/volume/connectors/{c}", api.base)
    );
    let a = api
        .patch(&cp, json!([{"op": "remove", "path": "/extra"}]))
        .await;
    assert_eq!(a.body["extra"], json!({}));
    // An empty patch and a node_uuid removal leave the record as it is (Ironic
    // puts the current node back).
    let a = api.patch(&cp, json!([])).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api
        .patch(&cp, json!([{"op": "remove", "path": "/node_uuid"}]))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["node_uuid"], n.to_string());
    let a = api
        .patch(
            &cp,
            json!([{"op": "replace", "path": "/node_uuid", "value": n}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api
        .patch(
            &tp,
            json!([{"op": "replace", "path": "/boot_index", "value": 5.0}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["boot_index"], json!(5));
    // The freed index can be taken.
    let a = api
        .patch(
            &format!("/v1/volume/targets/{_t1}"),
            json!([{"op": "replace", "path": "/boot_index", "value": 0}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn rehoming_moves_the_record() {
    let api = common::api::start(common::memory().await).await;
    let n1 = node(&api, None).await;
    let n2 = node(&api, None).await;
    let c = connector(&api, n1, "iqn.moving").await;
    let t = target(&api, n1, 0, chap_properties()).await;
    let _blocker = target(&api, n2, 0, json!({})).await;
    let cp = format!("/v1/volume/connectors/{c}");
    let tp = format!("/v1/volume/targets/{t}");

    // The node the record moves to must be powered off (Ironic's conductor checks it).
    let before = (events_of(&api, n1).await, events_of(&api, n2).await);
    let a = api
        .patch(
            &cp,
            json!([{"op": "replace", "path": "/node_uuid", "value": n2}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&a),
        format!("The requested action \"volume connector update\" can not be performed on node \"{n2}\" while it is in state \"None\".")
    );
    assert_eq!(
        (events_of(&api, n1).await, events_of(&api, n2).await),
        before
    );
    power(&api, n2, "power off").await;

    // A move with other changes: the record is on the new node, with them.
    let a = api
        .patch(&cp, json!([{"op": "replace", "path": "/node_uuid", "value": n2}, {"op": "replace", "path": "/extra", "value": {"moved": true}}]))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["node_uuid"], n2.to_string());
    assert_eq!(a.body["uuid"], c.as_str());
    assert_eq!(a.body["extra"], json!({"moved": true}));
    assert_eq!(a.body["connector_id"], "iqn.moving");
    assert_eq!(api.engine.load_node(n1).await.unwrap().connectors.len(), 0);
    let moved = api.engine.load_node(n2).await.unwrap();
    assert_eq!(moved.connectors.len(), 1);
    assert_eq!(moved.connectors[0].uuid.to_string(), c);
    let listed = api.get(&format!("/v1/nodes/{n2}/volume/connectors")).await;
    assert_eq!(listed.body["connectors"][0]["uuid"], c.as_str());
    assert_eq!(
        api.get(&format!("/v1/nodes/{n1}/volume/connectors"))
            .await
            .body["connectors"],
        json!([])
    );
    // The IQN is still claimed (now by n2): nobody else can take it.
    let n3 = node(&api, None).await;
    let a = api
        .post(
            "/v1/volume/connectors",
            json!({"node_uuid": n3, "type": "iqn", "connector_id": "iqn.moving"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);

    // Ironic takes the first node_uuid of a patch.
    power(&api, n3, "power off").await;
    let a = api
        .patch(&cp, json!([{"op": "replace", "path": "/node_uuid", "value": n3}, {"op": "replace", "path": "/node_uuid", "value": n1}]))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["node_uuid"], n3.to_string());

    // A target moving onto a taken boot index: 409, and it stays where it was,
    // unchanged (compensated), secrets included.
    let stored_before = api.engine.load_node(n1).await.unwrap().targets;
    let a = api
        .patch(&tp, json!([{"op": "replace", "path": "/node_uuid", "value": n2}, {"op": "replace", "path": "/volume_id", "value": "changed"}]))
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{:?}", a.body);
    assert_eq!(
        error(&a),
        "A volume target with boot index '0' for the same node already exists."
    );
    assert_eq!(
        api.engine.load_node(n1).await.unwrap().targets,
        stored_before
    );
    let shown = api.get(&tp).await;
    assert_eq!(shown.body["node_uuid"], n1.to_string());
    assert_eq!(shown.body["volume_id"], "vol-0");
    assert_eq!(api.engine.load_node(n2).await.unwrap().targets.len(), 1);

    // Moving it with a free index works and keeps (and masks) its properties.
    let a = api
        .patch(&tp, json!([{"op": "replace", "path": "/node_uuid", "value": n2}, {"op": "replace", "path": "/boot_index", "value": 1}]))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["node_uuid"], n2.to_string());
    assert_masked(&a.body["properties"]);
    let stored = api.engine.load_node(n2).await.unwrap();
    let moved = stored
        .targets
        .iter()
        .find(|x| x.uuid.to_string() == t)
        .unwrap();
    assert_eq!(moved.properties["auth_password"], "chap-secret");
    assert_eq!(moved.boot_index, 1);

    // A node with another owner is refused like a missing one.
    let foreign = node_owned(&api, None, Some("someone-else")).await;
    let a = api
        .patch(
            &tp,
            json!([{"op": "replace", "path": "/node_uuid", "value": foreign}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&a),
        format!(
            "Unable to apply the requested node_uuid '{foreign}'. Requested value was invalid."
        )
    );
}

// ---- §7.7 delete ------------------------------------------------------------------

#[tokio::test]
async fn delete_rules() {
    let api = common::api::start(common::memory().await).await;
    // enroll: deletion allowed whatever the power state.
    let n = node(&api, None).await;
    power(&api, n, "power on").await;
    let c = connector(&api, n, "iqn.d").await;
    let t = target(&api, n, 0, json!({})).await;
    let a = api.delete(&format!("/v1/volume/connectors/{c}")).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(a.body, Value::Null);
    assert_eq!(
        api.get(&format!("/v1/volume/connectors/{c}")).await.status,
        StatusCode::NOT_FOUND
    );
    let a = api.delete(&format!("/v1/volume/targets/{t}")).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = api.delete(&format!("/v1/volume/targets/{t}")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(error(&a), format!("Volume target {t} could not be found."));

    // available and powered on: refused; powered off: allowed.
    let n = node(&api, None).await;
    provision(&api, n, "manage").await;
    provision(&api, n, "provide").await;
    let state = api.engine.load_node(n).await.unwrap();
    assert_eq!(state.provision_state, Some(ProvisionState::Available));
    power(&api, n, "power on").await;
    let c = connector(&api, n, "iqn.e").await;
    let t = target(&api, n, 0, json!({})).await;
    let before = events_of(&api, n).await;
    run(&api, vec![
        case(Method::DELETE, format!("/v1/volume/connectors/{c}"), None, 400,
             &format!("The requested action \"volume connector deletion\" can not be performed on node \"{n}\" while it is in state \"power on\".")),
        case(Method::DELETE, format!("/v1/volume/targets/{t}"), None, 400,
             &format!("The requested action \"volume target deletion\" can not be performed on node \"{n}\" while it is in state \"power on\".")),
    ]).await;
    assert_eq!(events_of(&api, n).await, before);
    power(&api, n, "power off").await;
    assert_eq!(
        api.delete(&format!("/v1/volume/connectors/{c}"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        api.delete(&format!("/v1/volume/targets/{t}")).await.status,
        StatusCode::NO_CONTENT
    );
    // A deleted (type, connector_id) can be used again.
    let n2 = node(&api, None).await;
    connector(&api, n2, "iqn.e").await;
}

// ---- concurrency --------------------------------------------------------------------

async fn iqn_race(api: &Api) {
    let n1 = node(api, None).await;
    let n2 = node(api, None).await;
    for round in 0..5 {
        let iqn = format!("iqn.2024-01.org.race:{round}");
        let body = |n: Uuid| json!({"node_uuid": n, "type": "iqn", "connector_id": iqn});
        let (a, b) = tokio::join!(
            api.post("/v1/volume/connectors", body(n1)),
            api.post("/v1/volume/connectors", body(n2))
        );
        let mut statuses = [a.status.as_u16(), b.status.as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [201, 409],
            "round {round}: {:?} / {:?}",
            a.body,
            b.body
        );
        let loser = if a.status == StatusCode::CONFLICT {
            &a
        } else {
            &b
        };
        assert_eq!(
            error(loser),
            format!("A volume connector with type iqn and connector ID {iqn} already exists.")
        );
        let listed = api.get("/v1/volume/connectors?fields=connector_id").await;
        let count = listed.body["connectors"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["connector_id"] == iqn.as_str())
            .count();
        assert_eq!(count, 1);
    }
    let total = api.engine.load_node(n1).await.unwrap().connectors.len()
        + api.engine.load_node(n2).await.unwrap().connectors.len();
    assert_eq!(total, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_of_one_iqn_have_one_winner() {
    let api = common::api::start(common::memory().await).await;
    iqn_race(&api).await;
}

/// Concurrent patches of one connector: each 200 is applied (no lost update).
async fn concurrent_patches(api: &Api) {
    let n = node(api, None).await;
    power(api, n, "power off").await;
    let c = connector(api, n, "iqn.busy").await;
    let path = format!("/v1/volume/connectors/{c}");
    let futures: Vec<_> = (0..8)
        .map(|i| {
            api.patch(
                &path,
                json!([{"op": "add", "path": format!("/extra/k{i}"), "value": i}]),
            )
        })
        .collect();
    let answers = futures::future::join_all(futures).await;
    let ok: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| a.status == StatusCode::OK)
        .map(|(i, _)| i)
        .collect();
    for a in &answers {
        assert!(
            a.status == StatusCode::OK || a.status == StatusCode::CONFLICT,
            "{:?}",
            a.body
        );
    }
    let extra = &api.get(&path).await.body["extra"];
    for i in ok {
        assert_eq!(
            extra[format!("k{i}")],
            json!(i),
            "an acknowledged patch was lost: {extra}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_lose_nothing() {
    let api = common::api::start(common::memory().await).await;
    concurrent_patches(&api).await;
}

// ---- PostgreSQL ----------------------------------------------------------------------

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn iqn_race() {
        let api = common::api::start(common::postgres().await).await;
        super::iqn_race(&api).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_patches_lose_nothing() {
        let api = common::api::start(common::postgres().await).await;
        super::concurrent_patches(&api).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn create_errors() {
        // The same table as on memory, including "no refusal wrote anything".
        let api = common::api::start(common::postgres().await).await;
        super::create_errors_on(&api).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn rehoming_and_masking() {
        let api = common::api::start(common::postgres().await).await;
        let n1 = node(&api, None).await;
        let n2 = node(&api, None).await;
        power(&api, n2, "power off").await;
        let t = target(&api, n1, 0, chap_properties()).await;
        target(&api, n2, 0, json!({})).await;
        let tp = format!("/v1/volume/targets/{t}");
        let a = api
            .patch(
                &tp,
                json!([{"op": "replace", "path": "/node_uuid", "value": n2}]),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        assert_eq!(api.get(&tp).await.body["node_uuid"], n1.to_string());
        let a = api
            .patch(&tp, json!([{"op": "replace", "path": "/node_uuid", "value": n2}, {"op": "replace", "path": "/boot_index", "value": 3}]))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        assert_masked(&a.body["properties"]);
        assert_masked(
            &api.get("/v1/volume/targets?detail=true").await.body["targets"][1]["properties"],
        );
        let stored = api.engine.load_node(n2).await.unwrap();
        assert!(stored
            .targets
            .iter()
            .any(|x| x.properties.get("auth_password") == Some(&json!("chap-secret"))));
    }
}

/// `create_errors`, reusable on any store.
async fn create_errors_on(api: &Api) {
    let n = node(api, None).await;
    let n2 = node(api, None).await;
    let c = connector(api, n, "iqn.taken").await;
    target(api, n, 0, json!({})).await;
    let before = (events_of(api, n).await, events_of(api, n2).await);
    run(api, vec![
        case(Method::POST, "/v1/volume/connectors", Some(json!({"node_uuid": n2, "type": "iqn", "connector_id": "iqn.taken"})), 409,
             "A volume connector with type iqn and connector ID iqn.taken already exists."),
        case(Method::POST, "/v1/volume/connectors", Some(json!({"node_uuid": n2, "type": "iqn", "connector_id": "iqn.x", "uuid": c})), 409,
             &format!("A volume connector with UUID {c} already exists.")),
        case(Method::POST, "/v1/volume/targets", Some(json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v2"})), 409,
             "A volume target with boot index '0' for the same node already exists."),
        case(Method::POST, "/v1/volume/connectors", Some(json!({"node_uuid": MISSING, "type": "iqn", "connector_id": "x"})), 400,
             &format!("Invalid input for field/attribute node_uuid. Value: '{MISSING}'. ")),
        case(Method::POST, "/v1/volume/targets", Some(json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": "0", "volume_id": "v"})), 400,
             "Schema error for target: '0' is not of type 'integer'"),
    ]).await;
    assert_eq!((events_of(api, n).await, events_of(api, n2).await), before);
}
