//! The `redfish` and `ipmi` hardware types over real HTTP: their drivers in
//! `GET /v1/drivers`, nodes enrolled with them and their interfaces, the BMC
//! passwords of `driver_info` masked in every answer, what `validate` says of
//! their `driver_info` (Ironic's texts), the requests a BMC node's pending
//! power change or deploy holds off (409, writing nothing), and the boot
//! device endpoints where no BMC answers (fake, manual; BMC nodes' refusals).

use crate::common;

use common::api::{Answer, Api};
use ironledger::domain::NodeCommand;
use ironledger::engine::Meta;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

const REDFISH_PW: &str = "Rf-pass-7731";
const IPMI_PW: &str = "Ipmi-pass-2290";

async fn api() -> Api {
    common::api::start(common::memory().await).await
}

async fn create(api: &Api, body: Value) -> String {
    let a = api.post("/v1/nodes", body.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED, "{body}: {:?}", a.body);
    a.body["uuid"].as_str().unwrap().to_string()
}

fn refused(a: &Answer, status: u16, message: &str) {
    assert_eq!(a.status.as_u16(), status, "{:?}", a.body);
    assert_eq!(a.error(), message, "{:?}", a.body);
}

fn redfish_node() -> Value {
    json!({"driver": "redfish", "name": "rf-1",
           "driver_info": {"redfish_address": "https://10.1.2.3:8000",
                           "redfish_system_id": "/redfish/v1/Systems/1",
                           "redfish_username": "admin", "redfish_password": REDFISH_PW,
                           "redfish_verify_ca": false}})
}

fn ipmi_node() -> Value {
    json!({"driver": "ipmi", "name": "ipmi-1",
           "driver_info": {"ipmi_address": "10.1.2.4", "ipmi_port": 6230,
                           "ipmi_username": "admin", "ipmi_password": IPMI_PW}})
}

async fn validate(api: &Api, node: &str) -> Value {
    let a = api.get(&format!("/v1/nodes/{node}/validate")).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.body
}

async fn events(api: &Api, node: &str) -> usize {
    api.event_count(Uuid::parse_str(node).unwrap()).await
}

#[tokio::test]
async fn drivers_list_and_show_the_bmc_types() {
    let api = api().await;
    let a = api.get("/v1/drivers?detail=true").await;
    let drivers = a.body["drivers"].as_array().unwrap();
    let find = |n: &str| drivers.iter().find(|d| d["name"] == n).cloned().unwrap();
    for (name, power, management) in [
        ("redfish", "redfish", json!(["redfish", "noop"])),
        ("ipmi", "ipmitool", json!(["ipmitool"])),
    ] {
        for d in [
            find(name),
            api.get(&format!("/v1/drivers/{name}")).await.body,
        ] {
            assert_eq!(d["type"], "dynamic", "{d}");
            assert_eq!(d["default_power_interface"], power, "{d}");
            assert_eq!(d["enabled_power_interfaces"], json!([power]), "{d}");
            assert_eq!(d["default_management_interface"], management[0], "{d}");
            assert_eq!(d["enabled_management_interfaces"], management, "{d}");
            assert_eq!(d["default_boot_interface"], "ipxe", "{d}");
            assert_eq!(d["enabled_boot_interfaces"], json!(["ipxe", "pxe"]), "{d}");
            assert_eq!(d["default_deploy_interface"], "direct", "{d}");
            assert_eq!(d["default_storage_interface"], "noop", "{d}");
            assert_eq!(
                d["enabled_storage_interfaces"],
                json!(["noop", "cinder", "external"])
            );
        }
    }
    // The fake types keep their fake power and management.
    let fake = find("fake-hardware");
    assert_eq!(fake["default_power_interface"], "fake");
    assert_eq!(fake["enabled_power_interfaces"], json!(["fake"]));
}

#[tokio::test]
async fn the_options_choose_types_and_interfaces() {
    let api = common::api::start_with(
        common::memory().await,
        "[DEFAULT]\nenabled_hardware_types = redfish\nenabled_power_interfaces = redfish\n\
         enabled_management_interfaces = redfish,noop\ndefault_management_interface = noop\n",
    )
    .await;
    let a = api.get("/v1/drivers").await;
    let names: Vec<&str> = a.body["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["redfish"]);
    refused(
        &api.post("/v1/nodes", ipmi_node()).await,
        400,
        "No valid host was found. Reason: No conductor service registered which supports driver ipmi for conductor group \"\". Ensure the driver is valid and enabled.",
    );
    let n = create(&api, redfish_node()).await;
    let node = api.get(&format!("/v1/nodes/{n}")).await.body;
    assert_eq!(node["power_interface"], "redfish");
    assert_eq!(node["management_interface"], "noop");
    // An interface of the other BMC type is refused by name.
    let a = api
        .post(
            "/v1/nodes",
            json!({"driver": "redfish", "power_interface": "ipmitool"}),
        )
        .await;
    refused(&a, 400, "Could not find the following interface in the 'ironic.hardware.interfaces.power' entrypoint: ipmitool. Valid interfaces are ['redfish'].");
}

#[tokio::test]
async fn bmc_nodes_enrol_with_their_interfaces_and_masked_passwords() {
    let api = api().await;
    let rf = create(&api, redfish_node()).await;
    let ipmi = create(&api, ipmi_node()).await;
    let node = api.get(&format!("/v1/nodes/{rf}")).await.body;
    assert_eq!(node["driver"], "redfish");
    assert_eq!(
        (
            &node["power_interface"],
            &node["management_interface"],
            &node["boot_interface"]
        ),
        (&json!("redfish"), &json!("redfish"), &json!("ipxe"))
    );
    let node = api.get(&format!("/v1/nodes/{ipmi}")).await.body;
    assert_eq!(
        (&node["power_interface"], &node["management_interface"]),
        (&json!("ipmitool"), &json!("ipmitool"))
    );

    for path in [
        format!("/v1/nodes/{rf}"),
        format!("/v1/nodes/{rf}?fields=driver_info"),
        format!("/v1/nodes/{ipmi}?fields=driver_info,uuid"),
        "/v1/nodes/detail".into(),
        "/v1/nodes?fields=driver_info".into(),
    ] {
        let a = api.get(&path).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {:?}", a.body);
        let text = a.body.to_string();
        assert!(
            !text.contains(REDFISH_PW) && !text.contains(IPMI_PW),
            "{path}: {text}"
        );
        assert!(text.contains("\"******\""), "{path}: {text}");
    }
    let shown = api.get(&format!("/v1/nodes/{rf}")).await.body["driver_info"].clone();
    assert_eq!(
        shown,
        json!({"redfish_address": "https://10.1.2.3:8000", "redfish_system_id": "/redfish/v1/Systems/1",
               "redfish_username": "admin", "redfish_password": "******", "redfish_verify_ca": false})
    );
    // The PATCH answer masks too, and the password is kept as given.
    let a = api
        .patch(
            &format!("/v1/nodes/{ipmi}"),
            json!([{"op": "replace", "path": "/driver_info/ipmi_password", "value": "New-Ipmi-9"}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["driver_info"]["ipmi_password"], "******");
    let stored = api
        .engine
        .load_node(Uuid::parse_str(&ipmi).unwrap())
        .await
        .unwrap();
    assert_eq!(stored.driver_info["ipmi_password"], "New-Ipmi-9");

    // Ports, connectors and targets work on BMC nodes.
    let a = api
        .post(
            "/v1/ports",
            json!({"node_uuid": rf, "address": "52:54:00:12:34:56"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let a = api
        .post(
            "/v1/volume/connectors",
            json!({"node_uuid": rf, "type": "iqn", "connector_id": "iqn.2024-01.org.example:rf-1"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
    let a = api
        .post(
            "/v1/volume/targets",
            json!({"node_uuid": rf, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v-1"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
}

#[tokio::test]
async fn validate_reads_driver_info_as_ironic() {
    let api = api().await;
    let rf = create(&api, redfish_node()).await;
    let v = validate(&api, &rf).await;
    assert_eq!(v["power"], json!({"result": true}), "{v}");
    assert_eq!(v["management"], json!({"result": true}), "{v}");
    let ipmi = create(&api, ipmi_node()).await;
    let v = validate(&api, &ipmi).await;
    assert_eq!(v["power"], json!({"result": true}), "{v}");
    assert_eq!(v["management"], json!({"result": true}), "{v}");

    let bare = create(&api, json!({"driver": "redfish"})).await;
    let v = validate(&api, &bare).await;
    let missing = format!(
        "Missing the following Redfish properties in node {bare} driver_info: ['redfish_address']"
    );
    for kind in ["power", "management"] {
        assert_eq!(
            v[kind],
            json!({"result": false, "reason": missing}),
            "{kind}: {v}"
        );
    }
    let bare = create(&api, json!({"driver": "ipmi"})).await;
    let v = validate(&api, &bare).await;
    assert_eq!(
        v["power"]["reason"],
        "Missing the following IPMI credentials in node's driver_info: ['ipmi_address']."
    );

    // Each invalid value, through PATCH, then validate.
    let cases: Vec<(&str, &str, Value, String)> = vec![
        (&rf, "redfish_verify_ca", json!("maybe"),
         format!("Invalid value type set in driver_info/redfish_verify_ca on node {rf}. The value should be a Boolean or the path to a file/directory, not \"maybe\"")),
        (&rf, "redfish_auth_type", json!("digest"),
         format!("Invalid value \"digest\" set in driver_info/redfish_auth_type on node {rf}. The value should be one of \"basic\", \"session\" or \"auto\".")),
        (&rf, "redfish_address", json!("http://"),
         format!("Invalid Redfish address http:// set in driver_info/redfish_address on node {rf}")),
        (&ipmi, "ipmi_port", json!("x"), "ipmi_port \"x\" is not a valid port.".into()),
        (&ipmi, "ipmi_priv_level", json!("ROOT"),
         "Invalid privilege level value:ROOT, the valid value can be one of ADMINISTRATOR, CALLBACK, OPERATOR, USER".into()),
        (&ipmi, "ipmi_protocol_version", json!("3.0"),
         "Invalid IPMI protocol version value 3.0, the valid value can be one of 2.0, 1.5".into()),
    ];
    for (node, key, value, reason) in cases {
        let good = api.get(&format!("/v1/nodes/{node}")).await.body["driver_info"][key].clone();
        let a = api
            .patch(
                &format!("/v1/nodes/{node}"),
                json!([{"op": "add", "path": format!("/driver_info/{key}"), "value": value}]),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        let v = validate(&api, node).await;
        for kind in ["power", "management"] {
            assert_eq!(
                v[kind],
                json!({"result": false, "reason": reason}),
                "{key}: {v}"
            );
        }
        let op = if good.is_null() {
            json!([{"op": "remove", "path": format!("/driver_info/{key}")}])
        } else {
            json!([{"op": "replace", "path": format!("/driver_info/{key}"), "value": good}])
        };
        assert_eq!(
            api.patch(&format!("/v1/nodes/{node}"), op).await.status,
            StatusCode::OK
        );
        assert_eq!(validate(&api, node).await["power"]["result"], true);
    }
    // A CA bundle that exists is taken as one.
    let ca = std::env::temp_dir().join(format!("ironledger-ca-{}.pem", Uuid::new_v4()));
    std::fs::write(&ca, "not checked by validate").unwrap();
    let a = api
        .patch(
            &format!("/v1/nodes/{rf}"),
            json!([{"op": "replace", "path": "/driver_info/redfish_verify_ca", "value": ca.to_str().unwrap()}]),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(validate(&api, &rf).await["power"]["result"], true);
    std::fs::remove_file(&ca).unwrap();
    assert!(validate(&api, &rf).await["power"]["reason"]
        .as_str()
        .unwrap()
        .contains("redfish_verify_ca"));
}

#[tokio::test]
async fn deploy_is_accepted_and_a_power_change_and_a_deploy_hold_each_other_off() {
    let api = api().await;
    for body in [redfish_node(), ipmi_node()] {
        let n = create(&api, body).await;
        let id = Uuid::parse_str(&n).unwrap();
        api.make_bootable(&n).await;
        for v in ["manage", "provide"] {
            let a = api
                .put(
                    &format!("/v1/nodes/{n}/states/provision"),
                    json!({ "target": v }),
                )
                .await;
            assert_eq!(a.status, StatusCode::ACCEPTED, "{v}: {:?}", a.body);
        }

        // Power is a request the process manager carries out (none runs
        // here, so it stays pending and shows).
        let a = api
            .put(
                &format!("/v1/nodes/{n}/states/power"),
                json!({ "target": "power on" }),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
        let node = api.get(&format!("/v1/nodes/{n}")).await.body;
        assert_eq!(node["target_power_state"], "power on");
        assert_eq!(node["power_state"], Value::Null);

        // While it is pending, a deploy would drive the same BMC: 409, and
        // nothing is written.
        let before = events(&api, &n).await;
        let a = api
            .put(
                &format!("/v1/nodes/{n}/states/provision"),
                json!({ "target": "active" }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{:?}", a.body);
        assert!(
            a.body["error_message"].to_string().contains("locked"),
            "{:?}",
            a.body
        );
        assert_eq!(events(&api, &n).await, before, "a refusal writes nothing");

        api.engine
            .node(
                id,
                NodeCommand::FinishPower {
                    power_state: "power on".into(),
                    at: "2026-12-02T04:00:00.000000".into(),
                },
                &Meta::actor("test"),
            )
            .await
            .unwrap();
        // Now the deploy is accepted: the process manager drives the BMC.
        let a = api
            .put(
                &format!("/v1/nodes/{n}/states/provision"),
                json!({ "target": "active" }),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
        let node = api.get(&format!("/v1/nodes/{n}")).await.body;
        assert_eq!(node["provision_state"], "deploying");
        // And the deploy holds the node against power changes.
        let before = events(&api, &n).await;
        let a = api
            .put(
                &format!("/v1/nodes/{n}/states/power"),
                json!({ "target": "power off" }),
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{:?}", a.body);
        assert_eq!(events(&api, &n).await, before);
    }
    // A fake node is unaffected.
    let f = create(&api, json!({"driver": "fake-hardware"})).await;
    let a = api
        .call(
            Method::PUT,
            &format!("/v1/nodes/{f}/states/power"),
            Some(json!({"target": "power on"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
}

// ---- management: the boot device of nodes without a BMC -------------------------

fn boot_device_path(node: &str) -> String {
    format!("/v1/nodes/{node}/management/boot_device")
}

async fn history_events(api: &Api, node: &str) -> Vec<String> {
    let a = api.get(&format!("/v1/nodes/{node}/history")).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// `fake-hardware` (management `fake`) and `manual-management` (`noop`):
/// Ironic's lists and defaults, a setting recorded (`BootDeviceSet`, shown by
/// the history and answered by `GET`), the same setting again recording
/// nothing, and Ironic's 400 texts for a device the interface does not take
/// and for arguments of the wrong kind — none of which writes anything.
#[tokio::test]
async fn boot_device_of_fake_and_manual_nodes() {
    let api = api().await;
    let fake = create(&api, json!({"driver": "fake-hardware", "name": "bd-fake"})).await;
    let manual = create(&api, json!({"driver": "manual-management"})).await;

    // Before anything is set: Ironic's FakeManagement and NoopManagement.
    let a = api.get(&boot_device_path(&fake)).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body, json!({"boot_device": "pxe", "persistent": false}));
    let a = api.get(&boot_device_path(&manual)).await;
    assert_eq!(a.body, json!({"boot_device": "pxe", "persistent": true}));
    let a = api
        .get(&format!("{}/supported", boot_device_path("bd-fake")))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body, json!({"supported_boot_devices": ["pxe"]}));
    let a = api
        .get(&format!("{}/supported", boot_device_path(&manual)))
        .await;
    assert_eq!(a.body, json!({"supported_boot_devices": ["pxe", "disk"]}));

    // Set (by name, persistent as a string Ironic's strict boolean reads).
    let before = events(&api, &fake).await;
    let a = api
        .put(
            &boot_device_path("bd-fake"),
            json!({"boot_device": "pxe", "persistent": "yes"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{:?}", a.body);
    assert_eq!(events(&api, &fake).await, before + 1);
    let a = api.get(&boot_device_path(&fake)).await;
    assert_eq!(a.body, json!({"boot_device": "pxe", "persistent": true}));
    assert!(
        history_events(&api, &fake)
            .await
            .contains(&"Boot device set to pxe (persistent).".to_string()),
        "{:?}",
        history_events(&api, &fake).await
    );
    // The same again: accepted, nothing new to record.
    let a = api
        .put(
            &boot_device_path(&fake),
            json!({"boot_device": "pxe", "persistent": true}),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(events(&api, &fake).await, before + 1);

    // manual-management takes disk; persistent defaults to false.
    let a = api
        .put(&boot_device_path(&manual), json!({"boot_device": "disk"}))
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{:?}", a.body);
    let a = api.get(&boot_device_path(&manual)).await;
    assert_eq!(a.body, json!({"boot_device": "disk", "persistent": false}));
    assert!(history_events(&api, &manual)
        .await
        .contains(&"Boot device set to disk.".to_string()));

    // Refusals, in Ironic's words, writing nothing.
    let before = (events(&api, &fake).await, events(&api, &manual).await);
    let put = |node: String, body: Value| {
        let api = &api;
        async move { api.put(&boot_device_path(&node), body).await }
    };
    refused(
        &put(fake.clone(), json!({"boot_device": "disk"})).await,
        400,
        "Invalid boot device disk specified.",
    );
    refused(
        &put(fake.clone(), json!({"boot_device": null})).await,
        400,
        "Invalid boot device None specified.",
    );
    refused(
        &put(manual.clone(), json!({"boot_device": "cdrom"})).await,
        400,
        "Invalid boot device cdrom specified, supported are pxe, disk.",
    );
    refused(
        &put(fake.clone(), json!({"persistent": true})).await,
        400,
        "Missing mandatory parameter: boot_device",
    );
    refused(
        &put(fake.clone(), json!({"boot_device": 5})).await,
        400,
        "Expected string for boot_device: 5",
    );
    refused(
        &put(fake.clone(), json!({"boot_device": "pxe", "persistent": "maybe"})).await,
        400,
        "Invalid persistent: Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'",
    );
    refused(
        &put(fake.clone(), json!({"boot_device": "pxe", "mode": "uefi"})).await,
        400,
        "Unexpected arguments: mode",
    );
    assert_eq!(
        (events(&api, &fake).await, events(&api, &manual).await),
        before
    );

    // Unknown nodes: 404 for all three.
    let missing = "0c6b2f64-9a3c-4bd5-a4fd-5a8e0a9c1a99";
    for a in [
        api.get(&boot_device_path(missing)).await,
        api.get(&format!("{}/supported", boot_device_path(missing)))
            .await,
        api.put(&boot_device_path(missing), json!({"boot_device": "pxe"}))
            .await,
    ] {
        refused(&a, 404, &format!("Node {missing} could not be found."));
    }
    // Other methods are the router's 405.
    let a = api
        .call(Method::POST, &boot_device_path(&fake), Some(json!({})))
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
}

/// While a deploy runs the node is locked (Ironic's conductor holds its
/// lock): showing or setting the boot device is 409, listing what is
/// supported (a shared lock in Ironic) still answers.
#[tokio::test]
async fn boot_device_waits_for_a_deploy() {
    let api = api().await;
    let n = create(&api, json!({"driver": "fake-hardware"})).await;
    api.make_bootable(&n).await;
    for v in ["manage", "provide", "active"] {
        let a = api
            .put(
                &format!("/v1/nodes/{n}/states/provision"),
                json!({ "target": v }),
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{v}: {:?}", a.body);
    }
    assert_eq!(
        api.get(&format!("/v1/nodes/{n}")).await.body["provision_state"],
        "deploying"
    );
    let before = events(&api, &n).await;
    let locked = format!("Node {n} is locked by host");
    for a in [
        api.get(&boot_device_path(&n)).await,
        api.put(&boot_device_path(&n), json!({"boot_device": "pxe"}))
            .await,
    ] {
        assert_eq!(a.status, StatusCode::CONFLICT, "{:?}", a.body);
        assert!(a.error().starts_with(&locked), "{}", a.error());
    }
    assert_eq!(events(&api, &n).await, before);
    let a = api
        .get(&format!("{}/supported", boot_device_path(&n)))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
}

/// BMC nodes: `driver_info` is checked first (the text `node validate`
/// gives, 400), a pending power change locks the node (409), and the
/// supported list is the interface's own, asked of no BMC (as Ironic).
#[tokio::test]
async fn boot_device_of_bmc_nodes_checks_driver_info_and_the_lock() {
    let api = api().await;
    let rf = create(&api, redfish_node()).await;
    let ipmi = create(&api, ipmi_node()).await;
    let a = api
        .get(&format!("{}/supported", boot_device_path(&rf)))
        .await;
    assert_eq!(
        a.body,
        json!({"supported_boot_devices": ["pxe", "disk", "cdrom", "bios"]})
    );
    let a = api
        .get(&format!("{}/supported", boot_device_path(&ipmi)))
        .await;
    assert_eq!(
        a.body,
        json!({"supported_boot_devices": ["pxe", "disk", "cdrom", "bios", "safe"]})
    );

    // A redfish node without an address: validate's text, for show and set.
    let bare = create(&api, json!({"driver": "redfish"})).await;
    let v = validate(&api, &bare).await;
    let reason = v["management"]["reason"].as_str().unwrap().to_string();
    assert!(!reason.is_empty(), "{v}");
    let before = events(&api, &bare).await;
    refused(&api.get(&boot_device_path(&bare)).await, 400, &reason);
    refused(
        &api.put(&boot_device_path(&bare), json!({"boot_device": "pxe"}))
            .await,
        400,
        &reason,
    );
    assert_eq!(events(&api, &bare).await, before);

    // A pending power change (no process manager runs here).
    let a = api
        .put(
            &format!("/v1/nodes/{ipmi}/states/power"),
            json!({"target": "power on"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{:?}", a.body);
    let before = events(&api, &ipmi).await;
    for a in [
        api.get(&boot_device_path(&ipmi)).await,
        api.put(&boot_device_path(&ipmi), json!({"boot_device": "pxe"}))
            .await,
    ] {
        assert_eq!(a.status, StatusCode::CONFLICT, "{:?}", a.body);
        assert!(a.error().contains("is locked by host"), "{}", a.error());
    }
    assert_eq!(events(&api, &ipmi).await, before);
}
