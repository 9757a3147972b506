//! The real Cinder rig (`tests/rigs/cinder/start.sh`, started by `.ci/run`).
//!
//! Endpoint: `IRONLEDGER_TEST_CINDER_URL` (default
//! `http://127.0.0.1:8776/v3/4f3c2d1e0a9b8c7d6e5f4a3b2c1d0e9f`). Tests fail,
//! never skip, when Cinder is not there.

use ironledger::effects::cinder::{CinderAuth, CinderClient, CinderConfig};
use serde_json::{json, Value};
use std::time::Duration;

pub fn endpoint() -> String {
    std::env::var("IRONLEDGER_TEST_CINDER_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8776/v3/4f3c2d1e0a9b8c7d6e5f4a3b2c1d0e9f".into())
}

pub fn project() -> String {
    endpoint().rsplit('/').next().unwrap().to_string()
}

/// Client configuration for `endpoint` (no-auth, short retries for tests).
pub fn config(endpoint: &str) -> CinderConfig {
    CinderConfig {
        endpoint: endpoint.to_string(),
        auth: CinderAuth::None {
            username: "admin".into(),
            project_id: project(),
        },
        timeout: Duration::from_secs(10),
        action_retries: 1,
        action_retry_interval: Duration::from_millis(200),
    }
}

pub fn client() -> CinderClient {
    CinderClient::new(config(&endpoint())).unwrap()
}

/// Creates a volume through Cinder's API and waits until it is available.
pub async fn create_volume(multiattach: bool) -> String {
    let mut body =
        json!({"volume": {"size": 1, "name": format!("ironledger-test-{}", uuid::Uuid::new_v4())}});
    if multiattach {
        body["volume"]["multiattach"] = json!(true);
    }
    let res: Value = reqwest::Client::new()
        .post(format!("{}/volumes", endpoint()))
        .header("X-Auth-Token", format!("admin:{}", project()))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "Cinder is not reachable at {} ({e}); start tests/rigs/cinder/start.sh",
                endpoint()
            )
        })
        .json()
        .await
        .unwrap();
    let id = res["volume"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("volume create failed: {res}"))
        .to_string();
    for _ in 0..100 {
        if client().get_volume(&id).await.unwrap().status == "available" {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("volume {id} never became available");
}

/// Sets a volume's status behind ironledger's back (Cinder's admin
/// `os-reset_status`), as an operator repairing Cinder would.
pub async fn reset_status(volume_id: &str, status: &str) {
    let res = reqwest::Client::new()
        .post(format!("{}/volumes/{volume_id}/action", endpoint()))
        .header("X-Auth-Token", format!("admin:{}", project()))
        .json(&json!({"os-reset_status": {"status": status}}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "reset_status: {}", res.status());
}
