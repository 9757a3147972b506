//! A node's history read as a timeline: what the page draws, computed from
//! the `node_history` entries (oldest first), without I/O.
//!
//! - **Bands**: the stretches of time the node spent in one provision state
//!   (or power state), one after the other, the last one open (it lasts
//!   until now);
//! - **Runs**: each deploy and undeploy, from the request that started it to
//!   the event that ended it (finished or failed), with its steps, each at
//!   its offset from the start, and what the step talked to (Cinder, the
//!   BMC, the boot files).

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A stretch of time in one state.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub state: String,
    pub from: DateTime<Utc>,
    /// `None`: still in it.
    pub to: Option<DateTime<Utc>>,
}

impl Band {
    /// Seconds in the state, up to `now` for the open band.
    pub fn seconds(&self, now: DateTime<Utc>) -> f64 {
        let end = self.to.unwrap_or(now);
        ((end - self.from).num_milliseconds().max(0)) as f64 / 1000.0
    }
}

/// A deploy or an undeploy.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// `Deploy`, `Rebuild` or `Undeploy`.
    pub kind: &'static str,
    pub start: DateTime<Utc>,
    /// When it ended; `None`: still running.
    pub end: Option<DateTime<Utc>>,
    /// `succeeded`, `failed` or `in progress`.
    pub outcome: &'static str,
    /// Who asked, and the request.
    pub user: Option<String>,
    pub request_id: Option<String>,
    pub steps: Vec<Step>,
}

/// One event of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Seconds since the run started.
    pub offset: f64,
    pub text: String,
    pub severity: String,
    /// What the step talked to, when it talked to something.
    pub via: Option<&'static str>,
}

/// When an entry was recorded.
pub fn time_of(entry: &Value) -> Option<DateTime<Utc>> {
    entry["created_at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn text<'a>(entry: &'a Value, field: &str) -> Option<&'a str> {
    entry[field].as_str()
}

/// The bands of `field` (`state` or `power_state`): a new band wherever the
/// value changes; entries without a value (before the first power reading)
/// start none.
pub fn bands(entries: &[Value], field: &str) -> Vec<Band> {
    let mut out: Vec<Band> = vec![];
    for e in entries {
        let (Some(state), Some(at)) = (text(e, field), time_of(e)) else {
            continue;
        };
        match out.last_mut() {
            Some(last) if last.state == state => {}
            Some(last) => {
                last.to = Some(at);
                out.push(Band {
                    state: state.to_string(),
                    from: at,
                    to: None,
                });
            }
            None => out.push(Band {
                state: state.to_string(),
                from: at,
                to: None,
            }),
        }
    }
    out
}

/// What the event with this name talked to (the side effects the process
/// manager performs and records).
pub fn via(event_name: &str) -> Option<&'static str> {
    match event_name {
        "VolumesAttaching" | "VolumesAttached" | "VolumesDetached" => Some("Cinder"),
        "PowerChangeDone"
        | "PowerChangeFailed"
        | "BootDeviceSet"
        | "PowerStateSynced"
        | "PowerStateRestored"
        | "PowerStateRestoreFailed"
        | "PowerSyncFailed" => Some("BMC"),
        "BootConfigWritten" | "BootConfigRemoved" => Some("boot files"),
        _ => None,
    }
}

/// How an event ends a run, if it does.
fn ending(event_name: &str) -> Option<&'static str> {
    match event_name {
        "Deployed" | "Undeployed" => Some("succeeded"),
        "DeployFailed" | "UndeployFailed" => Some("failed"),
        _ => None,
    }
}

/// The deploys and undeploys, oldest first.
pub fn runs(entries: &[Value]) -> Vec<Run> {
    let mut out: Vec<Run> = vec![];
    let mut open: Option<Run> = None;
    for e in entries {
        let name = text(e, "event_name").unwrap_or_default();
        let Some(at) = time_of(e) else { continue };
        let kind = match name {
            "DeployRequested" if text(e, "event").is_some_and(|t| t.starts_with("Rebuild")) => {
                Some("Rebuild")
            }
            "DeployRequested" => Some("Deploy"),
            "UndeployRequested" => Some("Undeploy"),
            _ => None,
        };
        if let Some(kind) = kind {
            out.extend(open.take());
            open = Some(Run {
                kind,
                start: at,
                end: None,
                outcome: "in progress",
                user: text(e, "user").map(String::from),
                request_id: text(e, "request_id").map(String::from),
                steps: vec![],
            });
        }
        let Some(run) = open.as_mut() else { continue };
        run.steps.push(Step {
            offset: ((at - run.start).num_milliseconds().max(0)) as f64 / 1000.0,
            text: text(e, "event").unwrap_or_default().to_string(),
            severity: text(e, "severity").unwrap_or("INFO").to_string(),
            via: via(name),
        });
        if let Some(outcome) = ending(name) {
            run.end = Some(at);
            run.outcome = outcome;
            out.extend(open.take());
        }
    }
    out.extend(open);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(t: &str, name: &str, state: &str, power: Option<&str>) -> Value {
        json!({"created_at": format!("2026-12-01T10:00:{t}+00:00"), "event_name": name,
               "event": format!("{name} happened"), "severity": if name.ends_with("Failed") {"ERROR"} else {"INFO"},
               "state": state, "power_state": power, "user": "alice", "request_id": "req-1"})
    }

    fn history() -> Vec<Value> {
        vec![
            entry("00", "NodeEnrolled", "enroll", None),
            entry("01", "ProvisionStateChanged", "manageable", None),
            entry("02", "PowerStateChanged", "manageable", Some("power off")),
            entry(
                "03",
                "ProvisionStateChanged",
                "available",
                Some("power off"),
            ),
            entry("10", "DeployRequested", "deploying", Some("power off")),
            entry("11", "VolumesAttached", "deploying", Some("power off")),
            entry("12", "BootConfigWritten", "deploying", Some("power off")),
            entry("14", "PowerChangeDone", "deploying", Some("power on")),
            entry("15", "Deployed", "active", Some("power on")),
            entry("20", "UndeployRequested", "deleting", Some("power on")),
            entry("21", "UndeployFailed", "error", Some("power on")),
        ]
    }

    #[test]
    fn bands_follow_the_state_and_the_last_one_is_open() {
        let b = bands(&history(), "state");
        let states: Vec<&str> = b.iter().map(|b| b.state.as_str()).collect();
        assert_eq!(
            states,
            [
                "enroll",
                "manageable",
                "available",
                "deploying",
                "active",
                "deleting",
                "error"
            ]
        );
        assert_eq!(b[3].seconds(Utc::now()), 5.0);
        assert_eq!(b.last().unwrap().to, None);
        let p = bands(&history(), "power_state");
        let powers: Vec<&str> = p.iter().map(|b| b.state.as_str()).collect();
        assert_eq!(powers, ["power off", "power on"]);
        assert_eq!(p[0].seconds(Utc::now()), 12.0);
    }

    #[test]
    fn runs_group_each_deploy_and_undeploy_with_their_steps() {
        let r = runs(&history());
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].kind, r[0].outcome), ("Deploy", "succeeded"));
        assert_eq!(r[0].steps.len(), 5);
        assert_eq!(r[0].steps[1].via, Some("Cinder"));
        assert_eq!(r[0].steps[2].via, Some("boot files"));
        assert_eq!(r[0].steps[3].via, Some("BMC"));
        assert_eq!(r[0].steps[4].offset, 5.0);
        assert_eq!((r[1].kind, r[1].outcome), ("Undeploy", "failed"));
        assert_eq!(r[1].steps[1].severity, "ERROR");
        assert_eq!(r[1].request_id.as_deref(), Some("req-1"));
    }

    #[test]
    fn a_run_without_its_end_is_in_progress() {
        let r = runs(&history()[..6]);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].outcome, r[0].end), ("in progress", None));
    }
}
