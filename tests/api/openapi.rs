//! `/v1/openapi.json` stays true: every documented operation reaches a handler
//! of a running server, every route the server answers is documented, every
//! request-body schema is the one its handler validates with (and the handler
//! refuses what the schema excludes), and a schema-driven fuzzer (schemathesis)
//! run from the document against `ironledger serve` meets no 5xx, no
//! undocumented status, and creates nodes.

use crate::common;

use ironledger::api::nodes::create::{NODE_PATCH_SCHEMA, NODE_SCHEMA};
use ironledger::api::nodes::management::BOOT_DEVICE_ARGS;
use ironledger::api::nodes::states::{MAINTENANCE_ARGS, POWER_ARGS, PROVISION_ARGS};
use ironledger::api::openapi::{Body, OPERATIONS, REFINEMENTS};
use ironledger::api::ports::PORT_SCHEMA;
use ironledger::api::schema::Schema;
use ironledger::api::volume::kinds::{CONNECTOR_SCHEMA, TARGET_SCHEMA};
use reqwest::Method;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A concrete path for a template (any id: handlers answer "not found" with
/// their own message, which proves the route exists).
fn concrete(path: &str) -> String {
    path.replace("{node}", "0c6b2f64-9a3c-4bd5-a4fd-5a8e0a9c1a11")
        .replace("{port}", "1c6b2f64-9a3c-4bd5-a4fd-5a8e0a9c1a12")
        .replace("{connector}", "2c6b2f64-9a3c-4bd5-a4fd-5a8e0a9c1a13")
        .replace("{target}", "3c6b2f64-9a3c-4bd5-a4fd-5a8e0a9c1a14")
        .replace("{event}", "4c6b2f64-9a3c-4bd5-a4fd-5a8e0a9c1a15")
        .replace("{driver}", "fake-hardware")
        .replace("{path}", "boot.ipxe")
}

/// Whether an answer came from the router rather than a handler: the
/// framework's 404 for an unknown path, or a 405.
fn from_router(status: u16, body: &serde_json::Value) -> bool {
    let inner: serde_json::Value =
        serde_json::from_str(body["error_message"].as_str().unwrap_or("{}")).unwrap_or_default();
    status == 405 || (status == 404 && inner["code"] == 404 && inner["description"] == "")
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let api = common::api::start(common::memory().await).await;
    for op in OPERATIONS {
        if op.path == "/feed/stream" {
            // Endless: the head of the answer is enough.
            let res = api
                .client
                .get(format!("{}{}", api.base, op.path))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["content-type"], "text/event-stream");
            continue;
        }
        let method = Method::from_bytes(op.method.to_ascii_uppercase().as_bytes()).unwrap();
        let body = (op.body != Body::None).then(|| {
            if op.method == "patch" {
                json!([])
            } else {
                json!({})
            }
        });
        let a = api
            .call_v(method, &concrete(op.path), body, Some("latest"))
            .await;
        assert!(
            !from_router(a.status.as_u16(), &a.body),
            "{} {} is documented but the router does not serve it ({}: {})",
            op.method,
            op.path,
            a.status,
            a.body
        );
    }
}

#[tokio::test]
async fn the_document_is_served_and_lists_the_guide_endpoints() {
    let api = common::api::start(common::memory().await).await;
    let a = api.get("/v1/openapi.json").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["openapi"], "3.1.0");
    for (path, method) in [
        ("/v1/volume/connectors", "post"),
        ("/v1/volume/targets", "post"),
        ("/v1/nodes/{node}/states/provision", "put"),
        ("/v1/nodes/{node}", "patch"),
    ] {
        assert!(
            a.body["paths"][path][method].is_object(),
            "{method} {path} documented"
        );
    }
}

/// Paths the server answers (from its own routers) must be documented: probe a
/// list of candidate paths with every method and require a documented entry
/// for each that reaches a handler.
#[tokio::test]
async fn every_served_route_is_documented() {
    let api = common::api::start(common::memory().await).await;
    let candidates = [
        "/",
        "/v1",
        "/v1/nodes",
        "/v1/nodes/detail",
        "/v1/nodes/validate",
        "/v1/nodes/{node}",
        "/v1/nodes/{node}/states",
        "/v1/nodes/{node}/states/provision",
        "/v1/nodes/{node}/states/power",
        "/v1/nodes/{node}/maintenance",
        "/v1/nodes/{node}/validate",
        "/v1/nodes/{node}/management",
        "/v1/nodes/{node}/management/boot_device",
        "/v1/nodes/{node}/management/boot_device/supported",
        "/v1/nodes/{node}/history",
        "/v1/nodes/{node}/history/{event}",
        "/v1/nodes/{node}/ports",
        "/v1/nodes/{node}/ports/detail",
        "/v1/nodes/{node}/volume",
        "/v1/nodes/{node}/volume/connectors",
        "/v1/nodes/{node}/volume/targets",
        "/v1/ports",
        "/v1/ports/detail",
        "/v1/ports/{port}",
        "/v1/volume",
        "/v1/volume/connectors",
        "/v1/volume/connectors/{connector}",
        "/v1/volume/targets",
        "/v1/volume/targets/{target}",
        "/v1/drivers",
        "/v1/drivers/{driver}",
        "/health",
        "/v1/openapi.json",
        "/metrics",
        "/feed",
        "/ui/",
        "/ui/nodes/{node}",
    ];
    for path in candidates {
        for method in ["get", "post", "put", "patch", "delete"] {
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let body = matches!(method, "post" | "put" | "patch").then(|| json!({}));
            let a = api.call_v(m, &concrete(path), body, Some("latest")).await;
            if from_router(a.status.as_u16(), &a.body) {
                continue;
            }
            let documented = OPERATIONS
                .iter()
                .any(|o| o.path == path && o.method == method);
            // Writes on node-scoped collections and PATCH/DELETE on the volume
            // collections answer with Ironic's deliberate 400s: not operations.
            let deliberate_refusal = a.status == 400
                && (((path.starts_with("/v1/nodes/{node}/volume/")
                    || path.starts_with("/v1/nodes/{node}/ports"))
                    && method != "get")
                    || (matches!(path, "/v1/volume/connectors" | "/v1/volume/targets")
                        && matches!(method, "patch" | "delete")));
            assert!(
                documented || deliberate_refusal,
                "{method} {path} is served ({}) but not documented",
                a.status
            );
        }
    }
}

/// `schema` with the keywords the document adds for later checks removed.
fn unrefined(schema: &Value) -> Value {
    let mut s = schema.clone();
    if let Some(props) = s["properties"].as_object_mut() {
        for p in props.values_mut() {
            if let Some(p) = p.as_object_mut() {
                p.retain(|k, _| !REFINEMENTS.contains(&k.as_str()));
            }
        }
    }
    s
}

/// The schema an operation's request body is published with (`$ref`s resolved).
fn request_schema(doc: &Value, method: &str, path: &str) -> Value {
    let schema =
        &doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"];
    match schema["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .cloned()
            .unwrap_or_default(),
        None => schema.clone(),
    }
}

/// Every request body in the document is exactly its validator's schema
/// (plus only refinement keywords), so the two cannot drift: a field added to
/// a validator is a field of the document, and the other way round.
#[tokio::test]
async fn every_request_body_is_the_validators_schema() {
    let api = common::api::start(common::memory().await).await;
    let doc = api.get("/v1/openapi.json").await.body;
    let resources: [(&str, &str, &Schema, &str); 4] = [
        ("post", "/v1/nodes", &NODE_SCHEMA, "NodePatched"),
        ("post", "/v1/ports", &PORT_SCHEMA, "PortPatched"),
        (
            "post",
            "/v1/volume/connectors",
            &CONNECTOR_SCHEMA,
            "VolumeConnectorPatched",
        ),
        (
            "post",
            "/v1/volume/targets",
            &TARGET_SCHEMA,
            "VolumeTargetPatched",
        ),
    ];
    for (method, path, validator, patched) in resources {
        let published = request_schema(&doc, method, path);
        assert_eq!(
            unrefined(&published),
            validator.json_schema(),
            "{method} {path}: the published body schema is not the validator's"
        );
        let patched_schema = if path == "/v1/nodes" {
            &NODE_PATCH_SCHEMA
        } else {
            validator
        };
        assert_eq!(
            unrefined(&doc["components"]["schemas"][patched]),
            patched_schema.json_schema(),
            "{patched}"
        );
    }
    // The node's schema is the validator's in substance, not just in name.
    let node = request_schema(&doc, "post", "/v1/nodes");
    assert_eq!(node["required"], json!(["driver"]));
    assert_eq!(node["additionalProperties"], json!(false));
    assert_eq!(node["properties"]["description"]["maxLength"], 4096);
    assert_eq!(node["properties"]["uuid"]["format"], "uuid");
    assert_eq!(
        node["properties"]["driver"]["enum"],
        json!(["fake-hardware", "manual-management", "ipmi", "redfish"])
    );
    let port = request_schema(&doc, "post", "/v1/ports");
    assert_eq!(
        port["oneOf"],
        json!([{"required": ["node_ident"]}, {"required": ["node_uuid"]}])
    );

    // Every PATCH takes a JSON patch; the state changes their handlers' arguments.
    for o in OPERATIONS {
        let body = &doc["paths"][o.path][o.method]["requestBody"];
        match o.body {
            Body::None => assert!(body.is_null(), "{} {} takes no body", o.method, o.path),
            Body::Patch(_) => {
                let s = request_schema(&doc, o.method, o.path);
                assert_eq!(s["type"], "array", "{}", o.path);
                assert_eq!(
                    s["items"]["properties"]["op"]["enum"],
                    json!(["add", "replace", "remove"])
                );
            }
            _ => assert!(
                body.is_object(),
                "{} {} documents its body",
                o.method,
                o.path
            ),
        }
    }
    for (path, args, required) in [
        (
            "/v1/nodes/{node}/states/provision",
            &PROVISION_ARGS[..],
            json!(["target"]),
        ),
        (
            "/v1/nodes/{node}/states/power",
            &POWER_ARGS[..],
            json!(["target"]),
        ),
        (
            "/v1/nodes/{node}/maintenance",
            &MAINTENANCE_ARGS[..],
            json!([]),
        ),
        (
            "/v1/nodes/{node}/management/boot_device",
            &BOOT_DEVICE_ARGS[..],
            json!(["boot_device"]),
        ),
    ] {
        let s = request_schema(&doc, "put", path);
        let mut documented: Vec<&str> = s["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut taken = args.to_vec();
        documented.sort_unstable();
        taken.sort_unstable();
        assert_eq!(
            documented, taken,
            "{path}: documented = what the handler takes"
        );
        assert_eq!(s["required"], required, "{path}");
        assert_eq!(s["additionalProperties"], json!(false), "{path}");
    }
    let verbs = &request_schema(&doc, "put", "/v1/nodes/{node}/states/provision")["properties"]
        ["target"]["enum"];
    assert!(
        verbs.as_array().unwrap().contains(&json!("deploy")),
        "{verbs}"
    );
    let power = &request_schema(&doc, "put", "/v1/nodes/{node}/states/power")["properties"]
        ["target"]["enum"];
    assert!(
        power.as_array().unwrap().contains(&json!("power on")),
        "{power}"
    );

    // Parameters and answers.
    let show = &doc["paths"]["/v1/nodes/{node}"]["get"];
    assert_eq!(
        show["parameters"][0]["schema"]["pattern"],
        "^[A-Za-z0-9._~-]{1,255}$"
    );
    assert_eq!(
        doc["paths"]["/v1/volume/targets/{target}"]["get"]["parameters"][0]["schema"]["format"],
        "uuid"
    );
    let create = &doc["paths"]["/v1/nodes"]["post"]["responses"];
    for code in ["201", "400", "406", "409", "413"] {
        assert!(create[code].is_object(), "POST /v1/nodes documents {code}");
    }
    assert_eq!(
        create["400"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    assert!(create["201"]["links"]["get_v1_nodes_node"].is_object());
    let boot = &doc["paths"]["/boot/{path}"]["get"]["responses"];
    assert!(boot["200"]["content"]["text/plain"].is_object(), "{boot}");
    assert!(
        boot["200"]["content"]["application/json"].is_null(),
        "{boot}"
    );
    assert!(doc["paths"]["/v1/nodes"]["get"]["responses"]["401"].is_null());
    // List parameters on the lists, not on the creates beside them.
    let names = |method: &str| -> Vec<String> {
        doc["paths"]["/v1/nodes"][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(names("get").contains(&"limit".to_string()));
    assert!(!names("post").contains(&"limit".to_string()));
}

/// With `http_basic`, the document says so: a security scheme, 401 on the API,
/// and none on `/health` and `/boot/`.
#[tokio::test]
async fn the_document_shows_authentication_when_it_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("htpasswd");
    let hash = bcrypt::hash("secret", 4).unwrap();
    std::fs::write(&users, format!("admin:{hash}\n")).unwrap();
    let ini = format!(
        "[DEFAULT]\nauth_strategy = http_basic\nhttp_basic_auth_user_file = {}\n",
        users.display()
    );
    let api = common::api::start_with(common::memory().await, &ini).await;
    let a = api
        .client
        .get(format!("{}/v1/openapi.json", api.base))
        .basic_auth("admin", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), 200);
    let doc: Value = a.json().await.unwrap();
    assert_eq!(
        doc["components"]["securitySchemes"]["basic"]["scheme"],
        "basic"
    );
    assert_eq!(doc["security"], json!([{"basic": []}]));
    assert!(doc["paths"]["/v1/nodes"]["post"]["responses"]["401"].is_object());
    assert_eq!(doc["paths"]["/health"]["get"]["security"], json!([]));
    assert_eq!(doc["paths"]["/boot/{path}"]["get"]["security"], json!([]));
}

/// A value of a JSON type `schema` does not allow (or `None` if it allows all
/// that are tried).
fn excluded_value(schema: &Value) -> Option<Value> {
    let types: Vec<&str> = match (&schema["type"], &schema["anyOf"]) {
        (Value::String(t), _) => vec![t.as_str()],
        (Value::Array(ts), _) => ts.iter().filter_map(Value::as_str).collect(),
        (_, Value::Array(alts)) => alts.iter().filter_map(|a| a["type"].as_str()).collect(),
        _ => return None,
    };
    [
        ("array", json!([1])),
        ("object", json!({"a": 1})),
        ("integer", json!(7)),
        ("string", json!("s")),
        ("boolean", json!(true)),
    ]
    .into_iter()
    .find(|(t, _)| !(types.contains(t) || *t == "integer" && types.contains(&"number")))
    .map(|(_, v)| v)
}

/// The handlers refuse what the published schemas exclude, in the schema's
/// words: an undocumented field, a missing required one, a value of a type the
/// document does not allow, for every property of every create body.
#[tokio::test]
async fn the_handlers_refuse_what_the_document_excludes() {
    let api = common::api::start(common::memory().await).await;
    let doc = api.get("/v1/openapi.json").await.body;
    let node = api.enroll(None, None).await.to_string();
    let valid = [
        ("/v1/nodes", json!({"driver": "fake-hardware"})),
        (
            "/v1/ports",
            json!({"address": "52:54:00:12:34:56", "node_uuid": node}),
        ),
        (
            "/v1/volume/connectors",
            json!({"node_uuid": node, "type": "iqn", "connector_id": "iqn.2017-01.org.example:n"}),
        ),
        (
            "/v1/volume/targets",
            json!({"node_uuid": node, "volume_type": "iscsi", "boot_index": 0, "volume_id": "v-1"}),
        ),
    ];
    for (path, good) in valid {
        let schema = request_schema(&doc, "post", path);
        let send = |body: Value| api.call_v(Method::POST, path, Some(body), Some("latest"));
        let mut extra = good.clone();
        extra["zz_undocumented"] = json!(1);
        let a = send(extra).await;
        assert_eq!(a.status, 400, "{path}: an undocumented field");
        assert!(
            a.error().contains("Additional properties"),
            "{path}: {}",
            a.error()
        );
        for r in schema["required"].as_array().unwrap() {
            let mut missing = good.clone();
            missing.as_object_mut().unwrap().remove(r.as_str().unwrap());
            let a = send(missing).await;
            assert_eq!(a.status, 400, "{path}: {r} missing");
        }
        for (name, prop) in schema["properties"].as_object().unwrap() {
            let Some(bad) = excluded_value(prop) else {
                continue;
            };
            let mut body = good.clone();
            body[name] = bad.clone();
            let a = send(body).await;
            assert_eq!(
                a.status, 400,
                "{path}: {name} = {bad} is excluded by {prop}"
            );
            assert!(
                a.error().contains("Schema error"),
                "{path}: {name} = {bad}: {}",
                a.error()
            );
        }
    }
}

// ---- the fuzzer ---------------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_ironledger");

/// Kills the server when the test ends, pass or fail.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where schemathesis is: `IRONLEDGER_FUZZ_VENV` (which `.ci/run` always
/// sets, after installing it), else the venv `.ci/run` would create.
fn schemathesis() -> Option<std::path::PathBuf> {
    const DEFAULT: &str = "/var/tmp/ironledger-fuzz-venv";
    let set = std::env::var_os("IRONLEDGER_FUZZ_VENV");
    let venv = std::path::PathBuf::from(set.clone().unwrap_or_else(|| DEFAULT.into()));
    let bin = venv.join("bin").join("schemathesis");
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        set.is_none(),
        "IRONLEDGER_FUZZ_VENV is set but {} is missing: run .ci/run, which installs it",
        bin.display()
    );
    None
}

/// schemathesis, driven by `/v1/openapi.json` alone, against `ironledger serve`
/// (SQLite, the embedded default; `IRONLEDGER_FUZZ_DATABASE_URL` for another store) for a bounded number of cases per operation:
/// no 5xx, no status, content type or response body the document does not
/// describe, and the generated requests really create nodes (a document whose
/// schemas only produce refusals would pass the other checks while testing
/// nothing past the validators).
#[tokio::test]
async fn a_schema_driven_fuzzer_finds_no_server_error_and_creates_nodes() {
    // By hand, the same run against a PostgreSQL database of one's own.
    fuzz(std::env::var("IRONLEDGER_FUZZ_DATABASE_URL").ok()).await
}

/// The same on PostgreSQL, where the store answers differently (NUL in
/// strings, numbers `jsonb` writes back as long decimals): a schema of the
/// test database of its own.
#[tokio::test]
async fn a_schema_driven_fuzzer_finds_no_server_error_on_postgres() {
    let d = common::audit::db(common::audit::Backend::Postgres).await;
    fuzz(Some(d.url.clone())).await;
}

async fn fuzz(database_url: Option<String>) {
    let Some(schemathesis) = schemathesis() else {
        eprintln!(
            "\n!!!!! SKIPPED: schemathesis not installed (set IRONLEDGER_FUZZ_VENV or run .ci/run) !!!!!\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Only the hardware types without a BMC: a node the fuzzer enrolls must
    // never send ironledger to an address it made up (`…/management/
    // boot_device` calls the BMC synchronously, a power change through the
    // process manager).
    let config = dir.path().join("ironic.conf");
    std::fs::write(
        &config,
        "[DEFAULT]\nenabled_hardware_types = fake-hardware,manual-management\n\
         enabled_power_interfaces = fake\nenabled_management_interfaces = fake,noop\n",
    )
    .unwrap();
    let mut serve = Command::new(BIN);
    serve
        .args(["serve", "--port", "0", "--config-file"])
        .arg(&config)
        .env("IRONLEDGER_DATA_DIR", dir.path())
        .env_remove("DATABASE_URL");
    if let Some(url) = database_url {
        serve.env("DATABASE_URL", url);
    }
    let mut child = serve
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ironledger");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("ironledger listening on ")
        .expect(&line)
        .to_string();

    let examples = std::env::var("IRONLEDGER_FUZZ_EXAMPLES").unwrap_or_else(|_| "30".into());
    let seed = std::env::var("IRONLEDGER_FUZZ_SEED").unwrap_or_else(|_| "1".into());
    let out = tokio::process::Command::new(&schemathesis)
        .current_dir(dir.path())
        .args(["run", &format!("{base}/v1/openapi.json")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            &examples,
            "--seed",
            &seed,
            "--workers",
            "2",
            "--generation-database",
            "none",
            "--suppress-health-check",
            "all",
            "--request-timeout",
            "30",
            // An endless stream by design: tests/service/operations.rs tests it.
            "--exclude-path",
            "/feed/stream",
            "--no-color",
        ])
        .env("NO_COLOR", "1")
        .output()
        .await
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    let summary = report
        .split("SUMMARY")
        .last()
        .unwrap_or(&report)
        .to_string();
    assert!(
        out.status.success(),
        "schemathesis found failures (seed {seed}):\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(summary.contains("passed"), "{report}");

    let nodes: Value = reqwest::Client::new()
        .get(format!("{base}/v1/nodes"))
        .header("X-OpenStack-Ironic-API-Version", "latest")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let created = nodes["nodes"].as_array().map(Vec::len).unwrap_or(0);
    assert!(
        created > 0,
        "the fuzzer created no node: the document's node schema generates only refusals\n{summary}"
    );
    // And nothing the fuzzer got committed poisoned the log: every read
    // model applied every event (an event no reader can apply is recorded
    // and shows here as `degraded`; one that stopped them, as `stuck`).
    let health: Value = reqwest::get(format!("{base}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok", "after the fuzzer: {health}");
    assert_eq!(health["failures"]["count"], 0, "{health}");
    eprintln!("schemathesis: {created} nodes created;{summary}");
    drop(server);
}
