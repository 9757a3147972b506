//! `/v1/openapi.json` stays true: every documented operation reaches a handler
//! of a running server, and every route the server answers is documented.

mod common;

use ironledger::api::openapi::OPERATIONS;
use reqwest::Method;
use serde_json::json;

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
        let method = Method::from_bytes(op.method.to_ascii_uppercase().as_bytes()).unwrap();
        let body = op.body.then(|| {
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
    assert_eq!(a.body["openapi"], "3.0.3");
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
