//! `GET /` and `GET /v1`: what this service is and which resources it offers.

use super::error::{ApiError, ApiResult};
use super::links::BaseUrl;
use super::version::{Version, MAX_MINOR, MIN_MINOR};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

fn version_doc(base: &BaseUrl) -> Value {
    json!({
        "id": "v1",
        "links": [{"href": format!("{}/v1/", base.0), "rel": "self"}],
        "status": "CURRENT",
        "min_version": format!("1.{MIN_MINOR}"),
        "version": format!("1.{MAX_MINOR}"),
    })
}

pub async fn root(base: BaseUrl) -> Json<Value> {
    let v = version_doc(&base);
    Json(json!({
        "name": "OpenStack Ironic API",
        "description": "Ironic is an OpenStack project which enables the provision and management of baremetal machines.",
        "default_version": v,
        "versions": [v],
    }))
}

pub async fn v1(base: BaseUrl, version: Version) -> Json<Value> {
    let links = |r: &str| {
        json!([
            {"href": format!("{}/v1/{r}/", base.0), "rel": "self"},
            {"href": format!("{}/{r}/", base.0), "rel": "bookmark"},
        ])
    };
    let mut doc = Map::new();
    doc.insert("id".into(), json!("v1"));
    doc.insert(
        "links".into(),
        json!([
            {"href": format!("{}/v1/", base.0), "rel": "self"},
            {"href": "https://docs.openstack.org//ironic/latest/contributor//webapi.html", "rel": "describedby", "type": "text/html"},
        ]),
    );
    doc.insert(
        "media_types".into(),
        json!({"base": "application/json", "type": "application/vnd.openstack.ironic.v1+json"}),
    );
    // Only what is served: Ironic also links chassis, which ironledger
    // does not serve (a link would lead to a 404).
    for r in ["nodes", "ports", "drivers"] {
        doc.insert(r.into(), links(r));
    }
    doc.insert("version".into(), version_doc(&base));
    if version.at_least(32) {
        doc.insert("volume".into(), links("volume"));
    }
    Json(Value::Object(doc))
}

/// Anything but GET/HEAD on `/v1`.
pub async fn v1_method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "The server could not comply with the request since it is either malformed or otherwise incorrect.",
    )
}

/// A known path with a method it does not take (the web framework's 405).
pub async fn method_not_allowed() -> ApiError {
    ApiError::framework(StatusCode::METHOD_NOT_ALLOWED, "")
}

/// Unknown paths.
pub async fn not_found() -> ApiResult<()> {
    Err(ApiError::framework(StatusCode::NOT_FOUND, "").bare())
}
