//! The ports API over real HTTP: create, list (filters, detail, fields,
//! pagination), show, patch (with re-homing), delete, with Ironic 39's
//! statuses and texts (checked against the real Ironic), the fields each
//! microversion shows, and no partial write on a refusal.

use crate::common;

use common::api::Api;
use ironledger::domain::NodeCommand;
use ironledger::engine::Meta;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

const MISSING: &str = "11111111-2222-4333-8444-555555555555";

async fn node(api: &Api, name: Option<&str>) -> Uuid {
    api.enroll(name, None).await
}

async fn events_of(api: &Api, node: Uuid) -> usize {
    api.event_count(node).await
}

async fn port(api: &Api, node: Uuid, mac: &str) -> String {
    let a = api
        .post("/v1/ports", json!({"node_uuid": node, "address": mac}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    a.body["uuid"].as_str().unwrap().to_string()
}

/// Takes an enrolled node to `available` (manage, provide).
async fn make_available(api: &Api, node: Uuid) {
    for verb in ["manage", "provide"] {
        api.engine
            .node(
                node,
                NodeCommand::Provision(ironledger::domain::node::commands::ProvisionRequest::verb(
                    verb,
                )),
                &Meta::actor("test"),
            )
            .await
            .unwrap();
    }
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// Requests with the status and message each must get; all failures at once.
/// method, path, body, version, status, message.
type Case = (Method, String, Option<Value>, &'static str, u16, String);

async fn run(api: &Api, cases: Vec<Case>) {
    let mut failures = vec![];
    for (m, p, body, v, status, msg) in cases {
        let a = api.call_v(m.clone(), &p, body.clone(), Some(v)).await;
        if a.status.as_u16() != status || a.error() != msg {
            failures.push(format!(
                "{m} {p} @{v} {body:?}\n   expected {status} {msg:?}\n   got      {} {:?}",
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

fn c(
    m: Method,
    p: impl Into<String>,
    body: Option<Value>,
    status: u16,
    msg: impl Into<String>,
) -> Case {
    (m, p.into(), body, "1.78", status, msg.into())
}

#[tokio::test]
async fn create_and_show() {
    let api = common::api::start(common::memory().await).await;
    let n = node(&api, None).await;
    let a = api
        .post(
            "/v1/ports",
            json!({"node_uuid": n, "address": "52:54:00:AB:cd:01", "extra": {"switch": "s1"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let uuid = a.body["uuid"].as_str().unwrap().to_string();
    let b = &api.base;
    assert_eq!(
        a.headers["location"].to_str().unwrap(),
        format!("{b}/v1/ports/{uuid}")
    );
    assert_eq!(
        a.body["address"], "52:54:00:ab:cd:01",
        "stored in lower case"
    );
    assert_eq!(
        keys(&a.body),
        [
            "address",
            "created_at",
            "extra",
            "internal_info",
            "is_smartnic",
            "links",
            "local_link_connection",
            "node_uuid",
            "physical_network",
            "portgroup_uuid",
            "pxe_enabled",
            "updated_at",
            "uuid"
        ]
    );
    assert_eq!(a.body["internal_info"], json!({}));
    assert_eq!(a.body["local_link_connection"], json!({}));
    assert_eq!(a.body["physical_network"], Value::Null);
    assert_eq!(a.body["portgroup_uuid"], Value::Null);
    assert_eq!(a.body["is_smartnic"], json!(false));
    assert_eq!(a.body["pxe_enabled"], json!(true));
    assert_eq!(a.body["extra"], json!({"switch": "s1"}));
    assert_eq!(
        a.body["links"],
        json!([{"href": format!("{b}/v1/ports/{uuid}"), "rel": "self"}, {"href": format!("{b}/ports/{uuid}"), "rel": "bookmark"}])
    );
    assert_eq!(api.get(&format!("/v1/ports/{uuid}")).await.body, a.body);

    // Each version shows the fields it knows.
    let at = |v: &'static str| {
        let api = &api;
        let uuid = uuid.clone();
        async move {
            keys(
                &api.call_v(Method::GET, &format!("/v1/ports/{uuid}"), None, Some(v))
                    .await
                    .body,
            )
        }
    };
    assert_eq!(
        at("1.1").await,
        [
            "address",
            "created_at",
            "extra",
            "links",
            "node_uuid",
            "updated_at",
            "uuid"
        ]
    );
    assert!(at("1.18").await.contains(&"internal_info".to_string()));
    assert!(!at("1.18").await.contains(&"pxe_enabled".to_string()));
    assert!(at("1.19")
        .await
        .contains(&"local_link_connection".to_string()));
    assert!(!at("1.23").await.contains(&"portgroup_uuid".to_string()));
    assert!(at("1.24").await.contains(&"portgroup_uuid".to_string()));
    assert!(!at("1.33").await.contains(&"physical_network".to_string()));
    assert!(at("1.34").await.contains(&"physical_network".to_string()));
    assert!(!at("1.52").await.contains(&"is_smartnic".to_string()));

    // Bool-strings, explicit uuid, empty values of unmodelled fields.
    let mine = Uuid::new_v4();
    let a = api
        .post("/v1/ports", json!({"node_uuid": n, "address": "52:54:00:ab:cd:02", "pxe_enabled": "no", "uuid": mine,
                                   "local_link_connection": {}, "physical_network": null, "is_smartnic": false, "portgroup_uuid": null}))
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    assert_eq!(a.body["pxe_enabled"], json!(false));
    assert_eq!(a.body["uuid"], mine.to_string());

    // fields on show.
    let a = api
        .get(&format!("/v1/ports/{uuid}?fields=address,pxe_enabled"))
        .await;
    assert_eq!(keys(&a.body), ["address", "links", "pxe_enabled"]);
}

/// The network fields Nova, Neutron and inspection send are kept, shown and
/// patched as in Ironic 39: `switch_id` in lower case, a datapath ID as well
/// as a MAC, a Smart NIC port with its host, a port with no link at all; the
/// link and the physical network are connectivity attributes (changed only in
/// enroll/manageable/inspecting or maintenance), `is_smartnic` is not.
#[tokio::test]
async fn network_fields() {
    let api = common::api::start(common::memory().await).await;
    let n = node(&api, None).await;
    let a = api
        .post(
            "/v1/ports",
            json!({"node_uuid": n, "address": "52:54:00:00:00:01",
                   "local_link_connection": {"switch_id": "AA:BB:CC:DD:EE:FF", "port_id": "Eth1/1", "switch_info": "sw1"},
                   "physical_network": "physnet1"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let p = a.body["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        a.body["local_link_connection"],
        json!({"switch_id": "aa:bb:cc:dd:ee:ff", "port_id": "Eth1/1", "switch_info": "sw1"})
    );
    assert_eq!(a.body["physical_network"], "physnet1");
    assert_eq!(a.body["is_smartnic"], false);
    let shown = api.get(&format!("/v1/ports/{p}")).await.body;
    assert_eq!(shown, a.body, "shown as created");

    for (mac, body, link, smartnic) in [
        (
            "52:54:00:00:00:02",
            json!({"local_link_connection": {"switch_id": "00000000ABCDEF01", "port_id": "x"}}),
            json!({"switch_id": "00000000abcdef01", "port_id": "x"}),
            false,
        ),
        (
            "52:54:00:00:00:03",
            json!({"is_smartnic": "yes", "local_link_connection": {"hostname": "bf1", "port_id": "rep0-0"}}),
            json!({"hostname": "bf1", "port_id": "rep0-0"}),
            true,
        ),
        (
            "52:54:00:00:00:04",
            json!({"is_smartnic": true}),
            json!({}),
            true,
        ),
        (
            "52:54:00:00:00:05",
            json!({"local_link_connection": {"network_type": "unmanaged"}}),
            json!({"network_type": "unmanaged"}),
            false,
        ),
    ] {
        let mut body = body;
        body["node_uuid"] = json!(n);
        body["address"] = json!(mac);
        let a = api.post("/v1/ports", body).await;
        assert_eq!(a.status, StatusCode::CREATED, "{mac}: {:?}", a.body);
        assert_eq!(a.body["local_link_connection"], link, "{mac}");
        assert_eq!(a.body["is_smartnic"], smartnic, "{mac}");
    }

    // Sorted by a network field (ties in creation order, as in Ironic).
    let a = api
        .get("/v1/ports?sort_key=is_smartnic&sort_dir=desc&fields=address,is_smartnic")
        .await;
    let order: Vec<&str> = a.body["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["address"].as_str().unwrap())
        .collect();
    assert_eq!(order.len(), 5);
    assert_eq!(&order[..2], ["52:54:00:00:00:04", "52:54:00:00:00:03"]);

    // Patched by a sub-path, and removed; the node is in enroll, where
    // connectivity may change.
    let path = format!("/v1/ports/{p}");
    let a = api
        .patch(&path, json!([{"op": "replace", "path": "/local_link_connection/switch_id", "value": "AA:AA:AA:AA:AA:AA"},
                             {"op": "replace", "path": "/physical_network", "value": null},
                             {"op": "replace", "path": "/is_smartnic", "value": "true"}]))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(
        a.body["local_link_connection"]["switch_id"],
        "aa:aa:aa:aa:aa:aa"
    );
    assert_eq!(a.body["physical_network"], Value::Null);
    assert_eq!(a.body["is_smartnic"], true);
    // OVN VTEP keys can be patched in (as in Ironic) but are shown below 1.90
    // as no link at all.
    let a = api
        .patch(&path, json!([{"op": "add", "path": "/local_link_connection", "value": {"port_id": "p", "vtep-logical-switch": "a", "vtep-physical-switch": "b"}}]))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["local_link_connection"], json!({}));
    let a = api
        .patch(
            &path,
            json!([{"op": "remove", "path": "/local_link_connection"}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["local_link_connection"], json!({}));

    // On an available node the link and the physical network are refused,
    // is_smartnic is not.
    make_available(&api, n).await;
    let before = events_of(&api, n).await;
    for ops in [
        json!([{"op": "add", "path": "/local_link_connection", "value": {"network_type": "unmanaged"}}]),
        json!([{"op": "add", "path": "/physical_network", "value": "physnet2"}]),
    ] {
        let a = api.patch(&path, ops.clone()).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{ops}: {:?}", a.body);
        assert!(
            a.error()
                .contains("can not have any connectivity attributes"),
            "{}",
            a.error()
        );
    }
    assert_eq!(
        events_of(&api, n).await,
        before,
        "no refusal wrote anything"
    );
    let a = api
        .patch(
            &path,
            json!([{"op": "replace", "path": "/is_smartnic", "value": false}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
}

#[tokio::test]
async fn create_errors() {
    let api = common::api::start(common::memory().await).await;
    let n = node(&api, None).await;
    let n2 = node(&api, None).await;
    let p = port(&api, n, "52:54:00:00:00:01").await;
    let before = (events_of(&api, n).await, events_of(&api, n2).await);
    let post =
        |body: Value, status: u16, msg: &str| c(Method::POST, "/v1/ports", Some(body), status, msg);
    let mut cases = vec![
        post(json!({"node_uuid": n2, "address": "52:54:00:00:00:01"}), 409, "A port with MAC address 52:54:00:00:00:01 already exists."),
        post(json!({"node_uuid": n2, "address": "52:54:00:00:00:01".to_uppercase()}), 409, "A port with MAC address 52:54:00:00:00:01 already exists."),
        post(json!({"node_uuid": n, "address": "52:54:00:00:00:01"}), 409, "A port with MAC address 52:54:00:00:00:01 already exists."),
        post(json!({"node_uuid": n2, "address": "52:54:00:00:00:09", "uuid": p}), 409, &format!("A port with UUID {p} already exists.")),
        post(json!({"node_uuid": n2, "address": "52-54-00-aa-bb-02"}), 400, "Expected valid MAC address for address: 52-54-00-aa-bb-02"),
        post(json!({"node_uuid": n2, "address": "zz"}), 400, "Expected valid MAC address for address: zz"),
        post(json!({"node_uuid": n2}), 400, "Schema error for port: 'address' is a required property"),
        post(json!({"address": "52:54:00:aa:bb:03"}), 400,
             "Schema error for port: {'address': '52:54:00:aa:bb:03'} is not valid under any of the given schemas. Possible root cause: 'node_ident' is a required property"),
        post(json!({"node_uuid": MISSING, "address": "52:54:00:aa:bb:03"}), 400, &format!("Node {MISSING} could not be found.")),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "foo": 1}), 400, "Schema error for port: Additional properties are not allowed ('foo' was unexpected)"),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "pxe_enabled": "maybe"}), 400,
             "Invalid pxe_enabled: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "pxe_enabled": 1}), 400, "Schema error for port: 1 is not of type 'string', 'boolean', 'null'"),
        post(json!({"node_uuid": n2, "address": 5}), 400, "Schema error for port: 5 is not of type 'string'"),
        post(json!({"node_uuid": "vprobe", "address": "52:54:00:aa:bb:03"}), 400, "Expected UUID for node_uuid: vprobe"),
        // The network fields, with Ironic 39's answers to the same bodies.
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "local_link_connection": {"switch_id": "aa:bb:cc:dd:ee:ff", "port_id": "Eth1/1", "foo": "x"}}), 400,
             "Schema error for local_link_connection: {'foo': 'x', 'port_id': 'Eth1/1', 'switch_id': 'aa:bb:cc:dd:ee:ff'} is not valid under any of the given schemas. Possible root cause: Additional properties are not allowed ('foo' was unexpected)"),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "local_link_connection": {"port_id": "x"}}), 400,
             "Schema error for local_link_connection: {'port_id': 'x'} is not valid under any of the given schemas. Possible root cause: 'switch_id' is a required property"),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "local_link_connection": {"switch_id": "nope", "port_id": "x"}}), 400,
             "Expected a MAC address or OpenFlow datapath ID but received nope."),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "local_link_connection": {"network_type": "managed"}}), 400,
             "Schema error for local_link_connection: 'managed' is not one of ['unmanaged']"),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "local_link_connection": []}), 400,
             "Schema error for port: [] is not of type 'null', 'object'"),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "is_smartnic": true, "local_link_connection": {"switch_id": "aa:bb:cc:dd:ee:ff", "port_id": "x"}}), 400,
             "Smart NIC port must have port_id and hostname in local_link_connection"),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "physical_network": ""}), 400,
             "A non-empty value is required when setting physical_network"),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "physical_network": "x".repeat(65)}), 400,
             &format!("Schema error for port: '{}' is too long", "x".repeat(65))),
        // OVN VTEP switches came with 1.90.
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "local_link_connection": {"port_id": "x", "vtep-logical-switch": "a", "vtep-physical-switch": "b"}}), 406,
             "Request not acceptable."),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "portgroup_uuid": MISSING}), 400, &format!("Portgroup {MISSING} could not be found.")),
        post(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:03", "name": "eth0"}), 406, "Request not acceptable."),
        c(Method::POST, format!("/v1/nodes/{n}/ports"), Some(json!({"node_uuid": n, "address": "52:54:00:aa:bb:08"})), 400, "Malformed request URI."),
    ];
    // network_type came with 1.64; a bad one is refused before the version.
    for (network_type, status, msg) in [
        ("unmanaged", 406, "Request not acceptable.".to_string()),
        ("bogus", 400, "Schema error for local_link_connection: {'network_type': 'bogus'} is not valid under any of the given schemas. Possible root cause: 'port_id' is a required property".to_string()),
    ] {
        cases.push((
            Method::POST,
            "/v1/ports".into(),
            Some(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:07", "local_link_connection": {"network_type": network_type}})),
            "1.63",
            status,
            msg,
        ));
    }
    // Fields newer than the request → 406.
    cases.push((
        Method::POST,
        "/v1/ports".into(),
        Some(json!({"node_uuid": n2, "address": "52:54:00:aa:bb:07", "pxe_enabled": true})),
        "1.18",
        406,
        "Request not acceptable.".into(),
    ));
    run(&api, cases).await;
    assert_eq!(
        (events_of(&api, n).await, events_of(&api, n2).await),
        before,
        "no refusal wrote anything"
    );
}

#[tokio::test]
async fn lists() {
    let api = common::api::start(common::memory().await).await;
    let n1 = node(&api, Some("alpha")).await;
    let n2 = node(&api, None).await;
    let p1 = port(&api, n1, "52:54:00:00:00:03").await;
    let p2 = port(&api, n2, "52:54:00:00:00:01").await;
    let p3 = port(&api, n1, "52:54:00:00:00:02").await;
    let b = api.base.clone();
    let uuids = |v: &Value| -> Vec<String> {
        v["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["uuid"].as_str().unwrap().to_string())
            .collect()
    };

    let a = api.get("/v1/ports").await;
    assert_eq!(uuids(&a.body), [p1.clone(), p2.clone(), p3.clone()]);
    assert_eq!(keys(&a.body["ports"][0]), ["address", "links", "uuid"]);
    let a = api.get("/v1/ports/detail").await;
    assert_eq!(keys(&a.body["ports"][0]).len(), 13);
    let a = api.get("/v1/ports?detail=true").await;
    assert_eq!(keys(&a.body["ports"][0]).len(), 13);
    let a = api.get("/v1/ports?fields=uuid,pxe_enabled").await;
    assert_eq!(keys(&a.body["ports"][0]), ["links", "pxe_enabled", "uuid"]);

    // Filters.
    for q in [
        format!("node={n1}"),
        "node=alpha".into(),
        format!("node_uuid={n1}"),
    ] {
        assert_eq!(
            uuids(&api.get(&format!("/v1/ports?{q}")).await.body),
            [p1.clone(), p3.clone()],
            "{q}"
        );
    }
    assert_eq!(
        uuids(&api.get("/v1/ports?address=52:54:00:00:00:01").await.body),
        std::slice::from_ref(&p2)
    );
    assert_eq!(
        uuids(&api.get("/v1/ports?address=52:54:00:00:00:99").await.body),
        Vec::<String>::new()
    );
    // The node filter wins over the address filter (as in Ironic).
    assert_eq!(
        uuids(
            &api.get(&format!("/v1/ports?node={n1}&address=52:54:00:00:00:01"))
                .await
                .body
        ),
        [p1.clone(), p3.clone()]
    );
    // Node-scoped (Ironic 39 answers a bogus 404 here; ironledger lists).
    assert_eq!(
        uuids(&api.get(&format!("/v1/nodes/{n1}/ports")).await.body),
        [p1.clone(), p3.clone()]
    );
    assert_eq!(
        uuids(&api.get("/v1/nodes/alpha/ports/detail").await.body),
        [p1.clone(), p3.clone()]
    );

    // A trailing slash names the same resource.
    assert_eq!(
        uuids(&api.get("/v1/ports/?node=alpha").await.body),
        [p1.clone(), p3.clone()]
    );
    assert_eq!(
        api.get(&format!("/v1/ports/{p2}/")).await.body["uuid"],
        p2.as_str()
    );
    // Pagination and sorting.
    let a = api.get("/v1/ports?limit=1").await;
    assert_eq!(
        a.body["next"],
        format!("{b}/v1/ports?sort_key=id&sort_dir=asc&fields=uuid,address&limit=1&marker={p1}")
    );
    let a = api.get("/v1/ports/detail?limit=1").await;
    assert_eq!(
        a.body["next"],
        format!("{b}/v1/ports/detail?sort_key=id&sort_dir=asc&limit=1&marker={p1}")
    );
    let a = api.get("/v1/ports?limit=1&detail=true").await;
    assert_eq!(
        a.body["next"],
        format!("{b}/v1/ports?sort_key=id&sort_dir=asc&detail=True&limit=1&marker={p1}")
    );
    let a = api.get(&format!("/v1/nodes/{n1}/ports?limit=1")).await;
    assert_eq!(
        a.body["next"],
        format!("{b}/v1/ports?sort_key=id&sort_dir=asc&fields=uuid,address&limit=1&marker={p1}")
    );
    let a = api.get(&format!("/v1/ports?marker={p1}")).await;
    assert_eq!(uuids(&a.body), [p2.clone(), p3.clone()]);
    let a = api.get("/v1/ports?sort_key=address").await;
    assert_eq!(uuids(&a.body), [p2.clone(), p3.clone(), p1.clone()]);
    let a = api.get("/v1/ports?sort_key=address&sort_dir=desc").await;
    assert_eq!(uuids(&a.body), [p1.clone(), p3.clone(), p2.clone()]);
    // Older versions.
    let a = api
        .call_v(Method::GET, "/v1/ports/detail", None, Some("1.1"))
        .await;
    assert_eq!(
        keys(&a.body["ports"][0]),
        [
            "address",
            "created_at",
            "extra",
            "links",
            "node_uuid",
            "updated_at",
            "uuid"
        ]
    );

    let old = |p: &str, v: &'static str, status: u16, msg: &str| {
        (Method::GET, p.to_string(), None, v, status, msg.to_string())
    };
    run(
        &api,
        vec![
            c(
                Method::GET,
                "/v1/ports?limit=0",
                None,
                400,
                "Limit must be positive",
            ),
            c(
                Method::GET,
                "/v1/ports?limit=abc",
                None,
                400,
                "Expected an integer for limit: abc",
            ),
            c(
                Method::GET,
                "/v1/ports?marker=nope",
                None,
                400,
                "Expected UUID for marker: nope",
            ),
            c(
                Method::GET,
                format!("/v1/ports?marker={MISSING}"),
                None,
                404,
                format!("Port {MISSING} could not be found."),
            ),
            c(
                Method::GET,
                "/v1/ports?sort_dir=up",
                None,
                400,
                "Invalid sort direction: up. Acceptable values are 'asc' or 'desc'",
            ),
            c(
                Method::GET,
                "/v1/ports?sort_key=extra",
                None,
                400,
                "The sort_key value extra is an invalid field for sorting",
            ),
            c(
                Method::GET,
                "/v1/ports?sort_key=bogus",
                None,
                400,
                "The sort_key value \"bogus\" is an invalid field for sorting",
            ),
            c(
                Method::GET,
                "/v1/ports?sort_key=node_uuid",
                None,
                400,
                "The sort_key value \"node_uuid\" is an invalid field for sorting",
            ),
            c(
                Method::GET,
                "/v1/ports?address=zz",
                None,
                400,
                "Expected valid MAC address for address: zz",
            ),
            c(
                Method::GET,
                "/v1/ports?node_uuid=nope",
                None,
                400,
                "Expected UUID for node_uuid: nope",
            ),
            c(
                Method::GET,
                "/v1/ports?node=bad%20name",
                None,
                400,
                "Expected UUID or name for node: bad name",
            ),
            c(
                Method::GET,
                "/v1/ports?node=nosuch",
                None,
                404,
                "Node nosuch could not be found.",
            ),
            c(
                Method::GET,
                "/v1/nodes/nosuch/ports",
                None,
                404,
                "Node nosuch could not be found.",
            ),
            c(
                Method::GET,
                "/v1/ports?fields=bogus,xx",
                None,
                400,
                "Field(s) \"bogus, xx\" are not valid",
            ),
            c(
                Method::GET,
                "/v1/ports?fields=uuid&detail=true",
                None,
                400,
                "Can not specify ?detail=True and fields in the same request.",
            ),
            c(
                Method::GET,
                "/v1/ports/detail?fields=uuid",
                None,
                400,
                "Unexpected arguments: fields",
            ),
            c(
                Method::GET,
                "/v1/ports?foo=1",
                None,
                400,
                "Unexpected arguments: foo",
            ),
            c(
                Method::GET,
                "/v1/ports?portgroup=pg1",
                None,
                404,
                "Portgroup pg1 could not be found.",
            ),
            c(
                Method::GET,
                "/v1/ports?fields=name",
                None,
                406,
                "Request not acceptable.",
            ),
            old(
                "/v1/ports?detail=true",
                "1.42",
                400,
                "Invalid query parameter ?detail=True received.",
            ),
            old(
                "/v1/ports?detail=false",
                "1.42",
                400,
                "Invalid query parameter ?detail=False received.",
            ),
            old(
                "/v1/ports?fields=uuid",
                "1.7",
                406,
                "Request not acceptable.",
            ),
            old(
                "/v1/ports?fields=pxe_enabled",
                "1.18",
                406,
                "Request not acceptable.",
            ),
            old(
                "/v1/ports?sort_key=pxe_enabled",
                "1.18",
                406,
                "Request not acceptable.",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn show_patch_delete() {
    let api = common::api::start(common::memory().await).await;
    let n1 = node(&api, None).await;
    let n2 = node(&api, None).await;
    let p = port(&api, n1, "52:54:00:00:00:01").await;
    let other = port(&api, n1, "52:54:00:00:00:02").await;
    let path = format!("/v1/ports/{p}");
    let schema = |m: &str| format!("Schema error for patch: {m}");
    let before = (events_of(&api, n1).await, events_of(&api, n2).await);
    run(&api, vec![
        c(Method::GET, "/v1/ports/notauuid", None, 404, "Port notauuid could not be found."),
        c(Method::GET, "/v1/ports/bad%20name", None, 400, "Expected UUID or name for port_ident: bad name"),
        c(Method::GET, format!("/v1/ports/{MISSING}"), None, 404, format!("Port {MISSING} could not be found.")),
        c(Method::GET, format!("/v1/ports/{p}?fields=bogus"), None, 400, "Field(s) \"bogus\" are not valid"),
        c(Method::GET, format!("/v1/ports/{p}?detail=true"), None, 400, "Unexpected arguments: detail"),
        c(Method::GET, format!("/v1/nodes/{n1}/ports/{p}"), None, 400, "Malformed request URI."),
        c(Method::PATCH, format!("/v1/nodes/{n1}/ports/{p}"), Some(json!([])), 400, "Malformed request URI."),
        c(Method::DELETE, format!("/v1/nodes/{n1}/ports/{p}"), None, 400, "Malformed request URI."),
        c(Method::DELETE, "/v1/ports/notauuid", None, 400, "Expected UUID for port_uuid: notauuid"),
        c(Method::DELETE, format!("/v1/ports/{MISSING}"), None, 404, format!("Port {MISSING} could not be found.")),
        c(Method::PATCH, format!("/v1/ports/{MISSING}"), Some(json!([{"op": "replace", "path": "/extra", "value": {}}])), 404, format!("Port {MISSING} could not be found.")),
        c(Method::PATCH, path.clone(), Some(json!({})), 400, schema("{} is not of type 'array'")),
        c(Method::PATCH, path.clone(), Some(json!([{"op": "replace", "path": "/uuid", "value": "x"}])), 400,
          "Cannot patch /uuid. Only the following can be updated: address, extra, is_smartnic, local_link_connection, node_ident, node_uuid, physical_network, portgroup_uuid, pxe_enabled, name, description, vendor, category, available_for_dynamic_portgroup"),
        c(Method::PATCH, path.clone(), Some(json!([{"op": "add", "path": "/node_ident", "value": "x"}])), 400,
          "Adding a new attribute (/node_ident) to the root of the resource is not allowed"),
        c(Method::PATCH, path.clone(), Some(json!([{"op": "replace", "path": "/address", "value": "zz"}])), 400, "Expected valid MAC address for address: zz"),
        c(Method::PATCH, path.clone(), Some(json!([{"op": "replace", "path": "/address", "value": "52:54:00:00:00:02"}])), 409,
          "A port with MAC address 52:54:00:00:00:02 already exists."),
        c(Method::PATCH, path.clone(), Some(json!([{"op": "replace", "path": "/pxe_enabled", "value": 3}])), 400,
          schema("3 is not of type 'string', 'boolean', 'null'")),
        c(Method::PATCH, path.clone(), Some(json!([{"op": "remove", "path": "/address"}])), 400, schema("'address' is a required property")),
        c(Method::PATCH, path.clone(), Some(json!([{"op": "replace", "path": "/node_uuid", "value": MISSING}])), 400,
          format!("Unable to apply the requested node_uuid '{MISSING}'. Requested value was invalid.")),
        c(Method::PATCH, path.clone(), Some(json!([{"op": "replace", "path": "/physical_network", "value": ""}])), 400,
          "A non-empty value is required when setting physical_network"),
        c(Method::PATCH, path.clone(), Some(json!([{"op": "add", "path": "/local_link_connection/port_id", "value": 5}])), 400,
          "Schema error for local_link_connection: {'port_id': 5} is not valid under any of the given schemas. Possible root cause: 'switch_id' is a required property"),
        c(Method::PATCH, path.clone(), Some(json!([{"op": "replace", "path": "/is_smartnic", "value": "maybe"}])), 400,
          "Invalid is_smartnic: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"),
        (Method::PATCH, path.clone(), Some(json!([{"op": "add", "path": "/local_link_connection/network_type", "value": "unmanaged"}])), "1.63", 406, "Request not acceptable.".into()),
        (Method::PATCH, path.clone(), Some(json!([{"op": "replace", "path": "/pxe_enabled", "value": false}])), "1.18", 406, "Request not acceptable.".into()),
    ]).await;
    assert_eq!(
        (events_of(&api, n1).await, events_of(&api, n2).await),
        before,
        "no refusal wrote anything"
    );

    let a = api
        .patch(&path, json!([{"op": "replace", "path": "/pxe_enabled", "value": "false"}, {"op": "add", "path": "/extra/k", "value": 1},
                             {"op": "replace", "path": "/address", "value": "52:54:00:00:00:AA"}]))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["pxe_enabled"], json!(false));
    assert_eq!(a.body["extra"], json!({"k": 1}));
    assert_eq!(a.body["address"], "52:54:00:00:00:aa");
    // The address filter is case-insensitive.
    let found = api.get("/v1/ports?address=52:54:00:00:00:AA").await;
    assert_eq!(found.body["ports"][0]["uuid"], p.as_str());
    // The old MAC is free again; the new one is taken.
    port(&api, n2, "52:54:00:00:00:01").await;
    let a = api
        .post(
            "/v1/ports",
            json!({"node_uuid": n2, "address": "52:54:00:00:00:aa"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);

    // Re-homing.
    let a = api
        .patch(
            &path,
            json!([{"op": "replace", "path": "/node_uuid", "value": n2}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["node_uuid"], n2.to_string());
    assert_eq!(a.body["address"], "52:54:00:00:00:aa");
    assert_eq!(api.engine.load_node(n1).await.unwrap().ports.len(), 1);
    assert_eq!(api.engine.load_node(n2).await.unwrap().ports.len(), 2);
    let _ = other;

    // Delete.
    let a = api.delete(&path).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(api.get(&path).await.status, StatusCode::NOT_FOUND);
    port(&api, n1, "52:54:00:00:00:aa").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_posts_of_one_mac_on_postgres() {
    let api = common::api::start(common::postgres().await).await;
    let n1 = node(&api, None).await;
    let n2 = node(&api, None).await;
    let body = |n: Uuid| json!({"node_uuid": n, "address": "52:54:00:12:34:56"});
    let (a, b) = tokio::join!(
        api.post("/v1/ports", body(n1)),
        api.post("/v1/ports", body(n2))
    );
    let mut s = [a.status.as_u16(), b.status.as_u16()];
    s.sort();
    assert_eq!(s, [201, 409]);
    let loser = if a.status == StatusCode::CONFLICT {
        a
    } else {
        b
    };
    assert_eq!(
        loser.error(),
        "A port with MAC address 52:54:00:12:34:56 already exists."
    );
}

/// Ironic's conductor rules for port updates hold over HTTP (409), and
/// maintenance lifts them.
#[tokio::test]
async fn port_updates_follow_the_node_state() {
    let api = common::api::start(common::memory().await).await;
    let n = node(&api, None).await;
    make_available(&api, n).await;
    let p = port(&api, n, "52:54:00:00:00:01").await;
    let path = format!("/v1/ports/{p}");
    let before = events_of(&api, n).await;
    let a = api
        .patch(
            &path,
            json!([{"op": "replace", "path": "/pxe_enabled", "value": false}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(
        a.error(),
        format!("Port {p} can not have any connectivity attributes (portgroup_id, pxe_enabled, local_link_connection, physical_network) updated unless node {n} is in a enroll, inspecting, inspect wait, manageable state or in maintenance mode. The current state is available.")
    );
    assert_eq!(events_of(&api, n).await, before);
    // extra and the MAC may change on an available node.
    let a = api.patch(&path, json!([{"op": "add", "path": "/extra/a", "value": 1}, {"op": "replace", "path": "/address", "value": "52:54:00:00:00:02"}])).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    api.engine
        .node(
            n,
            NodeCommand::SetMaintenance { reason: None },
            &Meta::actor("test"),
        )
        .await
        .unwrap();
    let a = api
        .patch(
            &path,
            json!([{"op": "replace", "path": "/pxe_enabled", "value": false}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["pxe_enabled"], json!(false));
}
