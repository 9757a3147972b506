//! The Cinder client against a real Cinder (the project's rig,
//! `tests/rigs/cinder/start.sh`, started by `.ci/run`): attach, idempotent
//! re-attach, the in-use refusal, detach, compensation, unreachable service.
//!
//! Endpoint: `IRONLEDGER_TEST_CINDER_URL` (default
//! `http://127.0.0.1:8776/v3/4f3c2d1e0a9b8c7d6e5f4a3b2c1d0e9f`). The test fails,
//! never skips, when Cinder is not there.

use crate::common;

use common::cinder::{client, create_volume};
use ironledger::domain::node::entities::{Connector, Target};
use ironledger::effects::cinder::{connector_for, CinderAuth, CinderClient, CinderConfig};
use ironledger::effects::storage::{attach_volumes, detach_volumes, DetachMode};
use serde_json::{json, Map};
use std::time::Duration;
use uuid::Uuid;

fn target(volume_id: &str, boot_index: i64) -> Target {
    Target {
        uuid: Uuid::new_v4(),
        volume_type: "iscsi".into(),
        boot_index,
        volume_id: volume_id.into(),
        properties: Map::new(),
        extra: Map::new(),
    }
}

fn iqn(node: &str) -> Vec<Connector> {
    vec![Connector {
        uuid: Uuid::new_v4(),
        kind: "iqn".into(),
        connector_id: format!("iqn.2017-08.org.openstack.{node}"),
        extra: Map::new(),
    }]
}

/// An undeploy's detach of one volume from `node`, which must succeed.
async fn detach(c: &CinderClient, node: &str, vol: &str) {
    detach_volumes(
        c,
        node,
        None,
        &[vol.to_string()],
        &iqn(node),
        DetachMode::Undeploy,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn attach_reattach_refuse_detach() {
    let c = client();
    let vol = create_volume(false).await;
    let (a, b) = (Uuid::new_v4().to_string(), Uuid::new_v4().to_string());

    let done = attach_volumes(&c, &a, None, &[target(&vol, 0)], &iqn(&a))
        .await
        .unwrap();
    let data = done[0]
        .data
        .as_ref()
        .expect("a fresh attachment returns connection data");
    assert_eq!(data["ironic_volume_uuid"], vol.as_str());
    assert_eq!(data["volume_id"], vol.as_str());
    assert_eq!(
        data["target_lun"], 0,
        "the rig's iSCSI-shaped driver answers with a LUN: {data}"
    );
    assert!(data["target_iqn"].as_str().unwrap().contains(&vol));
    let v = c.get_volume(&vol).await.unwrap();
    assert_eq!(v.status, "in-use");
    assert_eq!(v.attachments.len(), 1);
    assert_eq!(v.attachments[0].0, a);

    // Repeating the attach (a resumed deploy) does not attach twice, and still
    // yields the connection data.
    let again = attach_volumes(&c, &a, None, &[target(&vol, 0)], &iqn(&a))
        .await
        .unwrap();
    assert!(again[0].already_attached);
    assert_eq!(
        again[0].data.as_ref().unwrap()["target_iqn"],
        data["target_iqn"]
    );
    let v = c.get_volume(&vol).await.unwrap();
    assert_eq!((v.status.as_str(), v.attachments.len()), ("in-use", 1));

    // Another node cannot take an in-use, non-multiattach volume.
    let err = attach_volumes(&c, &b, None, &[target(&vol, 0)], &iqn(&b))
        .await
        .unwrap_err();
    assert!(!err.transient, "{err}");
    assert_eq!(err.status, Some(400));
    assert!(err.message.contains("in-use"), "{}", err.message);
    let v = c.get_volume(&vol).await.unwrap();
    assert_eq!((v.status.as_str(), v.attachments.len()), ("in-use", 1));

    detach(&c, &a, &vol).await;
    let v = c.get_volume(&vol).await.unwrap();
    assert_eq!((v.status.as_str(), v.attachments.len()), ("available", 0));
    // Detaching again is a no-op.
    detach(&c, &a, &vol).await;
    // And now the other node may attach it.
    attach_volumes(&c, &b, None, &[target(&vol, 0)], &iqn(&b))
        .await
        .unwrap();
    detach(&c, &b, &vol).await;
}

#[tokio::test]
async fn a_failed_attach_detaches_what_it_attached() {
    let c = client();
    let good = create_volume(false).await;
    let node = Uuid::new_v4().to_string();
    let missing = Uuid::new_v4().to_string();
    let err = attach_volumes(
        &c,
        &node,
        None,
        &[target(&good, 0), target(&missing, 1)],
        &iqn(&node),
    )
    .await
    .unwrap_err();
    assert_eq!(err.status, Some(404), "{err}");
    let v = c.get_volume(&good).await.unwrap();
    assert_eq!(
        (v.status.as_str(), v.attachments.len()),
        ("available", 0),
        "compensated"
    );
}

#[tokio::test]
async fn instance_uuid_is_the_attachment_owner_when_set() {
    let c = client();
    let vol = create_volume(false).await;
    let node = Uuid::new_v4().to_string();
    let instance = Uuid::new_v4().to_string();
    attach_volumes(&c, &node, Some(&instance), &[target(&vol, 0)], &iqn(&node))
        .await
        .unwrap();
    assert_eq!(c.get_volume(&vol).await.unwrap().attachments[0].0, instance);
    detach_volumes(
        &c,
        &node,
        Some(&instance),
        std::slice::from_ref(&vol),
        &iqn(&node),
        DetachMode::Undeploy,
    )
    .await
    .unwrap();
    assert_eq!(c.get_volume(&vol).await.unwrap().status, "available");
}

#[tokio::test]
async fn unreachable_cinder_is_a_transient_error() {
    let c = CinderClient::new(CinderConfig {
        endpoint: "http://127.0.0.1:9/v3/0".into(),
        auth: CinderAuth::Token("secret-token".into()),
        timeout: Duration::from_secs(2),
        action_retries: 0,
        action_retry_interval: Duration::from_millis(1),
    })
    .unwrap();
    let err = c.get_volume("x").await.unwrap_err();
    assert!(err.transient);
    assert!(
        err.message
            .contains("Failed to connect to block storage service"),
        "{}",
        err.message
    );
    assert!(
        !format!("{c:?}").contains("secret-token"),
        "the token never shows"
    );
}

#[test]
fn connector_dictionary_follows_ironic() {
    let c = |k: &str, id: &str| Connector {
        uuid: Uuid::new_v4(),
        kind: k.into(),
        connector_id: id.into(),
        extra: Map::new(),
    };
    let d = connector_for(
        "n1",
        &[
            c("iqn", "iqn.a"),
            c("iqn", "iqn.b"),
            c("ip", "10.0.0.5"),
            c("mac", "52:54:00:00:00:01"),
        ],
    )
    .unwrap();
    assert_eq!(
        d,
        json!({"initiator": "iqn.a", "ip": "10.0.0.5", "host": "n1", "multipath": true})
    );
    let fc = connector_for("n1", &[c("wwpn", "p1"), c("wwnn", "n1x")]).unwrap();
    assert_eq!(
        fc,
        json!({"wwpns": ["p1"], "wwnns": ["n1x"], "host": "n1", "multipath": true})
    );
    let err = connector_for("n1", &[c("ip", "10.0.0.5")]).unwrap_err();
    assert!(err
        .message
        .starts_with("Insufficient or incompatible volume connection records for node n1"));
}

/// A compensation reports as detached only what Cinder confirmed: a volume it
/// refuses to detach (here: put in `maintenance` behind our back) stays
/// attached and is left out, so the process manager tries it again; once
/// Cinder lets go, it is reported.
#[tokio::test]
async fn a_compensation_reports_only_what_cinder_detached() {
    let c = client();
    let node = Uuid::new_v4().to_string();
    let (stuck, free) = (create_volume(false).await, create_volume(false).await);
    attach_volumes(
        &c,
        &node,
        None,
        &[target(&stuck, 0), target(&free, 1)],
        &iqn(&node),
    )
    .await
    .unwrap();
    common::cinder::reset_status(&stuck, "maintenance").await;
    let both = [stuck.clone(), free.clone()];
    let connectors = iqn(&node);
    let compensate = || {
        detach_volumes(
            &c,
            &node,
            None,
            &both,
            &connectors,
            DetachMode::Compensation,
        )
    };
    let detached = compensate().await.unwrap();
    assert_eq!(detached, vec![free.clone()]);
    assert_eq!(c.get_volume(&stuck).await.unwrap().attachments.len(), 1);
    assert_eq!(c.get_volume(&free).await.unwrap().attachments.len(), 0);

    common::cinder::reset_status(&stuck, "in-use").await;
    let detached = compensate().await.unwrap();
    assert_eq!(detached, both.to_vec(), "the free one is confirmed again");
    assert_eq!(c.get_volume(&stuck).await.unwrap().attachments.len(), 0);
}
