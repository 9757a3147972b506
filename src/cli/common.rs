//! What the audit and replay commands share: opening the store `serve` uses,
//! naming nodes, reading times and positions, output formats, progress bars.

use super::anyhow_free::Result;
use super::GlobalArgs;
use crate::domain::{Node, NodeEvent};
use crate::store::{DatabaseUrl, LogStore, RecordedEvent};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;
use std::time::Duration;

/// How a command prints what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    Table,
    /// One JSON object per line (JSON lines), for tools.
    Json,
}

/// Opens the store the configuration names (the one `serve` uses). With
/// `must_exist`, a SQLite file that is not there is an error rather than a
/// new, empty database.
pub async fn open_store(global: &GlobalArgs, must_exist: bool) -> Result<Arc<dyn LogStore>> {
    let config = global.config()?;
    if let DatabaseUrl::Sqlite(path) = &config.database {
        if must_exist && !path.exists() {
            return Err(format!(
                "no ironledger database at {} (give --database-url or --data-dir)",
                path.display()
            )
            .into());
        }
    }
    let store = crate::store::open(&config.database).await?.store;
    // Number what is committed (PostgreSQL numbers events after commit, and
    // commands do not wait for it), so the tools read the whole log. An older
    // transaction still open anywhere holds numbering back: wait a little for
    // it, then go on with what has a position.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while store.sequence_report().await?.waiting {
        if std::time::Instant::now() >= deadline {
            tracing::warn!("committed events still wait for a position (an older transaction is open); reading without them");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(store)
}

/// The UUID of the node `ident` names: a UUID as is, otherwise a node name —
/// the current holder of the name, or else the last node the log shows with
/// that name (a deleted node keeps its history).
pub async fn resolve_node(store: &dyn LogStore, ident: &str) -> Result<String> {
    if let Ok(u) = uuid::Uuid::parse_str(ident) {
        return Ok(u.to_string());
    }
    if let Some(owner) = store.claim_owner("node_name", ident).await? {
        return Ok(owner);
    }
    let mut found = None;
    let mut after = 0;
    loop {
        let page = store.read_feed(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for e in page
            .iter()
            .filter(|e| e.event_type == "NodeEnrolled" || e.event_type == "NodeRenamed")
        {
            let name = match node_event(e) {
                Some(NodeEvent::NodeEnrolled(n)) => n.name,
                Some(NodeEvent::NodeRenamed { to, .. }) => to,
                _ => None,
            };
            if name.as_deref() == Some(ident) {
                found = Some(e.aggregate_id.clone());
            }
        }
    }
    found.ok_or_else(|| format!("no node is or was named {ident:?}").into())
}

/// A node event of the feed, upcast to the current schema (`None` for other
/// aggregates' events and undecodable ones).
pub fn node_event(e: &RecordedEvent) -> Option<NodeEvent> {
    if e.aggregate_type != "Node" {
        return None;
    }
    crate::domain::upcast::node_event(&e.event_type, &e.event_version, &e.payload).ok()
}

/// A node folded from its recorded events (those `include` keeps), with the
/// last one folded (`None`: no event kept).
pub fn fold_node<'a>(
    id: &str,
    events: &'a [RecordedEvent],
    include: impl Fn(&RecordedEvent) -> bool,
) -> Result<(Node, Option<&'a RecordedEvent>)> {
    use cqrs_es::Aggregate;
    let mut node = Node::default();
    let mut last = None;
    for e in events.iter().filter(|e| include(e)) {
        let ev = node_event(e)
            .ok_or_else(|| format!("cannot decode event {} of node {id}", e.position))?;
        node.apply(ev);
        last = Some(e);
    }
    Ok((node, last))
}

/// Reads a time: RFC 3339 (`2026-11-25T10:00:00Z`, any offset), or UTC as
/// `2026-11-25 10:00:00[.ffffff]`, `2026-11-25T10:00:00` or a date
/// (`2026-11-25`, midnight UTC).
pub fn parse_time(text: &str) -> std::result::Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, f) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    Err(format!(
        "{text:?} is not a time (use RFC 3339, e.g. 2026-11-25T10:00:00Z, or 2026-11-25 10:00:00 in UTC)"
    ))
}

/// A moment of the log: a position, or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Position(u64),
    Time(DateTime<Utc>),
}

impl Moment {
    /// Whether an event had happened at this moment.
    pub fn includes(&self, e: &RecordedEvent) -> bool {
        match self {
            Moment::Position(p) => e.position <= *p,
            Moment::Time(t) => e.recorded_at <= *t,
        }
    }
}

impl std::fmt::Display for Moment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Moment::Position(p) => write!(f, "position {p}"),
            Moment::Time(t) => write!(f, "{}", time_text(t)),
        }
    }
}

/// Parses `--as-of`: digits are a position, anything else a time.
pub fn parse_moment(text: &str) -> std::result::Result<Moment, String> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        return t
            .parse()
            .map(Moment::Position)
            .map_err(|e| format!("{text:?}: {e}"));
    }
    parse_time(t).map(Moment::Time)
}

/// How times are printed: RFC 3339 UTC with microseconds.
pub fn time_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Who recorded an event (the metadata's `actor`).
pub fn actor(e: &RecordedEvent) -> String {
    e.metadata
        .get("actor")
        .and_then(|v| v.as_str())
        .unwrap_or("-")
        .to_string()
}

/// A node's provision state as text (`-` before enrolment and after deletion).
pub fn state_text(n: &Node) -> String {
    if !n.exists {
        return "-".into();
    }
    n.state().as_str().to_string()
}

/// A node's provision state with its target, if any: `deploying (target active)`.
pub fn state_with_target(n: &Node) -> String {
    let mut s = state_text(n);
    if let Some(t) = n.target_provision_state.filter(|_| n.exists) {
        s.push_str(&format!(" (target {})", t.as_str()));
    }
    s
}

/// Prints rows as aligned columns (the last column is not padded).
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.push_str(&" ".repeat(width[i] - c.chars().count() + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// A progress bar on stderr (drawn only when stderr is a terminal) counting
/// events, with their rate.
pub fn event_bar(len: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40.cyan/blue}] {pos}/{len} events, {rate} events/s, eta {eta}",
        )
        .expect("a valid template")
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}", state.per_sec());
            },
        )
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Events per second, for summaries.
pub fn rate(events: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 || events == 0 {
        return format!("{events} events");
    }
    format!(
        "{events} events in {secs:.2} s ({:.0} events/s)",
        events as f64 / secs
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_and_times_parse() {
        assert_eq!(parse_moment("42").unwrap(), Moment::Position(42));
        let t = parse_moment("2026-11-25T10:00:00Z").unwrap();
        assert_eq!(t, Moment::Time(parse_time("2026-11-25 10:00:00").unwrap()));
        assert_eq!(
            parse_time("2026-11-25").unwrap(),
            parse_time("2026-11-25T00:00:00+00:00").unwrap()
        );
        assert_eq!(
            parse_time("2026-11-25T12:00:00+02:00").unwrap(),
            parse_time("2026-11-25 10:00:00").unwrap()
        );
        assert!(parse_moment("yesterday").is_err());
    }
}
