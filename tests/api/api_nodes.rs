//! The nodes API over real HTTP (`docs/ironic-behaviour.md` §2–§6, §8.2–§8.3): every
//! status and message the node endpoints give, field visibility per
//! microversion, masking, pagination and filters, patch rules, provision and
//! power verbs, maintenance, validation, deletion; bad input is a 4xx in
//! Ironic's envelope, never a 500, and never a partial write.
//!
//! Expected texts are Ironic 39's answers to the same requests (checked against
//! the real Ironic in `shared/peers/ironic`). The main cases also run on
//! PostgreSQL (`mod postgres` at the end).

use crate::common;

use common::api::{Answer, Api};
use ironledger::domain::node::commands::{NewConnector, NewPort, NewTarget};
use ironledger::domain::NodeCommand;
use ironledger::engine::Meta;
use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use uuid::Uuid;

const MISSING: &str = "11111111-2222-4333-8444-555555555555";

fn meta() -> Meta {
    Meta::actor("test")
}

async fn memory_api() -> Api {
    common::api::start(common::memory().await).await
}

/// POSTs a node and returns its uuid (the answer must be a 201).
async fn create(api: &Api, body: Value) -> String {
    let a = api.post("/v1/nodes", body.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{body}: {:?}", a.body);
    a.body["uuid"].as_str().unwrap().to_string()
}

/// The number of events a node has (to prove a refusal wrote nothing).
/// A GET at an explicit microversion, its body.
async fn get_at(api: &Api, path: &str, version: &str) -> Value {
    api.call_v(Method::GET, path, None, Some(version))
        .await
        .body
}

async fn events_of(api: &Api, node: &str) -> usize {
    api.store.store.load("Node", node).await.unwrap().len()
}

async fn node_count(api: &Api) -> usize {
    api.store.store.doc_list("nodes").await.unwrap().len()
}

async fn engine(api: &Api, node: &str, cmd: NodeCommand) {
    api.engine
        .node(Uuid::parse_str(node).unwrap(), cmd, &meta())
        .await
        .expect("engine command");
}

async fn verb(api: &Api, node: &str, target: &str) -> Answer {
    api.put(
        &format!("/v1/nodes/{node}/states/provision"),
        json!({ "target": target }),
    )
    .await
}

/// Moves a node to `available` through the API.
async fn make_available(api: &Api, node: &str) {
    for v in ["manage", "provide"] {
        let a = verb(api, node, v).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{v}: {:?}", a.body);
    }
}

/// Moves a node to `active` (the deploy finished as the process manager reports it).
async fn make_active(api: &Api, node: &str) {
    api.make_bootable(node).await;
    make_available(api, node).await;
    assert_eq!(verb(api, node, "active").await.status, StatusCode::ACCEPTED);
    engine(api, node, NodeCommand::FinishDeploy).await;
}

/// Asserts an error answer: status, Ironic's envelope, and the message.
#[track_caller]
fn refused(a: &Answer, status: u16, message: &str) {
    assert_eq!(a.status.as_u16(), status, "{:?}", a.body);
    assert_eq!(
        a.headers["content-type"], "application/json",
        "errors are JSON"
    );
    assert_eq!(a.error(), message, "{:?}", a.body);
}

// ---- create and show ---------------------------------------------------------------

async fn create_and_show_on(api: &Api) {
    let a = api
        .post(
            "/v1/nodes",
            json!({"driver": "fake-hardware", "name": "bfv-1", "storage_interface": "cinder",
                   "boot_interface": "ipxe",
                   "properties": {"capabilities": "iscsi_boot:True"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let uuid = a.body["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        a.headers["location"],
        format!("{}/v1/nodes/{uuid}", api.base).as_str()
    );
    let n = &a.body;
    assert_eq!(n["provision_state"], "enroll");
    assert_eq!(n["target_provision_state"], Value::Null);
    assert_eq!(n["storage_interface"], "cinder");
    assert_eq!(n["boot_interface"], "ipxe");
    assert_eq!(n["properties"]["capabilities"], "iscsi_boot:True");
    assert_eq!(n["updated_at"], Value::Null);
    assert_eq!(n["provision_updated_at"], Value::Null);
    assert!(n["created_at"].as_str().unwrap().ends_with("+00:00"));
    // Fields ironledger keeps no data for, with Ironic's empty values.
    for (k, v) in [
        ("clean_step", json!({})),
        ("deploy_step", json!({})),
        ("raid_config", json!({})),
        ("traits", json!([])),
        ("console_enabled", json!(false)),
        ("protected", json!(false)),
        ("retired", json!(false)),
        ("conductor_group", json!("")),
        ("network_data", json!({})),
        ("fault", Value::Null),
        ("reservation", Value::Null),
        ("allocation_uuid", Value::Null),
        ("boot_mode", Value::Null),
    ] {
        assert_eq!(n[k], v, "{k}");
    }
    // Newer than 1.78: not shown.
    for k in [
        "shard",
        "parent_node",
        "firmware_interface",
        "disable_power_off",
        "instance_name",
    ] {
        assert!(n.get(k).is_none(), "{k}");
    }
    for (sub, rel) in [
        ("ports", 0),
        ("states", 0),
        ("portgroups", 0),
        ("volume", 0),
    ] {
        assert_eq!(
            n[sub][rel]["href"],
            format!("{}/v1/nodes/{uuid}/{sub}", api.base),
            "{sub}"
        );
        assert_eq!(n[sub][1]["rel"], "bookmark");
    }
    assert_eq!(
        n["links"],
        json!([
            {"href": format!("{}/v1/nodes/{uuid}", api.base), "rel": "self"},
            {"href": format!("{}/nodes/{uuid}", api.base), "rel": "bookmark"},
        ])
    );

    // Read your writes, by uuid and by name.
    let by_uuid = api.get(&format!("/v1/nodes/{uuid}")).await;
    let by_name = api.get("/v1/nodes/bfv-1").await;
    assert_eq!(by_uuid.status, StatusCode::OK);
    assert_eq!(by_uuid.body, by_name.body);
    assert_eq!(by_uuid.body, a.body);

    // `fields`.
    let a = api.get(&format!("/v1/nodes/{uuid}?fields=uuid,Name")).await;
    assert_eq!(
        a.body,
        json!({"uuid": uuid, "name": "bfv-1", "links": n["links"]})
    );
    let a = api.get(&format!("/v1/nodes/{uuid}?fields=")).await;
    assert_eq!(a.body, json!({"links": n["links"]}));
}

#[tokio::test]
async fn create_and_show() {
    create_and_show_on(&memory_api().await).await;
}

#[tokio::test]
async fn initial_state_and_available_by_version() {
    let api = memory_api().await;
    // Before 1.11 a node starts available; before 1.2 available shows as null.
    let a = api
        .call_v(
            Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware"})),
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["provision_state"], Value::Null);
    let uuid = a.body["uuid"].as_str().unwrap();
    let path = format!("/v1/nodes/{uuid}");
    assert_eq!(
        get_at(&api, &path, "1.2").await["provision_state"],
        "available"
    );
    assert_eq!(
        get_at(&api, &path, "1.1").await["provision_state"],
        Value::Null
    );
    let a = api
        .call_v(
            Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware"})),
            Some("1.10"),
        )
        .await;
    assert_eq!(a.body["provision_state"], "available");
    let a = api
        .call_v(
            Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware"})),
            Some("1.11"),
        )
        .await;
    assert_eq!(a.body["provision_state"], "enroll");
    let states = api
        .call_v(
            Method::GET,
            &format!("/v1/nodes/{uuid}/states"),
            None,
            Some("1.1"),
        )
        .await;
    assert_eq!(states.body["provision_state"], Value::Null);
}

#[tokio::test]
async fn fields_follow_the_microversion() {
    let api = memory_api().await;
    let uuid = create(&api, json!({"driver": "fake-hardware", "name": "v"})).await;
    let node_path = format!("/v1/nodes/{uuid}");
    let at = |v: &'static str| get_at(&api, &node_path, v);
    let n = at("1.1").await;
    for k in [
        "name",
        "driver_internal_info",
        "storage_interface",
        "boot_interface",
        "states",
        "volume",
        "portgroups",
        "resource_class",
        "conductor",
    ] {
        assert!(n.get(k).is_none(), "1.1 shows {k}");
    }
    for k in [
        "uuid",
        "driver",
        "ports",
        "links",
        "chassis_uuid",
        "instance_info",
        "maintenance",
    ] {
        assert!(n.get(k).is_some(), "1.1 lacks {k}");
    }
    let n = at("1.31").await;
    assert!(n.get("boot_interface").is_some() && n.get("states").is_some());
    assert!(n.get("volume").is_none() && n.get("storage_interface").is_none());
    let n = at("1.32").await;
    assert!(n.get("volume").is_some() && n.get("storage_interface").is_none());
    let n = at("1.33").await;
    assert_eq!(n["storage_interface"], "noop");
    assert!(n.get("conductor").is_none() && n.get("lessee").is_none());
    let n = at("1.65").await;
    assert!(n.get("lessee").is_some() && n.get("network_data").is_none());

    let path = format!("/v1/nodes/{uuid}?fields=storage_interface");
    refused(
        &api.call_v(Method::GET, &path, None, Some("1.32")).await,
        406,
        "Request not acceptable.",
    );
    let a = api.call_v(Method::GET, &path, None, Some("1.33")).await;
    assert_eq!(a.body["storage_interface"], "noop");
    let path = format!("/v1/nodes/{uuid}?fields=uuid");
    refused(
        &api.call_v(Method::GET, &path, None, Some("1.7")).await,
        406,
        "Request not acceptable.",
    );
    refused(
        &api.get(&format!("/v1/nodes/{uuid}?fields=uuid,bogus"))
            .await,
        400,
        "Field bogus is not a valid field.",
    );
    refused(
        &api.get(&format!("/v1/nodes/{uuid}?fields=created_at"))
            .await,
        400,
        "Field created_at is not a valid field.",
    );
    refused(
        &api.get(&format!("/v1/nodes/{uuid}?detail=true")).await,
        400,
        "Unexpected arguments: detail",
    );
}

#[tokio::test]
async fn secrets_are_masked_and_kept() {
    let api = memory_api().await;
    let uuid = create(
        &api,
        json!({"driver": "fake-hardware",
               "instance_info": {"image_url": "http://x/y", "configdrive": {"meta_data": {}},
                                 "foo_password": "p", "image_source": "http://img", "n": 1},
               "driver_info": {"ipmi_password": "secret", "deploy_kernel": "k", "snmp_auth_key": "a"}}),
    )
    .await;
    for path in [format!("/v1/nodes/{uuid}"), "/v1/nodes/detail".to_string()] {
        let a = api.get(&path).await;
        let n = if a.body.get("nodes").is_some() {
            a.body["nodes"][0].clone()
        } else {
            a.body
        };
        assert_eq!(
            n["instance_info"],
            json!({"image_url": "******", "configdrive": "******", "foo_password": "******",
                   "image_source": "http://img", "n": 1})
        );
        assert_eq!(
            n["driver_info"],
            json!({"ipmi_password": "******", "deploy_kernel": "k", "snmp_auth_key": "******"})
        );
        assert!(!n.to_string().contains("secret"));
    }
    let stored = api
        .engine
        .load_node(Uuid::parse_str(&uuid).unwrap())
        .await
        .unwrap();
    assert_eq!(stored.driver_info["ipmi_password"], "secret");
    assert_eq!(stored.instance_info["image_url"], "http://x/y");
}

async fn create_errors_on(api: &Api) {
    let existing = create(api, json!({"driver": "fake-hardware", "name": "taken"})).await;
    let before = node_count(api).await;
    let cases: Vec<(Value, u16, String)> = vec![
        (json!({"driver": "fake-hardware", "bogus": 1}), 400,
         "Schema error for node: Additional properties are not allowed ('bogus' was unexpected)".into()),
        (json!({}), 400, "Schema error for node: 'driver' is a required property".into()),
        (json!({"driver": 1}), 400, "Schema error for node: 1 is not of type 'string'".into()),
        (json!({"driver": "fake-hardware", "name": 5}), 400,
         "Schema error for node: 5 is not of type 'string', 'null'".into()),
        (json!({"driver": "fake-hardware", "extra": [1]}), 400,
         "Schema error for node: [1] is not of type 'object', 'null'".into()),
        (json!([1, 2]), 400, "Schema error for node: [1, 2] is not of type 'object'".into()),
        (json!({"driver": "fake-hardware", "uuid": "abc"}), 400, "Expected UUID for uuid: abc".into()),
        (json!({"driver": "fake-hardware", "maintenance": "maybe"}), 400,
         "Invalid maintenance: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'".into()),
        (json!({"driver": "fake-hardware", "name": "bad name"}), 400,
         "Cannot create node with invalid name 'bad name'".into()),
        (json!({"driver": "fake-hardware", "name": "detail"}), 400,
         "The word \"detail\" is reserved and can not be used as a node name. Reserved words are: maintenance, management, states, vendor_passthru, detail, validate.".into()),
        (json!({"driver": "fake-hardware", "name": "taken"}), 409,
         "A node with name taken already exists.".into()),
        (json!({"driver": "fake-hardware", "uuid": existing}), 409,
         format!("A node with UUID {existing} already exists.")),
        (json!({"driver": "nope"}), 400,
         "No valid host was found. Reason: No conductor service registered which supports driver nope for conductor group \"\". Ensure the driver is valid and enabled.".into()),
        (json!({"driver": "fake-hardware", "storage_interface": "magic"}), 400,
         "Could not find the following interface in the 'ironic.hardware.interfaces.storage' entrypoint: magic. Valid interfaces are ['cinder', 'external', 'noop'].".into()),
        (json!({"driver": "fake-hardware", "shard": "s1"}), 406, "Request not acceptable.".into()),
        (json!({"driver": "fake-hardware", "description": "d".repeat(4097)}), 400,
         format!("Schema error for node: '{}' is too long", "d".repeat(4097))),
    ];
    for (body, status, message) in cases {
        let a = api.post("/v1/nodes", body.clone()).await;
        assert_eq!(a.status.as_u16(), status, "{body}: {:?}", a.body);
        assert_eq!(a.error(), message, "{body}");
    }
    // Fields newer than the version.
    let a = api
        .call_v(
            Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "storage_interface": "cinder"})),
            Some("1.32"),
        )
        .await;
    refused(&a, 406, "Request not acceptable.");
    let a = api
        .call_v(
            Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": "n"})),
            Some("1.4"),
        )
        .await;
    refused(&a, 406, "Request not acceptable.");
    let a = api
        .call_v(
            Method::POST,
            "/v1/nodes",
            Some(json!({"driver": "fake-hardware", "name": "Upper_1"})),
            Some("1.9"),
        )
        .await;
    refused(&a, 400, "Cannot create node with invalid name 'Upper_1'");
    // Malformed JSON is a 400 (Ironic: 500), never a server error.
    let res = api
        .client
        .post(format!("{}/v1/nodes", api.base))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(node_count(api).await, before, "no partial write");
}

#[tokio::test]
async fn create_errors() {
    create_errors_on(&memory_api().await).await;
}

#[tokio::test]
async fn create_values_ironic_accepts() {
    let api = memory_api().await;
    let chosen = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123";
    let a = api
        .post(
            "/v1/nodes",
            json!({"driver": "manual-management", "uuid": chosen, "maintenance": "true",
                   "instance_uuid": "8b0b4bb5-6f9c-4c2a-9d0e-6f1f6a9a0b11",
                   "storage_interface": null, "description": "rack 4", "owner": "p1",
                   "automated_clean": "false", "extra": null, "resource_class": "gold"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let n = &a.body;
    assert_eq!(n["uuid"], chosen);
    assert_eq!(n["maintenance"], true);
    assert_eq!(n["instance_uuid"], "8b0b4bb5-6f9c-4c2a-9d0e-6f1f6a9a0b11");
    assert_eq!(n["storage_interface"], "noop");
    assert_eq!(n["automated_clean"], false);
    assert_eq!(n["extra"], json!({}));
    assert_eq!(n["bios_interface"], "no-bios");
    assert_eq!(n["resource_class"], "gold");
    // Values ironledger cannot keep are refused rather than dropped.
    let a = api
        .post(
            "/v1/nodes",
            json!({"driver": "fake-hardware", "boot_mode": "uefi"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = api
        .post(
            "/v1/nodes",
            json!({"driver": "fake-hardware", "chassis_uuid": MISSING}),
        )
        .await;
    refused(&a, 400, &format!("Chassis {MISSING} could not be found."));
}

#[tokio::test]
async fn lookup_errors() {
    let api = memory_api().await;
    create(&api, json!({"driver": "fake-hardware", "name": "known"})).await;
    refused(
        &api.get(&format!("/v1/nodes/{MISSING}")).await,
        404,
        &format!("Node {MISSING} could not be found."),
    );
    refused(
        &api.get("/v1/nodes/unknown-name").await,
        404,
        "Node unknown-name could not be found.",
    );
    // Not a uuid nor a name: the routing layer's 400 (framework envelope).
    let a = api.get("/v1/nodes/bad%20name").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.error(), "Expected UUID or name for node: bad name");
    // Names only exist from 1.5.
    let a = api
        .call_v(Method::GET, "/v1/nodes/known", None, Some("1.4"))
        .await;
    refused(&a, 404, "Node known could not be found.");
    // A method the path does not take.
    let a = api.call(Method::PUT, "/v1/nodes", Some(json!({}))).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(a.body.get("error_message").is_some());
}

// ---- lists -----------------------------------------------------------------------

async fn list_pagination_on(api: &Api) {
    let mut uuids = vec![];
    for name in ["n-c", "n-a", "n-e", "n-b", "n-d"] {
        uuids.push(create(api, json!({"driver": "fake-hardware", "name": name})).await);
    }
    // Default: creation order, default fields.
    let a = api.get("/v1/nodes").await;
    let got: Vec<&str> = a.body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(got, uuids.iter().map(String::as_str).collect::<Vec<_>>());
    let first = &a.body["nodes"][0];
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7, "{keys:?}");
    for k in [
        "uuid",
        "name",
        "instance_uuid",
        "maintenance",
        "power_state",
        "provision_state",
        "links",
    ] {
        assert!(first.get(k).is_some(), "{k}");
    }
    assert!(a.body.get("next").is_none());

    // Pages of two: a `next` link in Ironic's form whenever a page is full.
    let a = api.get("/v1/nodes?limit=2").await;
    assert_eq!(a.body["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(
        a.body["next"],
        format!("{}/v1/nodes?sort_key=id&sort_dir=asc&fields=instance_uuid,maintenance,power_state,provision_state,uuid,name&limit=2&marker={}", api.base, uuids[1])
    );
    let mut seen = vec![];
    let mut next = Some("/v1/nodes?limit=2".to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let a = api.get(&path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
        for n in a.body["nodes"].as_array().unwrap() {
            seen.push(n["uuid"].as_str().unwrap().to_string());
        }
        next = a.body["next"]
            .as_str()
            .map(|u| u.trim_start_matches(&api.base).to_string());
        pages += 1;
    }
    assert_eq!(seen, uuids);
    assert_eq!(pages, 3);
    // A full last page still has a next link (Ironic's quirk), to an empty page.
    let a = api.get("/v1/nodes?limit=5").await;
    assert!(a.body["next"].is_string());
    let a = api
        .get(&format!("/v1/nodes?limit=5&marker={}", uuids[4]))
        .await;
    assert_eq!(a.body, json!({"nodes": []}));

    // Sorting, both ways.
    let a = api
        .get("/v1/nodes?sort_key=name&sort_dir=desc&fields=name")
        .await;
    let names: Vec<&str> = a.body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n-e", "n-d", "n-c", "n-b", "n-a"]);
    let a = api.get("/v1/nodes?sort_key=name&limit=2&fields=name").await;
    assert_eq!(
        a.body["next"],
        format!(
            "{}/v1/nodes?sort_key=name&sort_dir=asc&fields=name&limit=2&marker={}",
            api.base, uuids[3]
        )
    );
    let a = api
        .get(&format!(
            "/v1/nodes?sort_key=name&marker={}&fields=name",
            uuids[3]
        ))
        .await;
    let names: Vec<&str> = a.body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["n-c", "n-d", "n-e"]);

    // Detail.
    for path in ["/v1/nodes/detail", "/v1/nodes?detail=True"] {
        let a = api.get(path).await;
        let n = &a.body["nodes"][0];
        assert!(
            n.get("driver").is_some() && n.get("ports").is_some() && n.get("volume").is_some(),
            "{path}"
        );
    }
    let a = api.get("/v1/nodes?detail=true&limit=1").await;
    assert_eq!(
        a.body["next"],
        format!(
            "{}/v1/nodes?sort_key=id&sort_dir=asc&detail=True&limit=1&marker={}",
            api.base, uuids[0]
        )
    );
    let a = api
        .get("/v1/nodes/detail?limit=1&maintenance=false&associated=true")
        .await;
    assert_eq!(a.body, json!({"nodes": []}));
    let a = api.get("/v1/nodes/detail?limit=1&maintenance=false").await;
    assert_eq!(
        a.body["next"],
        format!(
            "{}/v1/nodes/detail?sort_key=id&sort_dir=asc&limit=1&marker={}",
            api.base, uuids[0]
        )
    );
}

#[tokio::test]
async fn list_pagination() {
    list_pagination_on(&memory_api().await).await;
}

#[tokio::test]
async fn list_parameter_errors() {
    let api = memory_api().await;
    create(&api, json!({"driver": "fake-hardware"})).await;
    let cases: &[(&str, Option<&str>, u16, &str)] = &[
        ("/v1/nodes?limit=0", None, 400, "Limit must be positive"),
        ("/v1/nodes?limit=abc", None, 400, "Expected an integer for limit: abc"),
        ("/v1/nodes?marker=abc", None, 400, "Expected UUID for marker: abc"),
        ("/v1/nodes?marker=11111111-2222-4333-8444-555555555555", None, 404,
         "Node 11111111-2222-4333-8444-555555555555 could not be found."),
        ("/v1/nodes?sort_dir=up", None, 400, "Invalid sort direction: up. Acceptable values are 'asc' or 'desc'"),
        ("/v1/nodes?sort_key=properties", None, 400, "The sort_key value properties is an invalid field for sorting"),
        ("/v1/nodes?sort_key=bogus", None, 400, "The sort_key value \"bogus\" is an invalid field for sorting"),
        ("/v1/nodes?sort_key=conductor", None, 400, "The sort_key value \"conductor\" is an invalid field for sorting"),
        ("/v1/nodes?sort_key=storage_interface", Some("1.32"), 406, "Request not acceptable."),
        ("/v1/nodes?detail=true&fields=uuid", None, 400, "Can not specify ?detail=True and fields in the same request."),
        ("/v1/nodes?detail=maybe", None, 400,
         "Invalid detail: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"),
        ("/v1/nodes?detail=true", Some("1.42"), 400, "Invalid query parameter ?detail=True received."),
        ("/v1/nodes?provision_state=bogus", None, 400, "Provision state \"bogus\" is not valid"),
        ("/v1/nodes?provision_state=enroll", Some("1.8"), 406, "Request not acceptable."),
        ("/v1/nodes?driver=fake-hardware", Some("1.15"), 406,
         "Request not acceptable. The minimal required API version should be 1.16"),
        ("/v1/nodes?maintenance=xx", None, 400,
         "Invalid maintenance: Unrecognized value 'xx', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"),
        ("/v1/nodes?associated=xx", None, 400,
         "Invalid associated: Unrecognized value 'xx', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"),
        ("/v1/nodes?instance_uuid=xx", None, 400, "Expected UUID for instance_uuid: xx"),
        ("/v1/nodes?bogus=1", None, 400, "Unexpected arguments: bogus"),
        ("/v1/nodes?fault=bogus", None, 400,
         "Unrecognized fault \"bogus\" is specified, allowed faults are ('power failure', 'clean failure', 'rescue abort failure', 'service failure')"),
        ("/v1/nodes?fields=bogus", None, 400, "Field bogus is not a valid field."),
        ("/v1/nodes?fields=uuid", Some("1.7"), 406, "Request not acceptable."),
        ("/v1/nodes?shard=a", None, 406, "Request not acceptable. The minimal required API version should be 1.82"),
        ("/v1/nodes/detail?fields=uuid", None, 400, "Unexpected arguments: fields"),
        ("/v1/nodes/detail?detail=True", None, 400, "Unexpected arguments: detail"),
    ];
    for (path, version, status, message) in cases {
        let a = api
            .call_v(Method::GET, path, None, Some(version.unwrap_or("1.78")))
            .await;
        assert_eq!(a.status.as_u16(), *status, "{path}: {:?}", a.body);
        assert_eq!(a.error(), *message, "{path}");
    }
}

#[tokio::test]
async fn list_filters() {
    let api = memory_api().await;
    let instance = "8b0b4bb5-6f9c-4c2a-9d0e-6f1f6a9a0b11";
    let a = create(
        &api,
        json!({"driver": "fake-hardware", "resource_class": "gold", "owner": "p1",
                                "description": "rack 4 left"}),
    )
    .await;
    let b = create(
        &api,
        json!({"driver": "manual-management", "lessee": "p2", "conductor_group": "g1",
                                "instance_uuid": instance}),
    )
    .await;
    let c = create(
        &api,
        json!({"driver": "fake-hardware", "maintenance": true}),
    )
    .await;
    make_available(&api, &a).await;
    let uuids = |path: &str| {
        let api = &api;
        let path = format!(
            "{path}{}fields=uuid",
            if path.contains('?') { "&" } else { "?" }
        );
        async move {
            let a = api.get(&path).await;
            assert_eq!(a.status, StatusCode::OK, "{path}: {:?}", a.body);
            let mut v: Vec<String> = a.body["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["uuid"].as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        }
    };
    let sorted = |mut v: Vec<&String>| {
        v.sort();
        v.into_iter().cloned().collect::<Vec<String>>()
    };
    assert_eq!(
        uuids("/v1/nodes?provision_state=available").await,
        vec![a.clone()]
    );
    assert_eq!(
        uuids("/v1/nodes?provision_state=enroll").await,
        sorted(vec![&b, &c])
    );
    assert_eq!(
        uuids("/v1/nodes?provision_state=rescue").await,
        Vec::<String>::new()
    );
    assert_eq!(
        uuids("/v1/nodes?driver=manual-management").await,
        vec![b.clone()]
    );
    assert_eq!(uuids("/v1/nodes?maintenance=true").await, vec![c.clone()]);
    assert_eq!(
        uuids("/v1/nodes?maintenance=false").await,
        sorted(vec![&a, &b])
    );
    assert_eq!(uuids("/v1/nodes?associated=True").await, vec![b.clone()]);
    assert_eq!(uuids("/v1/nodes?associated=0").await, sorted(vec![&a, &c]));
    assert_eq!(
        uuids(&format!("/v1/nodes?instance_uuid={instance}")).await,
        vec![b.clone()]
    );
    assert_eq!(
        uuids("/v1/nodes?resource_class=gold").await,
        vec![a.clone()]
    );
    assert_eq!(uuids("/v1/nodes?owner=p1").await, vec![a.clone()]);
    assert_eq!(uuids("/v1/nodes?lessee=p2").await, vec![b.clone()]);
    assert_eq!(uuids("/v1/nodes?project=p2").await, vec![b.clone()]);
    assert_eq!(uuids("/v1/nodes?conductor_group=G1").await, vec![b.clone()]);
    assert_eq!(
        uuids("/v1/nodes?description_contains=rack%204").await,
        vec![a.clone()]
    );
    assert_eq!(
        uuids("/v1/nodes?fault=power%20failure").await,
        Vec::<String>::new()
    );
    assert_eq!(
        uuids("/v1/nodes?driver=fake-hardware&maintenance=false").await,
        vec![a.clone()]
    );
    // A lookup by instance never offers a next page, even when full.
    let one = api
        .get(&format!("/v1/nodes?instance_uuid={instance}&limit=1"))
        .await;
    assert_eq!(one.body["nodes"].as_array().unwrap().len(), 1);
    assert!(one.body.get("next").is_none());
    // Filters are not carried by next links, but associated/maintenance=True are.
    let page = api.get("/v1/nodes?maintenance=true&limit=1").await;
    assert_eq!(
        page.body["next"],
        format!("{}/v1/nodes?sort_key=id&sort_dir=asc&maintenance=True&fields=instance_uuid,maintenance,power_state,provision_state,uuid,name&limit=1&marker={c}", api.base)
    );
}

// ---- patch -----------------------------------------------------------------------

const PATCHABLE: &str = "automated_clean, bios_interface, boot_interface, chassis_uuid, conductor_group, console_interface, deploy_interface, description, disable_power_off, driver, driver_info, extra, inspect_interface, instance_info, instance_name, instance_uuid, lessee, maintenance, management_interface, name, network_data, network_interface, owner, power_interface, properties, protected, protected_reason, raid_interface, rescue_interface, resource_class, retired, retired_reason, shard, storage_interface, vendor_interface, parent_node, firmware_interface";

async fn patch_rules_on(api: &Api) {
    let uuid = create(
        api,
        json!({"driver": "fake-hardware", "name": "p-1", "extra": {"k": "v"}}),
    )
    .await;
    create(api, json!({"driver": "fake-hardware", "name": "p-2"})).await;
    let path = format!("/v1/nodes/{uuid}");
    let before = events_of(api, &uuid).await;
    let cases: Vec<(Value, u16, String)> = vec![
        (json!([{"op": "replace", "path": "/uuid", "value": MISSING}]), 400,
         format!("Cannot patch /uuid. Only the following can be updated: {PATCHABLE}")),
        (json!([{"op": "add", "path": "/foo", "value": 1}]), 400,
         format!("Cannot patch /foo. Only the following can be updated: {PATCHABLE}")),
        (json!([{"op": "replace", "path": "/provision_state", "value": "active"}]), 400,
         format!("Cannot patch /provision_state. Only the following can be updated: {PATCHABLE}")),
        (json!([{"op": "move", "path": "/extra/a", "from": "/extra/b"}]), 400,
         "Schema error for patch: Additional properties are not allowed ('from' was unexpected)".into()),
        (json!([{"op": "copy", "path": "/extra/a"}]), 400,
         "Schema error for patch: 'copy' is not one of ['add', 'replace', 'remove']".into()),
        (json!({"op": "remove", "path": "/extra/k"}), 400,
         "Schema error for patch: {'op': 'remove', 'path': '/extra/k'} is not of type 'array'".into()),
        (json!([{"op": "replace", "path": "extra", "value": {}}]), 400,
         "Schema error for patch: 'extra' does not match '^(/[\\\\w-]+)+$'".into()),
        (json!([{"op": "add", "path": "/extra/foo"}]), 400,
         "Couldn't apply patch '{'op': 'add', 'path': '/extra/foo'}'. Reason: The operation does not contain a 'value' member".into()),
        (json!([{"op": "remove", "path": "/extra/nothere"}]), 400,
         "Couldn't apply patch '{'op': 'remove', 'path': '/extra/nothere'}'. Reason: can't remove a non-existent object 'nothere'".into()),
        (json!([{"op": "replace", "path": "/extra", "value": 5}]), 400,
         "Schema error for patch: 5 is not of type 'object', 'null'".into()),
        (json!([{"op": "remove", "path": "/driver"}]), 400,
         "Schema error for patch: 'driver' is a required property".into()),
        (json!([{"op": "replace", "path": "/name", "value": "bad name"}]), 400,
         format!("Node {uuid}: Cannot change name to invalid name 'bad name'")),
        (json!([{"op": "replace", "path": "/name", "value": "p-2"}]), 409,
         "A node with name p-2 already exists.".into()),
        (json!([{"op": "replace", "path": "/driver", "value": "nope"}]), 400,
         "No valid host was found. Reason: No conductor service registered which supports driver nope for conductor group \"\". Ensure the driver is valid and enabled.".into()),
        (json!([{"op": "replace", "path": "/storage_interface", "value": "magic"}]), 400,
         "Could not find the following interface in the 'ironic.hardware.interfaces.storage' entrypoint: magic. Valid interfaces are ['cinder', 'external', 'noop'].".into()),
        (json!([{"op": "replace", "path": "/maintenance", "value": "maybe"}]), 400,
         "Invalid maintenance: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'".into()),
        (json!([{"op": "replace", "path": "/instance_uuid", "value": "abc"}]), 400,
         "Expected UUID for instance_uuid: abc".into()),
        (json!([{"op": "add", "path": "/description", "value": "d".repeat(4097)}]), 400,
         "Cannot update node with description exceeding 4096 characters".into()),
        (json!([{"op": "add", "path": "/shard", "value": "s"}]), 406, "Request not acceptable.".into()),
        (json!([{"op": "add", "path": "/extra/ok", "value": 1},
                {"op": "replace", "path": "/protected", "value": true}]), 409,
         format!("Node {uuid} can only be made protected in provision states 'active' or 'rescue', the current state is 'enroll'")),
        (json!([{"op": "add", "path": "/protected_reason", "value": "x"}]), 400,
         "The protected_reason field can only be set when protected is True".into()),
    ];
    for (body, status, message) in cases {
        let a = api.patch(&path, body.clone()).await;
        assert_eq!(a.status.as_u16(), status, "{body}: {:?}", a.body);
        assert_eq!(a.error(), message, "{body}");
    }
    let a = api
        .patch(
            &format!("{path}?reset_interfaces=true"),
            json!([{"op": "add", "path": "/extra/a", "value": 1}]),
        )
        .await;
    refused(
        &a,
        400,
        "The reset_interfaces parameter can only be used when changing the node's driver.",
    );
    let a = api
        .call_v(
            Method::PATCH,
            &format!("{path}?reset_interfaces=true"),
            Some(json!([{"op": "replace", "path": "/driver", "value": "manual-management"}])),
            Some("1.44"),
        )
        .await;
    refused(&a, 406, "Request not acceptable.");
    // storage_interface is a 1.33 field: any value below is a 406…
    let a = api
        .call_v(
            Method::PATCH,
            &path,
            Some(json!([{"op": "replace", "path": "/storage_interface", "value": "cinder"}])),
            Some("1.32"),
        )
        .await;
    refused(&a, 406, "Request not acceptable.");
    assert_eq!(
        events_of(api, &uuid).await,
        before,
        "no refusal wrote anything"
    );

    // …while removing it is allowed (it resets to the default), as in Ironic.
    let a = api
        .patch(
            &path,
            json!([{"op": "replace", "path": "/storage_interface", "value": "cinder"}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["storage_interface"], "cinder");
    let a = api
        .call_v(
            Method::PATCH,
            &path,
            Some(json!([{"op": "remove", "path": "/storage_interface"}])),
            Some("1.32"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert!(a.body.get("storage_interface").is_none());
    assert_eq!(api.get(&path).await.body["storage_interface"], "noop");

    // A valid patch: one 200 with the whole node, every change applied.
    let a = api
        .patch(
            "/v1/nodes/p-1",
            json!([
                {"op": "add", "path": "/properties/capabilities", "value": "iscsi_boot:True"},
                {"op": "add", "path": "/instance_info/image_source", "value": "http://img"},
                {"op": "remove", "path": "/extra/k"},
                {"op": "replace", "path": "/maintenance", "value": "yes"},
                {"op": "replace", "path": "/conductor_group", "value": "Rack-A"},
                {"op": "replace", "path": "/name", "value": "p-3"},
                {"op": "add", "path": "/instance_info/admin_password", "value": "pw"},
            ]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let n = &a.body;
    assert_eq!(n["properties"]["capabilities"], "iscsi_boot:True");
    assert_eq!(n["instance_info"]["image_source"], "http://img");
    assert_eq!(n["instance_info"]["admin_password"], "******");
    assert_eq!(n["extra"], json!({}));
    assert_eq!(n["maintenance"], true);
    assert_eq!(n["conductor_group"], "rack-a");
    assert_eq!(n["name"], "p-3");
    assert!(n["updated_at"].is_string());
    assert_eq!(api.get(&path).await.body, a.body);
    // An empty patch changes nothing and answers the node.
    let count = events_of(api, &uuid).await;
    let a = api.patch(&path, json!([])).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["uuid"], uuid);
    assert_eq!(events_of(api, &uuid).await, count);
    // Changing the driver with reset_interfaces resets every interface not patched.
    let a = api
        .patch(
            &format!("{path}?reset_interfaces=true"),
            json!([{"op": "replace", "path": "/driver", "value": "manual-management"},
                   {"op": "replace", "path": "/storage_interface", "value": "cinder"}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["driver"], "manual-management");
    assert_eq!(a.body["bios_interface"], "no-bios");
    assert_eq!(a.body["storage_interface"], "cinder");
}

#[tokio::test]
async fn patch_rules() {
    patch_rules_on(&memory_api().await).await;
}

#[tokio::test]
async fn patch_during_a_transition_and_interface_rules() {
    let api = memory_api().await;
    let uuid = create(
        &api,
        json!({"driver": "fake-hardware", "name": "busy", "storage_interface": "external"}),
    )
    .await;
    api.make_bootable(&uuid).await;
    make_available(&api, &uuid).await;
    assert_eq!(
        verb(&api, &uuid, "active").await.status,
        StatusCode::ACCEPTED
    );
    // deploying (target active): 409, naming the node as the client did.
    let before = events_of(&api, &uuid).await;
    for ident in [uuid.as_str(), "busy"] {
        let a = api
            .patch(
                &format!("/v1/nodes/{ident}"),
                json!([{"op": "add", "path": "/extra/a", "value": 1}]),
            )
            .await;
        refused(
            &a,
            409,
            &format!("Node {ident} can not be updated while a state transition is in progress."),
        );
    }
    assert_eq!(events_of(&api, &uuid).await, before);
    engine(&api, &uuid, NodeCommand::FinishDeploy).await;
    // active: other fields may change, interfaces may not (unless in maintenance).
    let a = api
        .patch(
            &format!("/v1/nodes/{uuid}"),
            json!([{"op": "add", "path": "/extra/a", "value": 1}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let a = api
        .patch(
            &format!("/v1/nodes/{uuid}"),
            json!([{"op": "replace", "path": "/storage_interface", "value": "cinder"}]),
        )
        .await;
    refused(&a, 409, &format!("Node {uuid} can not have storage_interface updated unless it is in one of allowed (enroll, inspecting, inspect wait, manageable, available) states or in maintenance mode. Current state is 'active'."));
    let a = api
        .patch(&format!("/v1/nodes/{uuid}"), json!([{"op": "replace", "path": "/maintenance", "value": true},
                                                    {"op": "replace", "path": "/storage_interface", "value": "cinder"}]))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["storage_interface"], "cinder");
    // Protection only in active.
    let a = api.patch(&format!("/v1/nodes/{uuid}"), json!([{"op": "replace", "path": "/protected", "value": "true"},
                                                          {"op": "add", "path": "/protected_reason", "value": "prod"}])).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["protected"], true);
    assert_eq!(a.body["protected_reason"], "prod");
}

// ---- provision, power, maintenance, states --------------------------------------------

async fn provision_on(api: &Api) {
    let uuid = create(api, json!({"driver": "fake-hardware", "name": "prov"})).await;
    api.make_bootable(&uuid).await;
    let path = format!("/v1/nodes/{uuid}/states/provision");
    let before = events_of(api, &uuid).await;
    let put = |body: Value, v: &'static str| {
        let path = path.clone();
        async move { api.call_v(Method::PUT, &path, Some(body), Some(v)).await }
    };
    let cases: Vec<(Value, &str, u16, String)> = vec![
        (json!({"target": "manage"}), "1.3", 406, "Request not acceptable.".into()),
        (json!({"target": "deploy"}), "1.72", 406, "Request not acceptable.".into()),
        (json!({"target": "active"}), "1.78", 400,
         format!("The requested action \"active\" can not be performed on node \"{uuid}\" while it is in state \"enroll\".")),
        (json!({"target": "bogus"}), "1.78", 400,
         format!("The requested action \"bogus\" can not be performed on node \"{uuid}\" while it is in state \"enroll\".")),
        (json!({}), "1.78", 400, "Missing mandatory parameter: target".into()),
        (json!([1]), "1.78", 400, "Missing mandatory parameter: target".into()),
        (json!({"target": 5}), "1.78", 400, "Expected string for target: 5".into()),
        (json!({"target": "manage", "bogus": 1}), "1.78", 400, "Unexpected arguments: bogus".into()),
        (json!({"target": "manage", "configdrive": 5}), "1.78", 400,
         "Expected types <class 'NoneType'>, <class 'dict'>, <class 'str'> for configdrive: 5".into()),
        (json!({"target": "manage", "configdrive": "abc"}), "1.78", 400,
         "Adding a config drive is only supported when setting provision state to active, rebuild".into()),
        (json!({"target": "manage", "clean_steps": [{"interface": "deploy", "step": "x"}]}), "1.78", 400,
         "\"clean_steps\" is only valid when setting target provision state to clean".into()),
        (json!({"target": "manage", "rescue_password": "x"}), "1.78", 400,
         "\"rescue_password\" is only valid when setting target provision state to rescue".into()),
        (json!({"target": "manage", "disable_ramdisk": true}), "1.78", 400,
         "disable_ramdisk is supported only with manual cleaning or servicing".into()),
    ];
    for (body, v, status, message) in cases {
        let a = put(body.clone(), v).await;
        assert_eq!(a.status.as_u16(), status, "{body} @{v}: {:?}", a.body);
        assert_eq!(a.error(), message, "{body} @{v}");
    }
    assert_eq!(
        events_of(api, &uuid).await,
        before,
        "no refusal wrote anything"
    );

    // manage: 202, no body, Location of the states resource, as the client named it.
    let res = api
        .client
        .put(format!("{}/v1/nodes/prov/states/provision", api.base))
        .header("X-OpenStack-Ironic-API-Version", "1.78")
        .json(&json!({"target": "manage", "clean_steps": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(
        res.headers()["location"],
        format!("{}/v1/nodes/prov/states", api.base).as_str()
    );
    assert_eq!(res.text().await.unwrap(), "");
    let states = api.get(&format!("/v1/nodes/{uuid}/states")).await.body;
    assert_eq!(states["provision_state"], "manageable");
    assert_eq!(states["target_provision_state"], Value::Null);
    assert!(states["provision_updated_at"].is_string());

    let a = put(json!({"target": "clean"}), "1.78").await;
    refused(
        &a,
        400,
        "\"clean_steps\" is required when setting target provision state to clean",
    );
    let a = put(json!({"target": "clean", "clean_steps": [{"interface": "deploy", "step": "erase_devices"}]}), "1.78").await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
    assert_eq!(
        put(json!({"target": "provide"}), "1.78").await.status,
        StatusCode::ACCEPTED
    );

    // Deploy refusals: maintenance, quirks of the optional arguments.
    engine(api, &uuid, NodeCommand::SetMaintenance { reason: None }).await;
    let a = put(json!({"target": "active"}), "1.78").await;
    refused(&a, 400, &format!("The provisioning operation can't be performed on node {uuid} because it's in maintenance mode."));
    engine(api, &uuid, NodeCommand::UnsetMaintenance).await;
    let a = put(json!({"target": "deploy", "configdrive": "abc"}), "1.78").await;
    refused(
        &a,
        400,
        "Adding a config drive is only supported when setting provision state to active, rebuild",
    );
    let a = put(json!({"target": "active", "configdrive": "a:b"}), "1.78").await;
    refused(
        &a,
        400,
        "Invalid configdrive format: it is neither a JSON, nor a URL, nor a base64 string",
    );
    let a = put(
        json!({"target": "active", "configdrive": {"meta_data": {}}}),
        "1.55",
    )
    .await;
    refused(
        &a,
        400,
        "Providing a JSON object for configdrive is only supported starting with API version 1.56",
    );
    let a = put(json!({"target": "active", "deploy_steps": [{"interface": "deploy", "step": "x", "args": {}, "priority": 1}]}), "1.68").await;
    refused(
        &a,
        406,
        "Request not acceptable. The minimal required API version should be 1.69",
    );

    // Deploy: deploying; while the engine works the node, verbs are 409 NodeLocked.
    let a = put(
        json!({"target": "active", "configdrive": "aGVsbG8="}),
        "1.78",
    )
    .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
    let states = api.get(&format!("/v1/nodes/{uuid}/states")).await.body;
    assert_eq!(states["provision_state"], "deploying");
    assert_eq!(states["target_provision_state"], "active");
    let a = put(json!({"target": "deleted"}), "1.78").await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{:?}", a.body);
    assert!(
        a.error()
            .starts_with(&format!("Node {uuid} is locked by host ")),
        "{}",
        a.error()
    );
    engine(api, &uuid, NodeCommand::FinishDeploy).await;

    // Active: rebuild with a config drive needs 1.35; abort from wait call-back needs 1.110.
    let a = put(
        json!({"target": "rebuild", "configdrive": "aGVsbG8="}),
        "1.34",
    )
    .await;
    refused(
        &a,
        400,
        "Adding a config drive is only supported when setting provision state to active",
    );
    let a = put(json!({"target": "undeploy"}), "1.78").await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
    assert_eq!(
        api.get(&format!("/v1/nodes/{uuid}/states")).await.body["provision_state"],
        "deleting"
    );
}

#[tokio::test]
async fn provision_verbs() {
    provision_on(&memory_api().await).await;
}

#[tokio::test]
async fn provision_of_protected_and_waiting_nodes() {
    let api = memory_api().await;
    let uuid = create(&api, json!({"driver": "fake-hardware"})).await;
    make_active(&api, &uuid).await;
    let a = api
        .patch(
            &format!("/v1/nodes/{uuid}"),
            json!([{"op": "replace", "path": "/protected", "value": true}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let protected =
        format!("Node {uuid} is protected and cannot be undeployed, rebuilt or deleted");
    refused(&verb(&api, &uuid, "deleted").await, 403, &protected);
    refused(&verb(&api, &uuid, "rebuild").await, 403, &protected);
    // Ironic's destroy_node asks about protection before the provision state.
    refused(
        &api.delete(&format!("/v1/nodes/{uuid}")).await,
        403,
        &protected,
    );
    let a = api
        .patch(
            &format!("/v1/nodes/{uuid}"),
            json!([{"op": "replace", "path": "/protected", "value": false}]),
        )
        .await;
    assert_eq!(a.body["protected_reason"], Value::Null);
    refused(&api.delete(&format!("/v1/nodes/{uuid}")).await, 409, &format!(
        "Can not delete node \"{uuid}\" while it is in provision state \"active\". Valid provision states to perform deletion are: \"('manageable', 'enroll', 'adopt failed', 'available')\", or set the node into maintenance mode"));
    assert_eq!(
        verb(&api, &uuid, "rebuild").await.status,
        StatusCode::ACCEPTED
    );
    // deploying → wait call-back: abort needs 1.110, above ironledger's maximum.
    engine(
        &api,
        &uuid,
        NodeCommand::FailDeploy {
            error: "boom".into(),
        },
    )
    .await;
    let n = api
        .get(&format!(
            "/v1/nodes/{uuid}?fields=provision_state,last_error"
        ))
        .await
        .body;
    assert_eq!(n["provision_state"], "deploy failed");
    assert_eq!(n["last_error"], "boom");
    let a = verb(&api, &uuid, "abort").await;
    refused(&a, 400, &format!("The requested action \"abort\" can not be performed on node \"{uuid}\" while it is in state \"deploy failed\"."));
}

#[tokio::test]
async fn power_states() {
    let api = memory_api().await;
    let uuid = create(&api, json!({"driver": "fake-hardware", "name": "pw"})).await;
    let path = "/v1/nodes/pw/states/power";
    refused(&api.put(path, json!({"target": "bogus"})).await, 400,
            "The requested action \"bogus\" can not be performed on node \"pw\" while it is in state \"None\".");
    let a = api
        .call_v(
            Method::PUT,
            path,
            Some(json!({"target": "soft rebooting"})),
            Some("1.26"),
        )
        .await;
    refused(&a, 406, "Request not acceptable.");
    refused(
        &api.put(path, json!({"target": "power on", "timeout": 0}))
            .await,
        400,
        "timeout has to be positive integer",
    );
    refused(
        &api.put(path, json!({"target": "power on", "timeout": "x"}))
            .await,
        400,
        "Expected an integer for timeout: x",
    );
    refused(
        &api.put(path, json!({})).await,
        400,
        "Missing mandatory parameter: target",
    );
    refused(
        &api.put(path, json!({"target": "power on", "x": 1})).await,
        400,
        "Unexpected arguments: x",
    );
    refused(
        &api.put(
            &format!("/v1/nodes/{MISSING}/states/power"),
            json!({"target": "power on"}),
        )
        .await,
        404,
        &format!("Node {MISSING} could not be found."),
    );
    let a = api
        .put(path, json!({"target": "power on", "timeout": 30}))
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
    assert_eq!(
        a.headers["location"],
        format!("{}/v1/nodes/pw/states", api.base).as_str()
    );
    assert_eq!(a.body, Value::Null);
    let s = api.get(&format!("/v1/nodes/{uuid}/states")).await.body;
    assert_eq!(s["power_state"], "power on");
    assert_eq!(s["target_power_state"], Value::Null);
    refused(&api.put(path, json!({"target": "bogus"})).await, 400,
            "The requested action \"bogus\" can not be performed on node \"pw\" while it is in state \"power on\".");
    // Every power change is stamped, as Ironic does, in Ironic's format
    // (UTC, no zone, microseconds).
    let stamp = |n: &Value| {
        n["driver_internal_info"]["last_power_state_change"]
            .as_str()
            .unwrap_or_else(|| panic!("no last_power_state_change: {n}"))
            .to_string()
    };
    let first = stamp(&api.get("/v1/nodes/pw").await.body);
    assert!(
        chrono::NaiveDateTime::parse_from_str(&first, "%Y-%m-%dT%H:%M:%S%.6f").is_ok()
            && first.len() == 26,
        "{first}"
    );
    let a = api.put(path, json!({"target": "soft power off"})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let n = api.get("/v1/nodes/pw").await.body;
    assert_eq!(n["power_state"], "power off");
    assert!(stamp(&n) >= first, "{n}");
}

#[tokio::test]
async fn maintenance_endpoints() {
    let api = memory_api().await;
    let uuid = create(&api, json!({"driver": "fake-hardware"})).await;
    let path = format!("/v1/nodes/{uuid}/maintenance");
    refused(
        &api.put(&path, json!({"reason": 5})).await,
        400,
        "Expected string for reason: 5",
    );
    refused(
        &api.put(&path, json!({"bogus": 1})).await,
        400,
        "Unexpected arguments: bogus",
    );
    let a = api.put(&path, json!({"reason": "fixing fans"})).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    assert_eq!(a.body, Value::Null);
    let n = api.get(&format!("/v1/nodes/{uuid}")).await.body;
    assert_eq!(
        (n["maintenance"].clone(), n["maintenance_reason"].clone()),
        (json!(true), json!("fixing fans"))
    );
    let a = api.call(Method::DELETE, &path, None).await;
    assert_eq!(a.status, StatusCode::ACCEPTED);
    let n = api.get(&format!("/v1/nodes/{uuid}")).await.body;
    assert_eq!(
        (n["maintenance"].clone(), n["maintenance_reason"].clone()),
        (json!(false), Value::Null)
    );
    // No body at all is fine too.
    let res = api
        .client
        .put(format!("{}{path}", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(
        api.get(&format!("/v1/nodes/{uuid}")).await.body["maintenance"],
        true
    );
    refused(
        &api.put(&format!("/v1/nodes/{MISSING}/maintenance"), json!({}))
            .await,
        404,
        &format!("Node {MISSING} could not be found."),
    );
}

#[tokio::test]
async fn states_document_by_version() {
    let api = memory_api().await;
    let uuid = create(&api, json!({"driver": "fake-hardware"})).await;
    let keys = |v: &'static str| {
        let api = &api;
        let path = format!("/v1/nodes/{uuid}/states");
        async move {
            let b = api.call_v(Method::GET, &path, None, Some(v)).await.body;
            let mut k: Vec<String> = b.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        }
    };
    let base = [
        "console_enabled",
        "last_error",
        "power_state",
        "provision_state",
        "provision_updated_at",
        "target_power_state",
        "target_provision_state",
    ];
    assert_eq!(keys("1.11").await, base);
    let mut with_raid: Vec<&str> = base
        .iter()
        .copied()
        .chain(["raid_config", "target_raid_config"])
        .collect();
    with_raid.sort();
    assert_eq!(keys("1.12").await, with_raid);
    let mut all: Vec<&str> = with_raid
        .iter()
        .copied()
        .chain(["boot_mode", "secure_boot"])
        .collect();
    all.sort();
    assert_eq!(keys("1.75").await, all);
    refused(
        &api.get(&format!("/v1/nodes/{uuid}/states?x=1")).await,
        400,
        "Unexpected arguments: x",
    );
}

// ---- validate ----------------------------------------------------------------------

fn result(v: &Value, iface: &str) -> (bool, String) {
    (
        v[iface]["result"].as_bool().unwrap(),
        v[iface]["reason"].as_str().unwrap_or_default().to_string(),
    )
}

async fn add_connector(api: &Api, node: &str, kind: &str, id: &str) {
    engine(
        api,
        node,
        NodeCommand::AddConnector(NewConnector {
            uuid: Uuid::new_v4(),
            kind: kind.into(),
            connector_id: id.into(),
            extra: Map::new(),
        }),
    )
    .await;
}

async fn add_target(api: &Api, node: &str, kind: &str, boot_index: i64) -> Uuid {
    let uuid = Uuid::new_v4();
    engine(
        api,
        node,
        NodeCommand::CreateTarget(NewTarget {
            uuid,
            volume_type: kind.into(),
            boot_index,
            volume_id: Uuid::new_v4().to_string(),
            properties: Map::new(),
            extra: Map::new(),
        }),
    )
    .await;
    uuid
}

async fn validate_on(api: &Api) {
    // noop storage: nothing to check; iPXE boot needs a port.
    let noop = create(api, json!({"driver": "fake-hardware", "name": "v-noop"})).await;
    let v = api.get("/v1/nodes/v-noop/validate").await.body;
    let ifaces: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(ifaces.len(), 12, "{ifaces:?}");
    assert_eq!(result(&v, "storage"), (true, String::new()));
    assert_eq!(result(&v, "power"), (true, String::new()));
    let no_port = format!("Node {noop} does not have any port associated with it");
    assert_eq!(result(&v, "boot"), (false, no_port.clone()));
    assert_eq!(result(&v, "deploy"), (false, no_port));
    engine(
        api,
        &noop,
        NodeCommand::AddPort(NewPort {
            uuid: Uuid::new_v4(),
            address: "52:54:00:12:34:56".into(),
            pxe_enabled: true,
            extra: Map::new(),
            ..Default::default()
        }),
    )
    .await;
    let v = api
        .get(&format!("/v1/nodes/validate?node={noop}"))
        .await
        .body;
    assert_eq!(result(&v, "boot"), (false, "Cannot validate PXE bootloader. Some parameters were missing in node's driver_info and configuration. Missing are: ['deploy_kernel', 'deploy_ramdisk']".into()));

    // cinder: the boot target needs the capability, then an iqn connector.
    let cinder = create(
        api,
        json!({"driver": "fake-hardware", "storage_interface": "cinder", "boot_interface": "ipxe"}),
    )
    .await;
    let target = add_target(api, &cinder, "iscsi", 0).await;
    let fail = |r: &str| {
        (
            false,
            format!("Failed to validate cinder storage interface for node {cinder}. {r}"),
        )
    };
    let v = api.get(&format!("/v1/nodes/{cinder}/validate")).await.body;
    assert_eq!(result(&v, "storage"), fail(&format!("Volume target {target} is configured for 'iscsi', however the capability 'iscsi_boot' is not set for the node.")));
    api.patch(
        &format!("/v1/nodes/{cinder}"),
        json!([{"op": "add", "path": "/properties/capabilities", "value": "iscsi_boot:True"}]),
    )
    .await;
    let v = api.get(&format!("/v1/nodes/{cinder}/validate")).await.body;
    assert_eq!(result(&v, "storage"), fail("In order to enable the 'iscsi_boot' capability for the node, an associated volume_connector type must be valid for iSCSI (iqn)."));
    add_connector(api, &cinder, "iqn", "iqn.2017-08.org.openstack.x").await;
    let v = api.get(&format!("/v1/nodes/{cinder}/validate")).await.body;
    assert_eq!(result(&v, "storage"), (true, String::new()));
    add_connector(api, &cinder, "wwnn", "20:00:00:00:00:00:00:01").await;
    let v = api.get(&format!("/v1/nodes/{cinder}/validate")).await.body;
    let (ok, reason) = result(&v, "storage");
    assert!(!ok && reason.starts_with("Unexpected exception, traceback saved into log by ironic conductor service that is running on "), "{reason}");
    assert!(
        reason.ends_with("There are 0 wwpn entries and 1 wwnn entries."),
        "{reason}"
    );

    // external: with a boot target and no image, the boot interface must be iPXE.
    let ext = create(api, json!({"driver": "fake-hardware", "storage_interface": "external", "boot_interface": "pxe"})).await;
    add_target(api, &ext, "iscsi", 0).await;
    let v = api.get(&format!("/v1/nodes/{ext}/validate")).await.body;
    assert_eq!(result(&v, "storage"), (false, format!("Failed to validate external storage interface for node {ext}. To support network booting to an iSCSI volume, the boot interface must be set to ``ipxe``.")));
    api.patch(
        &format!("/v1/nodes/{ext}"),
        json!([{"op": "add", "path": "/instance_info/image_source", "value": "http://i"}]),
    )
    .await;
    let v = api.get(&format!("/v1/nodes/{ext}/validate")).await.body;
    assert_eq!(
        result(&v, "storage"),
        (true, String::new()),
        "an image is written: nothing to check"
    );
    api.patch(&format!("/v1/nodes/{ext}"), json!([{"op": "remove", "path": "/instance_info/image_source"},
                                                   {"op": "replace", "path": "/boot_interface", "value": "ipxe"}])).await;
    let v = api.get(&format!("/v1/nodes/{ext}/validate")).await.body;
    assert_eq!(result(&v, "storage"), (true, String::new()));

    // Interfaces a hardware type lacks.
    let manual = create(api, json!({"driver": "manual-management"})).await;
    let v = api.get(&format!("/v1/nodes/{manual}/validate")).await.body;
    assert_eq!(
        result(&v, "bios"),
        (
            false,
            "Driver manual-management does not support bios (disabled or not implemented).".into()
        )
    );
    assert_eq!(result(&v, "management"), (true, String::new()));
    refused(
        &api.get(&format!("/v1/nodes/{MISSING}/validate")).await,
        404,
        &format!("Node {MISSING} could not be found."),
    );
}

#[tokio::test]
async fn validate_interfaces() {
    validate_on(&memory_api().await).await;
}

// ---- delete, drivers, robustness -------------------------------------------------------

async fn delete_on(api: &Api) {
    let uuid = create(api, json!({"driver": "fake-hardware", "name": "gone"})).await;
    let a = api.delete("/v1/nodes/gone").await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(a.body, Value::Null);
    refused(
        &api.get(&format!("/v1/nodes/{uuid}")).await,
        404,
        &format!("Node {uuid} could not be found."),
    );
    refused(
        &api.delete(&format!("/v1/nodes/{uuid}")).await,
        404,
        &format!("Node {uuid} could not be found."),
    );
    // The name is free again.
    create(api, json!({"driver": "fake-hardware", "name": "gone"})).await;

    let instance = "8b0b4bb5-6f9c-4c2a-9d0e-6f1f6a9a0b11";
    let assoc = create(
        api,
        json!({"driver": "fake-hardware", "instance_uuid": instance}),
    )
    .await;
    refused(
        &api.delete(&format!("/v1/nodes/{assoc}")).await,
        409,
        &format!("Node {assoc} is associated with instance {instance}."),
    );
    // In maintenance, Ironic lets even an associated node go.
    assert_eq!(
        api.put(&format!("/v1/nodes/{assoc}/maintenance"), json!({}))
            .await
            .status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        api.delete(&format!("/v1/nodes/{assoc}")).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn delete_nodes() {
    delete_on(&memory_api().await).await;
}

#[tokio::test]
async fn drivers() {
    let api = memory_api().await;
    let a = api.get("/v1/drivers").await;
    let names: Vec<&str> = a.body["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["fake-hardware", "manual-management", "ipmi", "redfish"]
    );
    assert_eq!(a.body["drivers"][0]["type"], "dynamic");
    assert!(a.body["drivers"][0]
        .get("default_storage_interface")
        .is_none());
    let d = api.get("/v1/drivers/fake-hardware").await.body;
    assert_eq!(d["default_storage_interface"], "noop");
    assert_eq!(
        d["enabled_storage_interfaces"],
        json!(["noop", "cinder", "external"])
    );
    assert!(
        d.get("default_firmware_interface").is_none(),
        "a 1.86 field"
    );
    let d = api
        .call_v(Method::GET, "/v1/drivers/fake-hardware", None, Some("1.32"))
        .await
        .body;
    assert!(
        d.get("default_storage_interface").is_none() && d.get("default_boot_interface").is_some()
    );
    refused(
        &api.get("/v1/drivers/nope").await,
        404,
        "Could not find the following driver(s) or hardware type(s): nope.",
    );
}

/// Hostile input gets a 4xx in Ironic's envelope, never a 5xx.
#[tokio::test]
async fn never_a_server_error() {
    let api = memory_api().await;
    let uuid = create(&api, json!({"driver": "fake-hardware"})).await;
    let node = format!("/v1/nodes/{uuid}");
    let raw_bodies = [
        "",
        "null",
        "[]",
        "{",
        "\"x\"",
        "1",
        "{\"driver\": null}",
        "[null]",
        "[[]]",
        "{\"a\":\u{0}}",
    ];
    let paths = [
        ("POST", "/v1/nodes".to_string()),
        ("PATCH", node.clone()),
        ("PUT", format!("{node}/states/provision")),
        ("PUT", format!("{node}/states/power")),
        ("PUT", format!("{node}/maintenance")),
    ];
    for (method, path) in &paths {
        for body in raw_bodies {
            let res = api
                .client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{}{path}", api.base),
                )
                .header("Content-Type", "application/json")
                .header("X-OpenStack-Ironic-API-Version", "1.78")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = res.status();
            assert!(
                status.is_success() || status.is_client_error(),
                "{method} {path} {body:?}: {status}"
            );
            if status.is_client_error() {
                let v: Value = res.json().await.unwrap();
                assert!(v["error_message"].is_string(), "{method} {path} {body:?}");
            }
        }
    }
    for path in [
        format!("{node}?fields=%ff"),
        "/v1/nodes?limit=99999999999999999999".into(),
        "/v1/nodes?sort_key=&sort_dir=".into(),
        "/v1/nodes/%20".into(),
        format!("{node}/states/provision"),
        "/v1/nodes/validate".into(),
        "/v1/drivers/%2F".into(),
    ] {
        let a = api.get(&path).await;
        assert!(
            a.status.is_client_error() || a.status.is_success(),
            "{path}: {}",
            a.status
        );
    }
    let patches = [
        json!([{"op": "add", "path": "/properties/a/b", "value": 1}]),
        json!([{"op": "add", "path": "/extra/-", "value": 1}]),
        json!([{"op": "replace", "path": "/instance_info", "value": [1]}]),
        json!([{"op": "add", "path": "/network_data", "value": "x"}]),
        json!([{"op": "add", "path": "/maintenance", "value": {"a": 1}}]),
        json!([{"op": "add", "path": "/name", "value": null}]),
        json!([{"op": "replace", "path": "/automated_clean", "value": 3}]),
        json!([{"op": "remove", "path": "/instance_name"}]),
    ];
    for p in patches {
        let a = api.patch(&node, p.clone()).await;
        assert!(
            a.status.is_client_error() || a.status.is_success(),
            "{p}: {}",
            a.status
        );
    }
}

// ---- PostgreSQL --------------------------------------------------------------------

mod postgres {
    use super::*;

    async fn pg_api() -> Api {
        common::api::start(common::postgres().await).await
    }

    #[tokio::test]
    async fn create_and_show() {
        create_and_show_on(&pg_api().await).await;
    }

    #[tokio::test]
    async fn create_errors() {
        create_errors_on(&pg_api().await).await;
    }

    #[tokio::test]
    async fn list_pagination() {
        list_pagination_on(&pg_api().await).await;
    }

    #[tokio::test]
    async fn patch_rules() {
        patch_rules_on(&pg_api().await).await;
    }

    #[tokio::test]
    async fn provision_verbs() {
        provision_on(&pg_api().await).await;
    }

    #[tokio::test]
    async fn validate_interfaces() {
        validate_on(&pg_api().await).await;
    }

    #[tokio::test]
    async fn delete_nodes() {
        delete_on(&pg_api().await).await;
    }
}

// ---- history, trailing slashes ----------------------------------------------------------

#[tokio::test]
async fn node_history() {
    let api = memory_api().await;
    let uuid = create(&api, json!({"driver": "fake-hardware", "name": "h"})).await;
    api.make_bootable(&uuid).await;
    make_available(&api, &uuid).await;
    assert_eq!(
        verb(&api, &uuid, "active").await.status,
        StatusCode::ACCEPTED
    );
    engine(
        &api,
        &uuid,
        NodeCommand::FailDeploy {
            error: "x".repeat(300),
        },
    )
    .await;

    let a = api
        .call_v(Method::GET, "/v1/nodes/h/history", None, Some("1.77"))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = api.get("/v1/nodes/h/history").await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    let items = a.body["history"].as_array().unwrap().clone();
    assert!(items.len() >= 6, "{items:?}");
    let keys: Vec<&String> = items[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["created_at", "event", "links", "severity", "uuid"]);
    let last = items.last().unwrap();
    assert_eq!(last["severity"], "ERROR");
    assert_eq!(
        last["event"].as_str().unwrap().len(),
        254,
        "cut at 251 + ..."
    );
    let event = last["uuid"].as_str().unwrap();
    assert_eq!(
        last["links"],
        json!([{"href": format!("{}/v1/nodes/{uuid}/history/{event}", api.base), "rel": "self"}])
    );
    // One entry: always the detailed form.
    let one = api.get(&format!("/v1/nodes/h/history/{event}")).await.body;
    assert_eq!(one["event"].as_str().unwrap().len(), 300);
    assert_eq!(one["event_type"], "provisioning");
    assert_eq!(one["user"], "test", "the actor of the engine command");
    let deploy = items[items.len() - 2]["uuid"].as_str().unwrap();
    let by_api = api
        .get(&format!("/v1/nodes/{uuid}/history/{deploy}"))
        .await
        .body;
    assert_eq!(by_api["user"], Value::Null, "noauth has no user");
    assert_eq!(
        by_api["conductor"].as_str().map(|c| !c.is_empty()),
        Some(true)
    );
    assert!(one.get("project").is_none() && one.get("duration_seconds").is_none());
    refused(
        &api.get(&format!("/v1/nodes/h/history/{MISSING}")).await,
        404,
        &format!("Node history record {MISSING} could not be found."),
    );
    refused(
        &api.get("/v1/nodes/h/history/bad%20x").await,
        400,
        "Expected UUID or name for event: bad x",
    );
    // Paging, detail, errors.
    let a = api.get("/v1/nodes/h/history?detail=true&limit=2").await;
    assert_eq!(a.body["history"].as_array().unwrap().len(), 2);
    assert!(a.body["history"][0].get("conductor").is_some());
    let second = a.body["history"][1]["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        a.body["next"],
        format!("{}/v1/nodes/h/history?marker=None&sort_key=created_at&sort_dir=asc&fields=uuid,created_at,severity,event_type,event,conductor,user,project,state,target_provision_state,duration_seconds&limit=2&marker={second}", api.base)
    );
    let a = api
        .get(&format!("/v1/nodes/h/history?marker={second}&limit=1"))
        .await;
    assert_eq!(a.body["history"][0]["uuid"], items[2]["uuid"]);
    let a = api.get("/v1/nodes/h/history?sort_dir=desc&limit=1").await;
    assert_eq!(a.body["history"][0]["uuid"], last["uuid"]);
    refused(
        &api.get("/v1/nodes/h/history?bogus=1").await,
        400,
        "Unexpected arguments: bogus",
    );
    refused(
        &api.get("/v1/nodes/h/history?sort_key=bogus").await,
        400,
        "The sort_key value \"bogus\" is an invalid field for sorting",
    );
    refused(
        &api.get(&format!("/v1/nodes/h/history?marker={MISSING}"))
            .await,
        404,
        &format!("Node history record {MISSING} could not be found."),
    );
}

#[tokio::test]
async fn trailing_slashes_are_the_same_resource() {
    let api = memory_api().await;
    let uuid = create(&api, json!({"driver": "fake-hardware", "name": "s"})).await;
    for (a, b) in [
        ("/v1/nodes".to_string(), "/v1/nodes/".to_string()),
        (format!("/v1/nodes/{uuid}"), format!("/v1/nodes/{uuid}/")),
        (
            format!("/v1/nodes/{uuid}/states"),
            format!("/v1/nodes/{uuid}/states/"),
        ),
        ("/v1/drivers".to_string(), "/v1/drivers/".to_string()),
        ("/nodes/s".to_string(), "/v1/nodes/s".to_string()),
    ] {
        let (x, y) = (api.get(&a).await, api.get(&b).await);
        assert_eq!(x.status, StatusCode::OK, "{a}");
        assert_eq!(x.body, y.body, "{a} vs {b}");
    }
}

// ---- the verb table (`docs/ironic-behaviour.md` §6.4) -------------------------------------------------

/// A fresh node in `state`, reached through the API (and the engine's own
/// outcomes where the process manager would report them).
async fn node_in(api: &Api, state: &str) -> String {
    let uuid = create(api, json!({"driver": "fake-hardware"})).await;
    api.make_bootable(&uuid).await;
    let ok = |a: Answer| assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
    match state {
        "enroll" => {}
        "manageable" => ok(verb(api, &uuid, "manage").await),
        "available" => make_available(api, &uuid).await,
        "active" => make_active(api, &uuid).await,
        "deploy failed" => {
            make_available(api, &uuid).await;
            ok(verb(api, &uuid, "active").await);
            engine(api, &uuid, NodeCommand::FailDeploy { error: "e".into() }).await;
        }
        "error" => {
            make_active(api, &uuid).await;
            ok(verb(api, &uuid, "deleted").await);
            engine(api, &uuid, NodeCommand::FailUndeploy { error: "e".into() }).await;
        }
        other => panic!("no recipe for {other}"),
    }
    let shown = api.get(&format!("/v1/nodes/{uuid}/states")).await.body;
    assert_eq!(shown["provision_state"], state);
    uuid
}

#[tokio::test]
async fn verbs_legal_and_illegal_by_state() {
    let api = memory_api().await;
    // (state, verb, accepted, state afterwards)
    let table: &[(&str, &str, bool, &str)] = &[
        ("enroll", "manage", true, "manageable"),
        ("enroll", "provide", false, ""),
        ("enroll", "active", false, ""),
        ("enroll", "deleted", false, ""),
        ("enroll", "inspect", false, ""),
        ("enroll", "adopt", false, ""),
        ("manageable", "manage", false, ""),
        ("manageable", "provide", true, "available"),
        ("manageable", "inspect", true, "manageable"),
        ("manageable", "adopt", true, "adopting"),
        ("manageable", "active", false, ""),
        ("manageable", "abort", false, ""),
        ("available", "manage", true, "manageable"),
        ("available", "provide", false, ""),
        ("available", "deploy", true, "deploying"),
        ("available", "rebuild", false, ""),
        ("available", "undeploy", false, ""),
        ("active", "active", false, ""),
        ("active", "rebuild", true, "deploying"),
        ("active", "undeploy", true, "deleting"),
        ("active", "manage", false, ""),
        ("active", "rescue", false, ""),
        ("deploy failed", "active", true, "deploying"),
        ("deploy failed", "deleted", true, "deleting"),
        ("deploy failed", "manage", false, ""),
        ("error", "rebuild", true, "deploying"),
        ("error", "deleted", true, "deleting"),
        ("error", "provide", false, ""),
    ];
    for (state, v, accepted, after) in table {
        let uuid = node_in(&api, state).await;
        let a = verb(&api, &uuid, v).await;
        if *accepted {
            assert_eq!(
                a.status,
                StatusCode::ACCEPTED,
                "{v} from {state}: {:?}",
                a.body
            );
            let now = api.get(&format!("/v1/nodes/{uuid}/states")).await.body;
            assert_eq!(now["provision_state"], *after, "{v} from {state}");
        } else {
            refused(&a, 400, &format!(
                "The requested action \"{v}\" can not be performed on node \"{uuid}\" while it is in state \"{state}\"."
            ));
        }
    }
}

#[tokio::test]
async fn verbs_below_their_version_are_not_acceptable() {
    let api = memory_api().await;
    for (v, minor) in [
        ("manage", 4),
        ("provide", 4),
        ("inspect", 6),
        ("abort", 13),
        ("clean", 15),
        ("adopt", 17),
        ("rescue", 38),
        ("unrescue", 38),
        ("deploy", 73),
        ("undeploy", 73),
    ] {
        let uuid = create(&api, json!({"driver": "fake-hardware"})).await;
        let path = format!("/v1/nodes/{uuid}/states/provision");
        let below = format!("1.{}", minor - 1);
        let a = api
            .call_v(Method::PUT, &path, Some(json!({"target": v})), Some(&below))
            .await;
        refused(&a, 406, "Request not acceptable.");
        // At its version the verb reaches the state machine (enroll refuses all but manage).
        let at = format!("1.{minor}");
        let a = api
            .call_v(Method::PUT, &path, Some(json!({"target": v})), Some(&at))
            .await;
        if v == "manage" {
            assert_eq!(a.status, StatusCode::ACCEPTED);
        } else {
            refused(&a, 400, &format!(
                "The requested action \"{v}\" can not be performed on node \"{uuid}\" while it is in state \"enroll\"."
            ));
        }
    }
}

/// The guide's node without a port (or otherwise unable to boot) is refused
/// at the deploy request with Ironic's conductor text, 400, and stays
/// `available` with nothing written; given what it lacked, the same request
/// is accepted.
#[tokio::test]
async fn a_deploy_that_cannot_boot_is_refused_at_the_request() {
    let api = memory_api().await;
    let uuid = create(
        &api,
        json!({"driver": "fake-hardware", "name": "no-port", "storage_interface": "external",
               "properties": {"capabilities": "iscsi_boot:True"}}),
    )
    .await;
    make_available(&api, &uuid).await;
    for (path, body) in [
        (
            "/v1/volume/connectors",
            json!({"node_uuid": uuid, "type": "iqn", "connector_id": "iqn.2024-01.org.example:no-port"}),
        ),
        (
            "/v1/volume/targets",
            json!({"node_uuid": uuid, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v",
                   "properties": {"target_iqn": "iqn.2010-10.org.openstack:volume-1",
                                  "target_portal": "192.0.2.10:3260", "target_lun": 0}}),
        ),
    ] {
        assert_eq!(api.post(path, body).await.status, StatusCode::CREATED);
    }
    let before = events_of(&api, &uuid).await;
    for target in ["active", "deploy"] {
        let a = verb(&api, &uuid, target).await;
        refused(
            &a,
            400,
            &format!(
                "Failed to validate deploy or power info for node {uuid}: Node {uuid} does not have any port associated with it"
            ),
        );
        // Ironic's envelope, as the CLI prints it.
        let inner: Value = serde_json::from_str(a.body["error_message"].as_str().unwrap()).unwrap();
        assert_eq!(inner["faultcode"], "Client", "{inner}");
    }
    assert_eq!(events_of(&api, &uuid).await, before, "nothing written");
    let states = api.get(&format!("/v1/nodes/{uuid}/states")).await.body;
    assert_eq!(states["provision_state"], "available");
    assert_eq!(states["target_provision_state"], Value::Null);

    // With the port it lacked, the same request is accepted.
    let port = api
        .post(
            "/v1/ports",
            json!({"address": "52:54:00:12:34:56", "node_uuid": uuid}),
        )
        .await;
    assert_eq!(port.status, StatusCode::CREATED, "{:?}", port.body);
    assert_eq!(
        verb(&api, &uuid, "active").await.status,
        StatusCode::ACCEPTED
    );

    // A boot target whose properties cannot make a boot script is refused too.
    let other = create(
        &api,
        json!({"driver": "fake-hardware", "storage_interface": "external",
               "properties": {"capabilities": "iscsi_boot:True"}}),
    )
    .await;
    make_available(&api, &other).await;
    for (path, body) in [
        (
            "/v1/ports",
            json!({"address": "52:54:00:12:34:57", "node_uuid": other}),
        ),
        (
            "/v1/volume/targets",
            json!({"node_uuid": other, "volume_type": "iscsi", "boot_index": 0, "volume_id": "w",
                   "properties": {"target_portal": "192.0.2.10:3260", "target_lun": 0}}),
        ),
    ] {
        assert_eq!(api.post(path, body).await.status, StatusCode::CREATED);
    }
    let targets = api
        .get(&format!("/v1/nodes/{other}/volume/targets"))
        .await
        .body;
    let target = targets["targets"][0]["uuid"].as_str().unwrap().to_string();
    let a = verb(&api, &other, "active").await;
    refused(
        &a,
        400,
        &format!(
            "Failed to validate deploy or power info for node {other}: The boot script cannot be written: volume target {target}: target_iqn is missing or not a string"
        ),
    );
}

/// The framework's errors (no `faultstring`) are spelled as Ironic's
/// framework writes them, since the CLI prints the string as it is.
#[tokio::test]
async fn framework_errors_read_as_ironic_writes_them() {
    let api = memory_api().await;
    let a = api.get("/v1/no-such-thing").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.headers.get("x-openstack-ironic-api-version").is_none());
    assert_eq!(
        a.body["error_message"],
        "{\"code\": 404, \"title\": \"Not Found\", \"description\": \"\"}"
    );
    let a = api
        .call_v(Method::GET, "/v1/volume/connectors", None, Some("1.31"))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    // Ironic's early answers carry no version headers: an unknown path, the
    // volume API below 1.32, history below 1.78, a node segment that is
    // neither a UUID nor a name.
    let no_version = |a: &common::api::Answer| {
        for h in [
            "x-openstack-ironic-api-version",
            "x-openstack-ironic-api-minimum-version",
            "x-openstack-ironic-api-maximum-version",
        ] {
            assert!(a.headers.get(h).is_none(), "{h} in {:?}", a.headers);
        }
    };
    no_version(&a);
    let h = api
        .call_v(Method::GET, "/v1/nodes/x/history", None, Some("1.77"))
        .await;
    assert_eq!(h.status, StatusCode::NOT_FOUND);
    no_version(&h);
    let b = api.get("/v1/nodes/bad%20name!").await;
    assert_eq!(b.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        b.body["error_message"],
        "{\"code\": 400, \"title\": \"Bad Request\", \"description\": \"Expected UUID or name for node: bad name!\"}"
    );
    no_version(&b);
    // `/v1` links only what is served.
    let v1 = api.get("/v1").await.body;
    assert!(v1.get("chassis").is_none(), "{v1}");
    assert!(
        v1.get("nodes").is_some() && v1.get("ports").is_some(),
        "{v1}"
    );
    assert_eq!(
        a.body["error_message"],
        "{\"code\": 404, \"title\": \"Not Found\", \"description\": \"\"}"
    );
}
