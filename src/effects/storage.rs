//! Attaching and detaching a node's volumes in Cinder, step by step as Ironic's
//! cinder storage interface does (`docs/ironic-behaviour.md` §9.2, §9.3), made safe to
//! repeat: a volume already attached to the node is not attached again, and a
//! volume no longer attached is not detached again — which is what lets the
//! process manager resume after a crash without a second attachment.

use super::cinder::{connector_for, CinderClient, CinderError, CinderRequest, RESERVING};
use super::crash_point;
use crate::domain::node::entities::{Connector, Target};
use serde_json::Value;

/// The outcome of attaching one volume.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub volume_id: String,
    /// Cinder's `connection_info.data`, with `volume_id` and
    /// `ironic_volume_uuid` added.
    pub data: Option<Value>,
    pub driver_volume_type: Option<String>,
    /// The volume was attached to this node before this call (a resumed
    /// deploy): nothing was reserved or attached again; the connection data
    /// was read afresh with `os-initialize_connection`, which changes no state.
    pub already_attached: bool,
    /// Whether Cinder lets the volume be attached to several nodes.
    pub multiattach: bool,
}

/// The ids Cinder may know the node by (`server_id` of an attachment).
fn node_ids<'a>(node_uuid: &'a str, instance_uuid: Option<&'a str>) -> Vec<&'a str> {
    let mut ids = vec![node_uuid];
    if let Some(i) = instance_uuid {
        ids.push(i);
    }
    ids
}

/// Attaches every target's volume to the node. On any failure, detaches what
/// this call attached (compensation) and returns the error.
pub async fn attach_volumes(
    client: &CinderClient,
    node_uuid: &str,
    instance_uuid: Option<&str>,
    targets: &[Target],
    connectors: &[Connector],
) -> Result<Vec<Attachment>, CinderError> {
    if targets.is_empty() {
        return Ok(vec![]);
    }
    let connector = connector_for(node_uuid, connectors)?;
    let instance = instance_uuid.unwrap_or(node_uuid);
    let ids = node_ids(node_uuid, instance_uuid);
    let mut done: Vec<Attachment> = Vec::new();
    for target in targets {
        match attach_one(
            client,
            node_uuid,
            instance,
            &ids,
            &target.volume_id,
            &connector,
        )
        .await
        {
            Ok(a) => done.push(a),
            Err(e) => {
                let attached: Vec<&str> = done
                    .iter()
                    .filter(|a| !a.already_attached)
                    .map(|a| a.volume_id.as_str())
                    .collect();
                tracing::warn!(node = node_uuid, volume = %target.volume_id, error = %e, compensating = attached.len(), "attach failed");
                for v in attached {
                    if let Err(d) =
                        detach_one(client, node_uuid, &ids, v, Ok(&connector), true).await
                    {
                        tracing::warn!(node = node_uuid, volume = v, error = %d, "compensating detach failed");
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(done)
}

/// The requests [`attach_one`] sends for a volume that is neither attached
/// to the node nor reserved for it (the case of every volume of a node about
/// to deploy), in order: read the volume, mark it as being reserved by the
/// node, reserve it, initialize the connection with the node's connector,
/// attach it, note the attachment. `last_seen` stands for the time of each
/// note. The deploy plan shows these; `tests/effects/deploy.rs` checks them against
/// what a deploy sends.
pub fn attach_requests(
    node_uuid: &str,
    instance_uuid: Option<&str>,
    volume_id: &str,
    connector: &Value,
    last_seen: &str,
) -> Vec<CinderRequest> {
    let instance = instance_uuid.unwrap_or(node_uuid);
    let note = |action: &str| {
        CinderRequest::node_metadata(volume_id, node_uuid, instance, action, last_seen)
    };
    vec![
        CinderRequest::get_volume(volume_id),
        note(RESERVING),
        CinderRequest::reserve(volume_id),
        CinderRequest::initialize_connection(volume_id, connector),
        CinderRequest::attach(volume_id, instance),
        note("attached"),
    ]
}

async fn attach_one(
    client: &CinderClient,
    node_uuid: &str,
    instance: &str,
    ids: &[&str],
    volume_id: &str,
    connector: &Value,
) -> Result<Attachment, CinderError> {
    let volume = client.get_volume(volume_id).await?;
    let already_attached = volume.attachment_of(ids).is_some();
    let info = if already_attached {
        // A resumed deploy: the attachment exists; only read the connection
        // data again (Ironic would skip the volume and lose it).
        tracing::info!(
            node = node_uuid,
            volume = volume_id,
            "volume already attached to the node"
        );
        client.initialize_connection(volume_id, connector).await?
    } else {
        if volume.reserved_by(node_uuid, ids) {
            // A resumed deploy whose earlier try reserved the volume and
            // stopped (crash, Cinder gone) before attaching: go on from there.
            tracing::info!(
                node = node_uuid,
                volume = volume_id,
                "volume already reserved for the node"
            );
        } else {
            reserve(client, node_uuid, instance, volume_id).await?;
        }
        crash_point("deploy:after-reserve");
        let info = match client.initialize_connection(volume_id, connector).await {
            Ok(i) => i,
            Err(e) => {
                let _ = client.unreserve(volume_id).await;
                return Err(e);
            }
        };
        if let Err(e) = client.attach(volume_id, instance).await {
            let _ = client.terminate_connection(volume_id, connector).await;
            let _ = client.unreserve(volume_id).await;
            return Err(e);
        }
        note_on_volume(client, volume_id, node_uuid, instance, "attached").await;
        info
    };
    let mut data = info["data"].clone();
    if let Value::Object(m) = &mut data {
        m.entry("volume_id")
            .or_insert_with(|| Value::String(volume_id.to_string()));
        m.insert(
            "ironic_volume_uuid".into(),
            Value::String(volume.id.clone()),
        );
    }
    Ok(Attachment {
        volume_id: volume_id.to_string(),
        data: Some(data),
        driver_volume_type: info["driver_volume_type"].as_str().map(String::from),
        already_attached,
        multiattach: volume.multiattach,
    })
}

/// Records the node's last action on the volume (`ironic_node_<uuid>`
/// metadata). Only a help to whoever looks at the volume, as in Ironic: a
/// failure is logged, not fatal.
async fn note_on_volume(
    client: &CinderClient,
    volume_id: &str,
    node_uuid: &str,
    instance: &str,
    action: &str,
) {
    if let Err(e) = client
        .set_node_metadata(volume_id, node_uuid, instance, action)
        .await
    {
        tracing::warn!(node = node_uuid, volume = volume_id, error = %e, "could not record node metadata on the volume");
    }
}

/// Marks the volume as being reserved by the node, then reserves it. The mark
/// comes first so that a reservation whose answer was lost (or whose process
/// died right after) is still recognisably ours; a refused reservation clears
/// it again.
async fn reserve(
    client: &CinderClient,
    node_uuid: &str,
    instance: &str,
    volume_id: &str,
) -> Result<(), CinderError> {
    client
        .set_node_metadata(volume_id, node_uuid, instance, RESERVING)
        .await?;
    if let Err(e) = client.reserve(volume_id).await {
        if !e.transient {
            note_on_volume(client, volume_id, node_uuid, instance, "reserve refused").await;
        }
        return Err(e);
    }
    Ok(())
}

/// Releases a reservation the node made and never turned into an attachment.
async fn unreserve(
    client: &CinderClient,
    node_uuid: &str,
    ids: &[&str],
    volume_id: &str,
) -> Result<(), CinderError> {
    tracing::info!(
        node = node_uuid,
        volume = volume_id,
        "releasing a reservation the node never completed"
    );
    client.unreserve(volume_id).await?;
    note_on_volume(
        client,
        volume_id,
        node_uuid,
        ids.last().unwrap_or(&node_uuid),
        "unreserved",
    )
    .await;
    Ok(())
}

/// Detaches one volume from the node; a volume not attached to it is skipped,
/// and a reservation it left unfinished is released.
///
/// `allow_errors` (Ironic's name) tolerates Cinder *refusing* a step for one
/// volume: logged, and the answer is `false` — the volume may still be
/// attached, so the caller must not record it as detached. A transient
/// failure — Cinder unreachable, timing out, 5xx — is always returned.
/// `true`: Cinder holds nothing of this node's on the volume any more.
async fn detach_one(
    client: &CinderClient,
    node_uuid: &str,
    ids: &[&str],
    volume_id: &str,
    connector: Result<&Value, &CinderError>,
    allow_errors: bool,
) -> Result<bool, CinderError> {
    let volume = match client.get_volume(volume_id).await {
        Ok(v) => v,
        // A volume Cinder does not know is attached to nothing (Ironic fails the
        // tear-down here, leaving the node in error for no gain).
        Err(e) if e.status == Some(404) => {
            tracing::warn!(
                node = node_uuid,
                volume = volume_id,
                "volume not found in Cinder; nothing to detach"
            );
            return Ok(true);
        }
        Err(e) if allow_errors && !e.transient => {
            tracing::warn!(node = node_uuid, volume = volume_id, error = %e, "cannot read volume; skipping");
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let Some(attachment) = volume.attachment_of(ids).map(String::from) else {
        if volume.reserved_by(node_uuid, ids) {
            match unreserve(client, node_uuid, ids, volume_id).await {
                Err(e) if !allow_errors || e.transient => return Err(e),
                Err(e) => {
                    tracing::warn!(node = node_uuid, volume = volume_id, error = %e, "unreserve failed");
                    return Ok(false);
                }
                Ok(()) => {}
            }
        } else if volume.last_action_of(node_uuid).as_deref() == Some(RESERVING) {
            // A reserve that Cinder never carried out (its answer was lost):
            // clear the mark, so that a reservation someone else makes later
            // is not taken for ours.
            note_on_volume(
                client,
                volume_id,
                node_uuid,
                ids.last().unwrap_or(&node_uuid),
                "released",
            )
            .await;
        }
        return Ok(true);
    };
    // Only now is the connector needed (before anything changes): a volume
    // not attached, or unknown to Cinder, is settled even for a node whose
    // connectors are gone.
    let connector = connector.map_err(Clone::clone)?;
    if volume.status != "detaching" {
        if let Err(e) = client.begin_detaching(volume_id).await {
            if !allow_errors || e.transient {
                return Err(e);
            }
            tracing::warn!(node = node_uuid, volume = volume_id, error = %e, "begin_detaching failed");
        }
    }
    if let Err(e) = client.terminate_connection(volume_id, connector).await {
        if allow_errors && !e.transient {
            tracing::warn!(node = node_uuid, volume = volume_id, error = %e, "terminate_connection failed");
            return Ok(false);
        }
        let _ = client.roll_detaching(volume_id).await;
        return Err(e);
    }
    if let Err(e) = client.detach(volume_id, &attachment).await {
        if allow_errors && !e.transient {
            tracing::warn!(node = node_uuid, volume = volume_id, error = %e, "detach failed");
            return Ok(false);
        }
        return Err(e);
    }
    note_on_volume(
        client,
        volume_id,
        node_uuid,
        ids.last().unwrap_or(&node_uuid),
        "detached",
    )
    .await;
    Ok(true)
}

/// How a detach treats failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetachMode {
    /// An undeploy: every refusal is an error, and the whole pass is retried
    /// `action_retries` times `action_retry_interval` apart (Ironic's rule).
    Undeploy,
    /// Undoing a failed deploy or a deleted node's volumes: Cinder refusing
    /// one volume is logged and skipped (Ironic's `allow_errors`), and one pass
    /// is made — the process manager's sweep is the retry loop, so a Cinder
    /// that is away does not hold up the other nodes.
    Compensation,
}

/// Detaches volumes from the node; the last error is returned. On success,
/// the volumes Cinder confirmed hold nothing of the node's any more (with
/// [`DetachMode::Undeploy`], all of them; a compensation leaves out those
/// Cinder refused to detach, to be tried again).
pub async fn detach_volumes(
    client: &CinderClient,
    node_uuid: &str,
    instance_uuid: Option<&str>,
    volume_ids: &[String],
    connectors: &[Connector],
    mode: DetachMode,
) -> Result<Vec<String>, CinderError> {
    let allow_errors = mode == DetachMode::Compensation;
    if volume_ids.is_empty() {
        return Ok(vec![]);
    }
    let connector = connector_for(node_uuid, connectors);
    let ids = node_ids(node_uuid, instance_uuid);
    let attempts = match mode {
        DetachMode::Undeploy => client.config().action_retries + 1,
        DetachMode::Compensation => 1,
    };
    let mut last = None;
    for attempt in 1..=attempts {
        let mut failed = None;
        let mut confirmed = Vec::new();
        for volume_id in volume_ids {
            match detach_one(
                client,
                node_uuid,
                &ids,
                volume_id,
                connector.as_ref(),
                allow_errors,
            )
            .await
            {
                Ok(true) => confirmed.push(volume_id.clone()),
                Ok(false) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match failed {
            None => return Ok(confirmed),
            Some(e) => {
                tracing::warn!(node = node_uuid, attempt, attempts, error = %e, "detach pass failed");
                last = Some(e);
                if attempt < attempts {
                    tokio::time::sleep(client.config().action_retry_interval).await;
                }
            }
        }
    }
    Err(last.expect("at least one attempt"))
}
