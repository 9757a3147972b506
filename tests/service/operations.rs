//! ironledger run as a service, as its operators watch it:
//!
//! - a real deploy and undeploy on `ironledger serve` (a Redfish node of the
//!   BMC rig, a volume of the real Cinder) and, beside it, a deploy that
//!   fails at an unreachable BMC; then a scrape of `/metrics` shows the
//!   requests, commands, events, projections, process manager, Cinder and
//!   BMC calls and nodes by state; the caller's `X-OpenStack-Request-Id`
//!   is in every event the deploy recorded (the saga's included) and in every
//!   JSON log line about the node; the timeline page, opened in a real
//!   browser (Debian's Chromium, headless), shows both deploys, the undeploy,
//!   the steps and the failure; no password anywhere;
//! - a feed consumer that disconnects again and again, resuming with
//!   `Last-Event-ID`, sees every event exactly once, as the pages do;
//! - each kind of write, cut off before its answer and retried with its
//!   `Idempotency-Key` on another process of the same PostgreSQL, is done
//!   once and answered as the first time; a reused key with another body is
//!   a 422 that writes nothing;
//! - `/metrics`, `/feed` and `/ui/` are behind the API's authentication.

use crate::common;

use common::bmc::{Rig, PASSWORD};
use common::cinder::{create_volume, endpoint as cinder_endpoint};
use common::serve::{Options, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const VERSION: &str = "1.78";

/// How these tests start `ironledger serve`: JSON logs kept in
/// `Server::log`, `[DEFAULT] host` set, the Cinder rig, the embedded store
/// in `dir`.
trait Start {
    fn start(dir: &Path) -> Self;
}

impl Start for Server {
    fn start(dir: &Path) -> Server {
        let conf = format!(
            "[DEFAULT]\nuse_json = true\nhost = conductor-7\n\
             enabled_storage_interfaces = cinder,external,noop\n\
             [deploy]\nhttp_root = {}\n\
             [cinder]\nendpoint_override = {}\naction_retries = 1\naction_retry_interval = 0.2\n",
            dir.join("httpboot").display(),
            cinder_endpoint(),
        );
        Server::spawn(
            dir,
            &conf,
            Options {
                rust_log: None,
                crash_at: None,
                keep_log: true,
            },
        )
    }
}

/// A request at the test's API version, with an optional request id.
async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    request_id: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("X-OpenStack-Ironic-API-Version", VERSION);
    if let Some(id) = request_id {
        // A caller that names its request also says why (shown by the page).
        req = req
            .header("X-OpenStack-Request-Id", id)
            .header("X-Ironledger-Reason", "rack 7 bring-up");
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post(base: &str, path: &str, body: Value) -> Value {
    let (status, _, body) = call(base, reqwest::Method::POST, path, Some(body), None).await;
    assert_eq!(status, StatusCode::CREATED, "{path}: {body}");
    body
}

async fn provision(base: &str, node: &str, target: &str, request_id: Option<&str>) {
    let (status, headers, body) = call(
        base,
        reqwest::Method::PUT,
        &format!("/v1/nodes/{node}/states/provision"),
        Some(json!({ "target": target })),
        request_id,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{target}: {body}");
    if let Some(id) = request_id {
        assert_eq!(
            headers["x-openstack-request-id"], id,
            "the caller's id is answered back"
        );
    }
}

/// Reads the node until its provision state is `want` (bounded).
async fn settle(base: &str, node: &str, want: &str) -> Value {
    for _ in 0..600 {
        let (_, _, n) = call(
            base,
            reqwest::Method::GET,
            &format!("/v1/nodes/{node}"),
            None,
            None,
        )
        .await;
        if n["provision_state"] == want {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("node {node} never reached {want}");
}

/// The guide's node: ipxe boot, `storage`, the capability, a port, a
/// connector and a boot target; managed and provided.
async fn guide_node(base: &str, name: &str, driver_info: Value, storage: &str) -> String {
    let n = post(
        base,
        "/v1/nodes",
        json!({"name": name, "driver": "redfish", "boot_interface": "ipxe",
               "storage_interface": storage, "driver_info": driver_info,
               "properties": {"capabilities": "iscsi_boot:True"}}),
    )
    .await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let b = uuid::Uuid::new_v4().into_bytes();
    let mac = format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
    post(
        base,
        "/v1/ports",
        json!({"node_uuid": n, "address": mac, "pxe_enabled": true}),
    )
    .await;
    post(
        base,
        "/v1/volume/connectors",
        json!({"node_uuid": n, "type": "iqn", "connector_id": format!("iqn.2017-08.org.openstack.{n}")}),
    )
    .await;
    let target = if storage == "cinder" {
        json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 0,
               "volume_id": create_volume(false).await})
    } else {
        json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 0,
               "volume_id": format!("vol-{n}"),
               "properties": {"target_iqn": "iqn.2010-10.org.openstack:volume-1",
                              "target_lun": 0, "target_portal": "127.0.0.1:3260"}})
    };
    post(base, "/v1/volume/targets", target).await;
    provision(base, &n, "manage", None).await;
    settle(base, &n, "manageable").await;
    provision(base, &n, "provide", None).await;
    settle(base, &n, "available").await;
    n
}

/// One sample of a Prometheus text exposition: `(name, labels, value)`.
type Sample = (String, Vec<(String, String)>, f64);

/// The samples of a Prometheus text exposition.
fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once("=\"").unwrap();
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            (name.to_string(), labels, value.parse().unwrap())
        })
        .collect()
}

/// The sum of the samples of `name` that have all of `labels`.
fn sum(m: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    m.iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// The spans of a JSON log line and the value of `field` in any of them.
fn span_field<'a>(line: &'a Value, field: &str) -> Vec<&'a str> {
    line["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s[field].as_str())
        .collect()
}

fn span_names(line: &Value) -> Vec<&str> {
    span_field(line, "name")
}

/// Chromium's headless rendering of `url`: the DOM after load, and a
/// screenshot at `png`.
fn browse(url: &str, png: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let base = |cmd: &mut Command| {
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    };
    let mut dump = Command::new("chromium");
    base(&mut dump);
    let out = dump
        .args(["--dump-dom", url])
        .stderr(Stdio::null())
        .output()
        .expect("chromium (Debian's package) must be installed: .ci/run installs it");
    assert!(out.status.success(), "chromium --dump-dom failed");
    let mut shot = Command::new("chromium");
    base(&mut shot);
    let status = shot
        .arg(format!("--screenshot={}", png.display()))
        .args(["--window-size=1280,1700", url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "chromium --screenshot failed");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deploy_is_measured_traced_fed_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::redfish_quick(1);
    let server = Server::start(dir.path());
    let base = server.base.clone();
    let info = json!({"redfish_address": rig.addr, "redfish_username": "admin",
                      "redfish_password": PASSWORD, "redfish_auth_type": "basic"});
    let n = guide_node(&base, "rack7-node1", info, "cinder").await;
    // A second node whose BMC does not answer: its deploy fails.
    let dead = json!({"redfish_address": format!("http://127.0.0.1:{}", common::bmc::free_port(false)),
                      "redfish_username": "admin", "redfish_password": PASSWORD});
    let bad = guide_node(&base, "rack7-node2", dead, "external").await;

    let deploy_id = format!("req-{}", uuid::Uuid::new_v4());
    let undeploy_id = format!("req-{}", uuid::Uuid::new_v4());
    let deploy_from = server.log_lines().len();
    provision(&base, &n, "active", Some(&deploy_id)).await;
    settle(&base, &n, "active").await;
    provision(&base, &n, "deleted", Some(&undeploy_id)).await;
    settle(&base, &n, "available").await;
    provision(&base, &bad, "active", None).await;
    let failed = settle(&base, &bad, "deploy failed").await;
    assert!(failed["last_error"].as_str().is_some_and(|e| !e.is_empty()));

    // ---- /metrics ---------------------------------------------------------
    // The process manager reads the feed after the commit: scrape until it
    // has read the last event (bounded).
    let mut tries = 0;
    let (text, m) = loop {
        let (status, headers, body) =
            call(&base, reqwest::Method::GET, "/metrics", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        let text = body.as_str().unwrap().to_string();
        let m = samples(&text);
        let lag: f64 = sum(&m, "ironledger_projection_lag_events", &[]);
        tries += 1;
        if lag == 0.0 || tries == 50 {
            break (text, m);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let provision_route = [
        ("route", "/v1/nodes/{node}/states/provision"),
        ("method", "PUT"),
    ];
    assert!(
        sum(
            &m,
            "ironledger_http_requests_total",
            &[provision_route[0], provision_route[1], ("status", "202")]
        ) >= 7.0
    );
    assert!(
        sum(
            &m,
            "ironledger_http_request_duration_seconds_count",
            &provision_route
        ) >= 7.0
    );
    assert!(
        sum(
            &m,
            "ironledger_commands_total",
            &[("command", "Provision"), ("outcome", "ok")]
        ) >= 7.0
    );
    assert!(
        sum(
            &m,
            "ironledger_commands_total",
            &[("command", "FinishDeploy"), ("outcome", "ok")]
        ) >= 1.0
    );
    assert!(
        sum(
            &m,
            "ironledger_commands_total",
            &[("command", "FailDeploy"), ("outcome", "ok")]
        ) >= 1.0
    );
    assert!(
        sum(
            &m,
            "ironledger_command_duration_seconds_count",
            &[("command", "Enroll")]
        ) >= 2.0
    );
    let head = sum(&m, "ironledger_feed_head", &[]);
    assert!(head > 20.0, "{head}");
    assert_eq!(
        sum(&m, "ironledger_events_appended_total", &[]),
        head,
        "one process wrote the whole log"
    );
    for projection in ["nodes", "node_history", "process_manager"] {
        assert_eq!(
            sum(
                &m,
                "ironledger_projection_checkpoint",
                &[("projection", projection)]
            ),
            head,
            "{projection}"
        );
        assert_eq!(
            sum(
                &m,
                "ironledger_projection_lag_events",
                &[("projection", projection)]
            ),
            0.0
        );
        assert_eq!(
            sum(
                &m,
                "ironledger_projection_state",
                &[("projection", projection), ("state", "failed")]
            ),
            0.0
        );
    }
    assert_eq!(
        sum(&m, "ironledger_nodes", &[("provision_state", "available")]),
        1.0
    );
    assert_eq!(
        sum(
            &m,
            "ironledger_nodes",
            &[("provision_state", "deploy failed")]
        ),
        1.0
    );
    assert_eq!(
        sum(&m, "ironledger_nodes", &[("provision_state", "active")]),
        0.0
    );
    assert!(
        sum(
            &m,
            "ironledger_external_calls_total",
            &[("service", "cinder"), ("outcome", "ok")]
        ) >= 4.0,
        "{text}"
    );
    assert!(
        sum(
            &m,
            "ironledger_external_call_duration_seconds_count",
            &[("service", "cinder")]
        ) >= 4.0
    );
    assert!(
        sum(
            &m,
            "ironledger_external_calls_total",
            &[("service", "redfish"), ("outcome", "ok")]
        ) >= 4.0,
        "{text}"
    );
    assert!(
        sum(
            &m,
            "ironledger_external_calls_total",
            &[("service", "redfish"), ("outcome", "error")]
        ) >= 1.0,
        "{text}"
    );
    assert!(
        sum(&m, "ironledger_process_manager_failures_total", &[]) >= 1.0,
        "{text}"
    );
    assert_eq!(
        sum(&m, "ironledger_process_manager_nodes_in_work", &[]),
        0.0
    );
    assert_eq!(sum(&m, "ironledger_store_up", &[]), 1.0);

    // ---- the request id in the events -------------------------------------
    let (_, _, feed) = call(
        &base,
        reqwest::Method::GET,
        &format!("/feed?node={n}&limit=1000"),
        None,
        None,
    )
    .await;
    let events = feed["events"].as_array().unwrap();
    let type_at = |t: &str| events.iter().position(|e| e["event_type"] == t).unwrap();
    let (deploy, deployed) = (type_at("DeployRequested"), type_at("Deployed"));
    let (undeploy, undeployed) = (type_at("UndeployRequested"), type_at("Undeployed"));
    let saga: BTreeSet<&str> = events[deploy..=deployed]
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(
        saga.contains("VolumesAttached") && saga.contains("BootConfigWritten"),
        "{saga:?}"
    );
    for e in &events[deploy..=deployed] {
        assert_eq!(e["request_id"], deploy_id.as_str(), "{e}");
        assert_eq!(e["metadata"]["request_id"], deploy_id.as_str());
    }
    for e in &events[undeploy..=undeployed] {
        assert_eq!(e["request_id"], undeploy_id.as_str(), "{e}");
    }
    // Every event names the conductor as configured (`[DEFAULT] host`), as
    // the node does.
    assert!(events
        .iter()
        .all(|e| e["metadata"]["host"] == "conductor-7"));
    let (_, _, shown) = call(
        &base,
        reqwest::Method::GET,
        &format!("/v1/nodes/{n}"),
        None,
        None,
    )
    .await;
    assert_eq!(shown["conductor"], "conductor-7");
    // The history keeps it too (not in Ironic's fields: the page shows it).
    let enrolled = &events[0];
    assert_eq!(
        enrolled["payload"]["NodeEnrolled"]["driver_info"]["redfish_password"],
        "******"
    );

    // ---- the log ------------------------------------------------------------
    let lines = server.log_lines();
    let deploy_lines: Vec<&Value> = lines[deploy_from..]
        .iter()
        .filter(|l| span_field(l, "request_id").contains(&deploy_id.as_str()))
        .collect();
    let kinds: BTreeSet<&str> = deploy_lines.iter().flat_map(|l| span_names(l)).collect();
    for span in ["request", "command", "work", "step"] {
        assert!(
            kinds.contains(span),
            "no {span} span carries the deploy's request id: {kinds:?}"
        );
    }
    // Every line of the node's commands and saga steps carries the request
    // that caused it (each request's own lines carry their own id).
    let about_node: Vec<&Value> = lines[deploy_from..]
        .iter()
        .filter(|l| span_field(l, "node").contains(&n.as_str()))
        .filter(|l| {
            span_names(l)
                .iter()
                .any(|s| *s == "work" || *s == "command")
        })
        .collect();
    assert!(about_node.len() >= 5, "{about_node:?}");
    for l in &about_node {
        let ids = span_field(l, "request_id");
        assert!(
            ids.contains(&deploy_id.as_str()) || ids.contains(&undeploy_id.as_str()),
            "a line about the node without its request id: {l}"
        );
    }
    let raw_log = std::fs::read_to_string(&server.log).unwrap();
    assert!(
        !raw_log.contains(PASSWORD),
        "the BMC password is in the log"
    );
    assert!(!text.contains(PASSWORD));
    assert!(!feed.to_string().contains(PASSWORD));

    // ---- the timeline page, in a real browser -----------------------------
    let shots = tempfile::tempdir().unwrap();
    let png = shots.path().join("timeline.png");
    let dom = browse(&format!("{base}/ui/nodes/{n}"), &png);
    for shown in [
        "rack7-node1",
        "Deploy succeeded",
        "Undeploy succeeded",
        "Provision state over time",
        "Power state over time",
        ">Cinder<",
        ">BMC<",
        ">boot files<",
        "Volume(s) attached",
        "rack 7 bring-up",
        deploy_id.as_str(),
        undeploy_id.as_str(),
    ] {
        assert!(dom.contains(shown), "the page does not show {shown:?}");
    }
    assert!(
        dom.contains(">active<") && dom.contains(">available<"),
        "the bands name the states"
    );
    assert!(!dom.contains(PASSWORD));
    let size = std::fs::metadata(&png).unwrap().len();
    assert!(size > 10_000, "screenshot of {size} bytes");
    if let Ok(to) = std::env::var("IRONLEDGER_SCREENSHOT_TO") {
        std::fs::copy(&png, to).unwrap();
    }
    let dom = browse(
        &format!("{base}/ui/nodes/rack7-node2"),
        &shots.path().join("failed.png"),
    );
    assert!(
        dom.contains("Deploy failed") && dom.contains("id=\"last-error\""),
        "{dom}"
    );
    assert!(dom.contains(
        failed["last_error"]
            .as_str()
            .unwrap()
            .split(':')
            .next()
            .unwrap()
    ));
    let dom = browse(&format!("{base}/ui/"), &shots.path().join("index.png"));
    assert!(
        dom.contains("rack7-node1") && dom.contains("rack7-node2") && dom.contains("deploy failed")
    );
}

/// Reads an SSE answer until it has `want` events (or the stream ends):
/// `(id, event type, data)` each.
async fn read_events(res: &mut reqwest::Response, want: usize) -> Vec<(u64, String, Value)> {
    let mut out = vec![];
    let mut buf = String::new();
    while out.len() < want {
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(Duration::from_secs(10), res.chunk()).await
        else {
            break;
        };
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.parse().unwrap());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            // Keep-alive comments have no id.
            if let Some(id) = id {
                out.push((id, kind, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_consumer_that_keeps_reconnecting_sees_every_event_once() {
    let api = common::api::start(common::sqlite().await).await;
    let base = api.base.clone();
    // A writer, busy while the consumer comes and goes.
    let writer = {
        let base = base.clone();
        tokio::spawn(async move {
            for i in 0..15 {
                let n = post(&base, "/v1/nodes", json!({"name": format!("feed-{i}"), "driver": "fake-hardware",
                                                       "driver_info": {"secret_password": "pw-not-shown"}}))
                    .await;
                let uuid = n["uuid"].as_str().unwrap().to_string();
                let (s, _, _) = call(
                    &base,
                    reqwest::Method::PATCH,
                    &format!("/v1/nodes/{uuid}"),
                    Some(json!([{"op": "add", "path": "/extra/round", "value": i}])),
                    None,
                )
                .await;
                assert_eq!(s, StatusCode::OK);
            }
        })
    };
    let client = reqwest::Client::new();
    let mut seen: Vec<(u64, String, Value)> = vec![];
    let mut last: Option<u64> = None;
    let mut connections = 0;
    loop {
        let mut req = client.get(format!("{base}/feed/stream"));
        req = match last {
            Some(id) => req.header("Last-Event-ID", id.to_string()),
            None => req.query(&[("after", "0")]),
        };
        let mut res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        connections += 1;
        // A few events, then hang up (dropping the answer closes it).
        let got = read_events(&mut res, 4).await;
        drop(res);
        if let Some((id, _, _)) = got.last() {
            last = Some(*id);
        }
        seen.extend(got);
        let head = api.store.store.head().await.unwrap();
        if writer.is_finished() && last == Some(head) {
            break;
        }
        assert!(connections < 200, "the consumer never caught up");
    }
    writer.await.unwrap();
    let head = api.store.store.head().await.unwrap();
    assert_eq!(head, 30);
    let ids: Vec<u64> = seen.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(
        ids,
        (1..=head).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert!(connections >= 8, "{connections} connections");
    // What the stream gave is what the pages give, page by page.
    let mut paged = vec![];
    let mut after = 0;
    loop {
        let (s, _, page) = call(
            &base,
            reqwest::Method::GET,
            &format!("/feed?after={after}&limit=7"),
            None,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            assert_eq!(page["last"], after);
            break;
        }
        assert!(events.len() <= 7);
        after = page["last"].as_u64().unwrap();
        assert_eq!(page["next"], format!("/feed?after={after}&limit=7"));
        paged.extend(events);
    }
    let streamed: Vec<Value> = seen.iter().map(|(_, _, d)| d.clone()).collect();
    assert_eq!(paged, streamed);
    for (id, kind, data) in &seen {
        assert_eq!(data["position"], *id);
        assert_eq!(data["event_type"], kind.as_str());
    }
    assert!(!serde_json::to_string(&paged)
        .unwrap()
        .contains("pw-not-shown"));
    // One node's events, by name, and wrong input.
    let (_, _, one) = call(&base, reqwest::Method::GET, "/feed?node=feed-3", None, None).await;
    let types: Vec<&str> = one["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["NodeEnrolled", "NodeUpdated"]);
    for (path, status) in [
        ("/feed?after=-1", StatusCode::BAD_REQUEST),
        ("/feed?limit=0", StatusCode::BAD_REQUEST),
        ("/feed?node=nobody", StatusCode::NOT_FOUND),
        ("/feed?since=1", StatusCode::BAD_REQUEST),
    ] {
        let (s, _, body) = call(&base, reqwest::Method::GET, path, None, None).await;
        assert_eq!(s, status, "{path}: {body}");
        assert!(
            body["error_message"].is_string(),
            "Ironic's error format: {body}"
        );
    }
    let res = client
        .get(format!("{base}/feed/stream"))
        .header("Last-Event-ID", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// Sends `request` (its whole text) on a fresh connection and hangs up
/// before reading a byte of the answer: a client that timed out.
async fn send_and_cut(base: &str, request: String) {
    use tokio::io::AsyncWriteExt;
    let addr = base.strip_prefix("http://").unwrap();
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    s.flush().await.unwrap();
    // Long enough for the server to have read the request, not to have
    // answered it (or, if it has, the answer is never read).
    tokio::time::sleep(Duration::from_millis(5)).await;
    drop(s);
}

fn raw(method: &str, path: &str, key: &str, body: &Value) -> String {
    let body = body.to_string();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         X-OpenStack-Ironic-API-Version: {VERSION}\r\nIdempotency-Key: {key}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_retried_after_a_cut_connection_is_done_once() {
    // Two servers on one PostgreSQL: the cut request goes to the first, the
    // retry to the second.
    let store = common::postgres().await;
    let log = store.store.clone();
    let other = store.second_process().await;
    let first = common::api::start_served(store).await;
    let second = common::api::start_served(other).await;
    let n = first.enroll(None, None).await.to_string();
    let b = uuid::Uuid::new_v4().into_bytes();
    let mac = format!("52:54:00:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2]);
    let writes: Vec<(&str, String, Value)> = vec![
        (
            "POST",
            "/v1/nodes".into(),
            json!({"driver": "fake-hardware", "name": "idem-node"}),
        ),
        (
            "POST",
            "/v1/ports".into(),
            json!({"node_uuid": n, "address": mac}),
        ),
        (
            "POST",
            "/v1/volume/connectors".into(),
            json!({"node_uuid": n, "type": "iqn", "connector_id": "iqn.2024-01.org.example:idem"}),
        ),
        (
            "POST",
            "/v1/volume/targets".into(),
            json!({"node_uuid": n, "volume_type": "iscsi", "boot_index": 0, "volume_id": "vol-idem",
                "properties": {"target_iqn": "iqn.2010-10.org.openstack:idem", "target_portal": "192.0.2.1:3260", "target_lun": 0}}),
        ),
        (
            "PATCH",
            format!("/v1/nodes/{n}"),
            json!([{"op": "add", "path": "/extra/attempt", "value": "one"}]),
        ),
        (
            "PUT",
            format!("/v1/nodes/{n}/states/provision"),
            json!({"target": "manage"}),
        ),
        (
            "PUT",
            format!("/v1/nodes/{n}/states/power"),
            json!({"target": "power on"}),
        ),
    ];
    for (i, (method, path, body)) in writes.iter().enumerate() {
        let key = format!("retry-{i}-{}", uuid::Uuid::new_v4());
        log.sequence().await.unwrap();
        let before = log.head().await.unwrap();
        send_and_cut(&first.base, raw(method, path, &key, body)).await;
        // The server finishes the write although its client is gone.
        let deadline = Instant::now() + Duration::from_secs(10);
        while {
            log.sequence().await.unwrap();
            log.head().await.unwrap() == before
        } {
            assert!(
                Instant::now() < deadline,
                "{method} {path}: the cut request was not served"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let retry = || {
            second
                .client
                .request(m.clone(), format!("{}{path}", second.base))
                .header("X-OpenStack-Ironic-API-Version", VERSION)
                .header("Idempotency-Key", key.clone())
                .json(body)
        };
        let res = retry().send().await.unwrap();
        let status = res.status();
        assert!(status.is_success(), "{method} {path}: {status}");
        let replayed = res.headers().get("idempotent-replayed").cloned();
        let first_answer = res.text().await.unwrap();
        assert_eq!(
            replayed.as_ref().map(|v| v.to_str().unwrap()),
            Some("true"),
            "{method} {path}: {first_answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        log.sequence().await.unwrap();
        let written = log.head().await.unwrap();
        // Once more: the same answer again, nothing more written.
        let again = retry().send().await.unwrap();
        assert_eq!(again.status(), status);
        assert_eq!(again.text().await.unwrap(), first_answer);
        // The same key with another body: refused, nothing written.
        let mut other = body.clone();
        match &mut other {
            Value::Object(o) => {
                o.insert("extra".into(), json!({"changed": true}));
            }
            Value::Array(a) => a.push(json!({"op": "add", "path": "/extra/more", "value": 1})),
            _ => unreachable!(),
        }
        let refused = second
            .client
            .request(m.clone(), format!("{}{path}", second.base))
            .header("X-OpenStack-Ironic-API-Version", VERSION)
            .header("Idempotency-Key", key.clone())
            .json(&other)
            .send()
            .await
            .unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path}"
        );
        let text = refused.text().await.unwrap();
        assert!(
            text.contains("already used for a different request"),
            "{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        log.sequence().await.unwrap();
        assert_eq!(
            log.head().await.unwrap(),
            written,
            "{method} {path}: a retry wrote"
        );
        // Each write happened once.
        let events = log.read_feed(before, 100).await.unwrap();
        let keyed = events
            .iter()
            .filter(|e| e.metadata["idempotency_key"] == key.as_str())
            .count();
        assert!(keyed >= 1, "{method} {path}: the key is not in the events");
    }
    let nodes = first.get("/v1/nodes?fields=name").await.body;
    let named = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"] == "idem-node")
        .count();
    assert_eq!(named, 1);
    for (path, key) in [
        ("ports", "ports"),
        ("volume/connectors", "connectors"),
        ("volume/targets", "targets"),
    ] {
        let listed = first.get(&format!("/v1/nodes/{n}/{path}")).await.body;
        assert_eq!(listed[key].as_array().unwrap().len(), 1, "{path}");
    }
    // A bad key is refused before anything runs.
    let res = first
        .client
        .post(format!("{}/v1/nodes", first.base))
        .header("Idempotency-Key", "x".repeat(300))
        .json(&json!({"driver": "fake-hardware"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn metrics_feed_and_pages_are_behind_the_api_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("htpasswd");
    let mut f = std::fs::File::create(&users).unwrap();
    writeln!(f, "admin:{}", bcrypt::hash("s3cret", 4).unwrap()).unwrap();
    let api = common::api::start_with(
        common::memory().await,
        &format!(
            "[DEFAULT]\nauth_strategy = http_basic\nhttp_basic_auth_user_file = {}\n\
             [api]\nauth_failure_limit = 100\nauth_address_failure_limit = 100\n",
            users.display()
        ),
    )
    .await;
    for path in ["/metrics", "/feed", "/feed/stream", "/ui/", "/ui/nodes/x"] {
        let url = format!("{}{path}", api.base);
        let anonymous = api.client.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{path}");
        let wrong = api
            .client
            .get(&url)
            .basic_auth("admin", Some("nope"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    for path in ["/metrics", "/feed", "/ui/"] {
        let url = format!("{}{path}", api.base);
        let ok = api
            .client
            .get(&url)
            .basic_auth("admin", Some("s3cret"))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK, "{path}");
    }
}

/// A stream never ends by itself; a server that shuts down ends it (the
/// client resumes elsewhere) instead of waiting for it forever.
#[tokio::test]
async fn a_server_that_stops_ends_its_streams_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let mut res = reqwest::Client::new()
        .get(format!("{}/feed/stream?after=0", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let pid = server.child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = res.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived the server's shutdown");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "serve did not exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
