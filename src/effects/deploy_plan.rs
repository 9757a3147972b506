//! What a deploy of a node would do, step by step, without doing any of it:
//! `ironledger plan NODE`.
//!
//! The plan follows the process manager's deploy (`process_manager`, the
//! `deploying` row of its table) and names, for each step, what it sends and
//! writes — the Cinder requests per volume with the node's connector, the
//! files under the HTTP root and the script (secrets masked), the MAC links,
//! the BMC actions — and the events the node records when the step is done.
//! Those events are not guessed: each step's command is decided by the node
//! aggregate itself (`Node::decide`, pure) on a copy of the node, and the
//! copy moves on with the events it would record, so a step that would
//! change nothing (a node already powered off) records nothing here either.
//!
//! Only what depends on the outside world is left open: Cinder's answers
//! (the connection data of an attached volume, hence the script of a
//! `cinder` node, which the plan says is rendered from them) and the BMC's.
//! `tests/effects/deploy.rs` runs a real deploy after the plan and checks it did the
//! same: the same Cinder requests in the same order, the same script, files
//! and events.

use super::cinder::{connector_for, CinderRequest};
use super::http_root::HttpRoot;
use super::ipxe::{self, SanRetries};
use super::storage::attach_requests;
use crate::domain::bmc_access::{self, BmcAccess, Protocol};
use crate::domain::node::commands::ProvisionRequest;
use crate::domain::node::events::VolumeAttachment;
use crate::domain::state::{POWER_OFF, POWER_ON};
use crate::domain::{boot_mode, Node, NodeCommand, NodeServices};
use cqrs_es::{Aggregate, DomainEvent};
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// What the plan needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct PlanContext<'a> {
    /// `[deploy] http_root`.
    pub http_root: &'a Path,
    /// `[deploy] san_boot_retries`.
    pub san_retries: SanRetries,
    /// `[conductor] power_state_change_timeout`.
    pub power_timeout: Duration,
    /// `[cinder] endpoint_override`, when configured.
    pub cinder_endpoint: Option<&'a str>,
    /// The hardware types and interfaces the deploy request is checked
    /// against.
    pub services: &'a NodeServices,
}

/// A deploy, as it would run now.
#[derive(Debug, Clone, Serialize)]
pub struct DeployPlan {
    pub node: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub provision_state: String,
    /// Why the deploy request would be refused, in the API's words (its
    /// 400/409 text); there are no steps then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    pub steps: Vec<Step>,
}

/// One step of a deploy.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// A short name: `request`, `boot-volume`, `power-off`, `attach-intent`,
    /// `attach`, `record-attachments`, `boot-config`, `boot-device`,
    /// `power-on`, `finish`.
    pub step: &'static str,
    /// What the step does, for people.
    pub does: String,
    /// The events the node records once the step is done (in order).
    pub records: Vec<String>,
    /// The requests sent to Cinder, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cinder: Vec<CinderRequest>,
    /// The files written under the HTTP root.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PlannedFile>,
    /// The node's iPXE script, secrets masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
}

/// A file (or link) a step writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedFile {
    pub path: String,
    /// `0600` for a script (it holds CHAP secrets), `link` for a MAC link.
    pub mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links_to: Option<String>,
}

/// When the plan stands for a timestamp it cannot know (`last_seen` of the
/// node's note on a volume).
pub const AT_CALL_TIME: &str = "<time of the call>";

/// The node copy the plan walks forward, and the steps so far.
struct Walk<'a> {
    node: Node,
    services: &'a NodeServices,
    steps: Vec<Step>,
}

impl Walk<'_> {
    /// Decides `command` on the copy and moves it on; the events' names, or
    /// the refusal.
    fn record(&mut self, command: NodeCommand) -> Result<Vec<String>, String> {
        let events = self
            .node
            .decide(command, self.services)
            .map_err(|e| e.to_string())?;
        let names = events.iter().map(|e| e.event_type()).collect();
        for e in events {
            self.node.apply(e);
        }
        Ok(names)
    }

    fn step(
        &mut self,
        step: &'static str,
        does: String,
        command: Option<NodeCommand>,
    ) -> &mut Step {
        // The process manager's own commands cannot be refused by a node
        // that accepted the deploy; if one were, the plan says so.
        let records = match command.map(|c| self.record(c)) {
            None => vec![],
            Some(Ok(names)) => names,
            Some(Err(e)) => vec![format!("(refused: {e})")],
        };
        self.push(step, does, records)
    }

    /// A step whose events are known already.
    fn push(&mut self, step: &'static str, does: String, records: Vec<String>) -> &mut Step {
        self.steps.push(Step {
            step,
            does,
            records,
            cinder: vec![],
            files: vec![],
            script: None,
        });
        self.steps.last_mut().expect("just pushed")
    }
}

/// Where a node's BMC is, for people (never a credential).
fn bmc_text(access: &BmcAccess) -> String {
    match access {
        BmcAccess::Redfish(r) => format!(
            "the Redfish BMC at {} (system {})",
            r.address,
            r.system_id.as_deref().unwrap_or("the only one")
        ),
        BmcAccess::Ipmi(i) => format!("the IPMI BMC at {}:{}", i.address, i.port.unwrap_or(623)),
    }
}

/// The plan of a deploy of `node` as it is now.
pub fn plan(node: &Node, ctx: &PlanContext) -> DeployPlan {
    let id = node.id();
    let mut out = DeployPlan {
        node: id.clone(),
        name: node.name.clone(),
        provision_state: node.state().to_string(),
        refused: None,
        steps: vec![],
    };
    let mut walk = Walk {
        node: node.clone(),
        services: ctx.services,
        steps: vec![],
    };
    let accepted = match walk.record(NodeCommand::Provision(ProvisionRequest::verb("deploy"))) {
        Ok(names) => names,
        Err(refusal) => {
            out.refused = Some(refusal);
            return out;
        }
    };
    walk.push(
        "request",
        "accept the deploy request (the API answers 202)".into(),
        accepted,
    );
    if let Some((boot, note)) = node.note_boot_volume() {
        walk.step(
            "boot-volume",
            format!("note the boot volume target {boot} in driver_internal_info"),
            Some(note),
        );
    }
    let bmc = Protocol::of_interface(node.interface("power"))
        .and_then(|p| bmc_access::parse(p, &id, &node.driver_info, |f| Path::new(f).exists()).ok());
    let timeout = ctx.power_timeout.as_secs();
    match &bmc {
        Some(access) => {
            walk.step(
                "power-off",
                format!(
                    "read the power state of {}, ask it to power off unless it reports off, and read it again until it does (at most {timeout} s)",
                    bmc_text(access)
                ),
                Some(NodeCommand::RecordPowerState {
                    power_state: POWER_OFF.into(),
                    at: super::now_iso(),
                }),
            );
        }
        None => {
            walk.step(
                "power-off",
                format!(
                    "record the node powered off (its power interface, {}, drives no BMC)",
                    node.interface("power")
                ),
                (node.power_state.as_deref() != Some(POWER_OFF)).then(|| {
                    NodeCommand::SetPowerState {
                        target: POWER_OFF.into(),
                        at: Some(super::now_iso()),
                    }
                }),
            );
        }
    }
    let cinder = node.interface("storage") == "cinder";
    if cinder {
        plan_attach(&mut walk, node, ctx);
    }

    let root = HttpRoot::new(ctx.http_root);
    let macs = node.pxe_macs();
    let mut files = vec![PlannedFile {
        path: root.config_path(&id).display().to_string(),
        mode: "0600",
        links_to: None,
    }];
    for mac in &macs {
        files.push(PlannedFile {
            path: root.mac_path(mac).display().to_string(),
            mode: "link",
            links_to: Some(format!("../{id}/config")),
        });
    }
    // A cinder node's script is rendered from Cinder's connection data,
    // which only the attachment gives.
    let script = (!cinder)
        .then(|| ipxe::plan(&node.targets, &node.connectors).ok())
        .flatten()
        .map(|p| ipxe::render_config_with(&id, &p.without_secrets(), ctx.san_retries));
    let does = if cinder {
        "write the node's iPXE script, rendered from the connection data Cinder gives for each volume (os-initialize_connection), and link each PXE-enabled MAC to it"
    } else {
        "write the node's iPXE script and link each PXE-enabled MAC to it"
    };
    let step = walk.step(
        "boot-config",
        does.into(),
        Some(NodeCommand::RecordBootConfig {
            digest: String::new(),
            macs,
        }),
    );
    step.files = files;
    step.script = script;

    match &bmc {
        Some(access) => {
            let mode = boot_mode::requested(&node.instance_info, &node.properties)
                .ok()
                .flatten();
            walk.step(
                "boot-device",
                format!(
                    "ask {} to boot from the network on every boot{}",
                    bmc_text(access),
                    mode.map(|m| format!(", in {} mode", m.as_str()))
                        .unwrap_or_default()
                ),
                Some(NodeCommand::RecordBootDevice {
                    device: "pxe".into(),
                    persistent: true,
                    mode: mode.map(|m| m.as_str().to_string()),
                }),
            );
            walk.step(
                "power-on",
                format!(
                    "ask {} to power on, and read the power state until it reports on (at most {timeout} s): the machine boots iPXE, which chains its script and boots the volume",
                    bmc_text(access)
                ),
                Some(NodeCommand::RecordPowerState {
                    power_state: POWER_ON.into(),
                    at: super::now_iso(),
                }),
            );
        }
        None => {
            walk.step(
                "power-on",
                "record the node powered on".into(),
                Some(NodeCommand::SetPowerState {
                    target: POWER_ON.into(),
                    at: Some(super::now_iso()),
                }),
            );
        }
    }
    walk.step(
        "finish",
        "record the node deployed (active)".into(),
        Some(NodeCommand::FinishDeploy),
    );
    out.steps = walk.steps;
    out
}

/// The Cinder part: the intent, each volume's requests, the attachments.
fn plan_attach(walk: &mut Walk, node: &Node, ctx: &PlanContext) {
    let id = node.id();
    let volume_ids: Vec<String> = node.targets.iter().map(|t| t.volume_id.clone()).collect();
    walk.step(
        "attach-intent",
        format!(
            "record which volumes are about to be attached ({}), so a failure or crash detaches them",
            volume_ids.join(", ")
        ),
        Some(NodeCommand::RecordAttachIntent {
            volume_ids: volume_ids.clone(),
            owner: node.instance_uuid.clone(),
        }),
    );
    let endpoint = ctx
        .cinder_endpoint
        .unwrap_or("(no [cinder] endpoint configured)");
    let connector = connector_for(&id, &node.connectors).ok();
    for target in &node.targets {
        let step = walk.step(
            "attach",
            format!(
                "attach volume {} (boot index {}) in Cinder at {endpoint} and record who holds it (VolumeAttached on the volume)",
                target.volume_id, target.boot_index
            ),
            None,
        );
        if let Some(connector) = &connector {
            step.cinder = attach_requests(
                &id,
                node.instance_uuid.as_deref(),
                &target.volume_id,
                connector,
                AT_CALL_TIME,
            );
        }
    }
    // Cinder's connection data is not known yet; a stand-in that differs
    // from the targets' properties lets the node decide as it will then.
    let from_cinder = serde_json::Map::from_iter([(
        "connection_info".to_string(),
        serde_json::json!("<Cinder's answer to os-initialize_connection>"),
    )]);
    let attachments = node
        .targets
        .iter()
        .map(|t| VolumeAttachment {
            volume_id: t.volume_id.clone(),
            target: t.uuid,
            driver_volume_type: Some("iscsi".into()),
            properties: from_cinder.clone(),
            multiattach: false,
        })
        .collect();
    walk.step(
        "record-attachments",
        "record Cinder's connection data on each volume target".into(),
        Some(NodeCommand::RecordAttachments { attachments }),
    );
}
