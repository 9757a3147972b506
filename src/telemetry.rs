//! Logging: structured `tracing` output, filtered by `RUST_LOG` (default
//! `info`), written to stderr so stdout stays for command output.
//!
//! Every line carries the spans it was logged in: the API request
//! (`request{method, route, request_id, node}`), the command it runs
//! (`command{aggregate, node, command}`) and the process manager's work on a
//! node (`work{node, state, request_id}`, the id of the request that asked
//! for it) and the step of that work (`step{step}`: "Attaching volumes",
//! "power on", …), so a deploy's lines can be found by node or by request
//! id.
//!
//! Text by default; JSON, one object per line, with `[DEFAULT] use_json =
//! true` (oslo.log's option): the switch happens once the configuration is
//! read, so lines logged while reading it are text.
//!
//! Secrets never reach a log line: the database URL is logged masked, target
//! properties are never logged at all, and span fields hold names and ids
//! only (commands are named by their variant, never their arguments).

use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

type Output = Box<dyn Layer<Registry> + Send + Sync>;

static OUTPUT: OnceLock<reload::Handle<Output, Registry>> = OnceLock::new();

fn text() -> Output {
    tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(std::io::stderr)
        .boxed()
}

fn json() -> Output {
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_target(false)
        .with_writer(std::io::stderr)
        .boxed()
}

/// Installs the global subscriber once; later calls are no-ops (tests call it
/// from many places).
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let (output, handle) = reload::Layer::new(text());
    if tracing_subscriber::registry()
        .with(output)
        .with(filter)
        .try_init()
        .is_ok()
    {
        let _ = OUTPUT.set(handle);
    }
}

/// Switches the output to JSON lines (`json`) or text; a no-op when another
/// subscriber than [`init`]'s is installed.
pub fn use_json(json_lines: bool) {
    if let Some(handle) = OUTPUT.get() {
        let _ = handle.reload(if json_lines { json() } else { text() });
    }
}

/// A duration as milliseconds to the microsecond, for log fields (`ms=12.297`
/// rather than `ms=12.297001999999999`).
pub fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
