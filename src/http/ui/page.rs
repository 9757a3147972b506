//! The HTML of the timeline pages: plain server-rendered markup with its
//! style inline, no script and nothing fetched from elsewhere, so a page
//! opens the same on an air-gapped jump host as on a laptop.
//!
//! Every text that comes from the log passes through [`shown`]: secrets
//! masked by the API's rule, then HTML-escaped.

use super::timeline::{bands, runs, time_of, Band, Run};
use crate::api::masking::mask_inline;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::fmt::Write;

/// Text from the log, safe to put in a page.
pub fn shown(text: &str) -> String {
    escape(&mask_inline(text))
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:72em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em}
.muted{color:#666} code{font-size:.9em}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #ddd;vertical-align:top}
.facts td:first-child{color:#666;width:12em}
.error{background:#fde8e8;border-left:4px solid #c62828;padding:.6em .8em;margin:1em 0}
.band{display:flex;height:2.2em;border-radius:4px;overflow:hidden;margin:.3em 0 1em}
.band div{color:#fff;font-size:.8em;padding:.2em .4em;overflow:hidden;white-space:nowrap;min-width:3px;border-right:1px solid #fff}
.s-ok{background:#2e7d32}.s-ready{background:#1565c0}.s-busy{background:#ef8f00}
.s-bad{background:#c62828}.s-idle{background:#757575}
.run{border:1px solid #ddd;border-radius:4px;padding:.6em 1em;margin:.8em 0}
.run h3{font-size:1em;margin:.2em 0 .5em}
.tag{display:inline-block;font-size:.75em;padding:0 .4em;border-radius:3px;background:#e3e3e3;margin-right:.4em}
tr.ERROR td{background:#fde8e8} tr.WARNING td{background:#fff6e0}
";

/// The colour family of a provision or power state.
fn family(state: &str) -> &'static str {
    match state {
        "active" | "power on" => "s-ok",
        "available" => "s-ready",
        s if s.ends_with("failed") || s == "error" => "s-bad",
        "deploying" | "wait call-back" | "deleting" | "cleaning" | "clean wait" | "adopting"
        | "rebuild" | "deleted" | "inspecting" | "verifying" => "s-busy",
        _ => "s-idle",
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()
}

fn seconds(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.1} s")
    } else if s < 7200.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
        escape(title)
    )
}

/// A node of the index.
pub struct Listed<'a> {
    pub uuid: &'a str,
    pub name: Option<&'a str>,
    pub provision_state: Option<&'a str>,
    pub power_state: Option<&'a str>,
    pub maintenance: bool,
}

/// `/ui/`: the nodes, one page of them, and a link to the next.
pub fn index(nodes: &[Listed<'_>], next: Option<&str>) -> String {
    let mut b = String::from("<h1>Nodes</h1><p class=\"muted\">Each node's page shows its whole history as a timeline.</p>");
    b.push_str("<table><tr><th>Name</th><th>UUID</th><th>Provision state</th><th>Power state</th><th>Maintenance</th></tr>");
    for n in nodes {
        let state = n.provision_state.unwrap_or("None");
        let _ = write!(
            b,
            "<tr><td><a href=\"/ui/nodes/{uuid}\">{name}</a></td><td><code>{uuid}</code></td>\
             <td><span class=\"tag {fam}\" style=\"color:#fff\">{state}</span></td><td>{power}</td><td>{maint}</td></tr>",
            uuid = escape(n.uuid),
            name = shown(n.name.unwrap_or("(no name)")),
            fam = family(state),
            state = escape(state),
            power = escape(n.power_state.unwrap_or("None")),
            maint = if n.maintenance { "yes" } else { "no" },
        );
    }
    b.push_str("</table>");
    if nodes.is_empty() {
        b.push_str("<p>No nodes are enrolled.</p>");
    }
    if let Some(next) = next {
        let _ = write!(b, "<p><a href=\"{}\">Next page</a></p>", escape(next));
    }
    page("ironledger: nodes", &b)
}

/// What the page says of the node now (`None`: it was deleted).
pub struct Now<'a> {
    pub name: Option<&'a str>,
    pub driver: &'a str,
    pub provision_state: Option<&'a str>,
    pub target_provision_state: Option<&'a str>,
    pub power_state: Option<&'a str>,
    pub maintenance: Option<&'a str>,
    pub last_error: Option<&'a str>,
}

fn band_row(label: &str, bands: &[Band], now: DateTime<Utc>) -> String {
    if bands.is_empty() {
        return format!("<h2>{label}</h2><p class=\"muted\">Not known yet.</p>");
    }
    let total: f64 = bands.iter().map(|b| b.seconds(now)).sum::<f64>().max(0.001);
    let mut out = format!(
        "<h2>{label}</h2><div class=\"band\" data-band=\"{}\">",
        escape(label)
    );
    for b in bands {
        let share = (b.seconds(now) / total * 100.0).max(0.5);
        let until = b.to.map_or("now".to_string(), at);
        let _ = write!(
            out,
            "<div class=\"{fam}\" style=\"flex:{share:.3} 0 0\" title=\"{state}: {from} to {until} ({took})\">{state}</div>",
            fam = family(&b.state),
            state = escape(&b.state),
            from = at(b.from),
            took = seconds(b.seconds(now)),
        );
    }
    out.push_str("</div>");
    out
}

fn run_box(r: &Run) -> String {
    let took = r
        .end
        .map(|e| {
            format!(
                " in {}",
                seconds(((e - r.start).num_milliseconds()) as f64 / 1000.0)
            )
        })
        .unwrap_or_default();
    let mut out = format!(
        "<div class=\"run\" data-run=\"{kind}\"><h3>{kind} {outcome}{took}</h3>\
         <p class=\"muted\">Started {start} by {user}{request}.</p><table>",
        kind = r.kind,
        outcome = r.outcome,
        start = at(r.start),
        user = shown(r.user.as_deref().unwrap_or("unknown")),
        request = r
            .request_id
            .as_deref()
            .map(|id| format!(", request <code>{}</code>", escape(id)))
            .unwrap_or_default(),
    );
    for s in &r.steps {
        let _ = write!(
            out,
            "<tr class=\"{sev}\"><td>+{off}</td><td>{tag}{text}</td></tr>",
            sev = escape(&s.severity),
            off = seconds(s.offset),
            tag = s
                .via
                .map(|v| format!("<span class=\"tag\">{v}</span>"))
                .unwrap_or_default(),
            text = shown(&s.text),
        );
    }
    out.push_str("</table></div>");
    out
}

/// `/ui/nodes/{node}`: the node now, its state bands, its deploys and
/// undeploys, and every entry of its history.
pub fn node(uuid: &str, now_state: Option<&Now<'_>>, entries: &[Value]) -> String {
    let now = Utc::now();
    let title = now_state
        .and_then(|n| n.name)
        .map_or_else(|| uuid.to_string(), String::from);
    let mut b = format!(
        "<p><a href=\"/ui/\">All nodes</a></p><h1>{}</h1><p class=\"muted\"><code>{}</code></p>",
        shown(&title),
        escape(uuid)
    );
    match now_state {
        None => b.push_str("<p class=\"error\">This node was deleted; its history is kept.</p>"),
        Some(n) => {
            let row = |k: &str, v: &str| format!("<tr><td>{k}</td><td>{}</td></tr>", shown(v));
            b.push_str("<table class=\"facts\">");
            b.push_str(&row("Driver", n.driver));
            let mut state = n.provision_state.unwrap_or("None").to_string();
            if let Some(t) = n.target_provision_state {
                state.push_str(&format!(" (moving to {t})"));
            }
            b.push_str(&row("Provision state", &state));
            b.push_str(&row("Power state", n.power_state.unwrap_or("None")));
            b.push_str(&row(
                "Maintenance",
                &n.maintenance
                    .map_or("no".to_string(), |r| format!("yes: {r}")),
            ));
            b.push_str("</table>");
            if let Some(e) = n.last_error {
                let _ = write!(
                    b,
                    "<div class=\"error\" id=\"last-error\"><b>Last error:</b> {}</div>",
                    shown(e)
                );
            }
        }
    }
    b.push_str(&band_row(
        "Provision state over time",
        &bands(entries, "state"),
        now,
    ));
    b.push_str(&band_row(
        "Power state over time",
        &bands(entries, "power_state"),
        now,
    ));
    let runs = runs(entries);
    b.push_str("<h2>Deploys and undeploys</h2>");
    if runs.is_empty() {
        b.push_str("<p class=\"muted\">None yet.</p>");
    }
    for r in runs.iter().rev() {
        b.push_str(&run_box(r));
    }
    let _ = write!(
        b,
        "<h2>History ({} events)</h2><table id=\"history\"><tr><th>Time</th><th>Event</th>\
         <th>Who</th><th>Why</th><th>Provision state</th><th>Request</th></tr>",
        entries.len()
    );
    for e in entries.iter().rev() {
        let text = |k: &str| e[k].as_str().unwrap_or_default();
        let when = time_of(e).map(at).unwrap_or_default();
        let tag = super::timeline::via(text("event_name"))
            .map(|v| format!("<span class=\"tag\">{v}</span>"))
            .unwrap_or_default();
        let _ = write!(
            b,
            "<tr class=\"{sev}\"><td>{when}</td><td>{tag}{event}</td><td>{user}</td><td>{reason}</td>\
             <td>{state}</td><td><code>{req}</code></td></tr>",
            sev = escape(text("severity")),
            event = shown(text("event")),
            user = shown(text("user")),
            reason = shown(text("reason")),
            state = escape(text("state")),
            req = escape(text("request_id")),
        );
    }
    b.push_str("</table>");
    page(&format!("ironledger: {title}"), &b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_from_the_log_is_escaped_and_its_secrets_masked() {
        assert_eq!(shown("<b>&"), "&lt;b&gt;&amp;");
        let s = shown("failed: password=hunter2 at <x>");
        assert!(
            !s.contains("hunter2") && s.contains("******") && s.contains("&lt;x&gt;"),
            "{s}"
        );
    }

    #[test]
    fn a_deleted_node_still_shows_its_history() {
        let entries = vec![
            json!({"created_at": "2026-12-01T10:00:00+00:00", "event_name": "NodeDeleted",
                                  "event": "Node deleted.", "severity": "INFO", "state": "available"}),
        ];
        let html = node("u-1", None, &entries);
        assert!(html.contains("was deleted") && html.contains("Node deleted."));
    }
}
