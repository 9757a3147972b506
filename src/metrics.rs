//! What ironledger counts for Prometheus (`GET /metrics`).
//!
//! Two kinds of figures, kept apart on purpose:
//!
//! - **Counters and histograms of this process** (HTTP requests, commands,
//!   events appended, Cinder and BMC calls, store errors, the process
//!   manager's retries and failures): bumped where the thing happens, in one
//!   process-wide [`Metrics`]. With several ironledger processes on one
//!   database each one counts what it did; Prometheus sums them.
//! - **Readings of the shared store** (each projection's checkpoint and lag,
//!   the head of the feed, nodes by provision state): taken at scrape time
//!   by [`Metrics::read_store`]: a handful of queries that cost the number
//!   of projections, not of events, and one grouped scan of the nodes'
//!   provision-state index, which grows with the fleet (measured in
//!   `docs/performance.md`; a counter row kept by every write would be a hot
//!   row for all writers instead).
//!
//! Label values come from fixed sets (route templates, not paths; command and
//! action names, not arguments), so the number of series stays bounded
//! whatever the clients send. No label holds a secret or a node's name.

use crate::domain::state::ProvisionState;
use crate::store::{LogStore, StoreError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::OnceLock;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabels {
    pub aggregate: String,
    pub command: String,
    /// `ok`, `refused` (the domain said no: 4xx), `conflict` (lost races or
    /// a taken name: 409), `error` (the store failed).
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandTypeLabels {
    pub aggregate: String,
    pub command: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `cinder`, `redfish` or `ipmi`.
    pub service: &'static str,
    pub action: String,
    /// `ok` or `error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceActionLabels {
    pub service: &'static str,
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProjectionLabels {
    pub projection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProjectionStateLabels {
    pub projection: String,
    /// `inline` (written with every command), `caught_up`, `catching_up` or
    /// `failed` (holds events it could not apply).
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProvisionLabels {
    pub provision_state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

type Timings<L> = Family<L, Histogram, fn() -> Histogram>;

/// Latency buckets from 1 ms to about 65 s (doubling): an API read is a few
/// ms, a Cinder attach or a BMC power change tens of seconds.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every figure ironledger exports; one per process ([`metrics`]).
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Timings<RouteLabels>,
    commands: Family<CommandLabels, Counter>,
    command_seconds: Timings<CommandTypeLabels>,
    events_appended: Counter,
    appended_lock: std::sync::Mutex<()>,
    calls: Family<CallLabels, Counter>,
    call_seconds: Timings<ServiceActionLabels>,
    store_errors: Family<KindLabels, Counter>,
    pm_in_work: Gauge,
    pm_backing_off: Gauge,
    pm_retries: Counter,
    pm_failures: Family<KindLabels, Counter>,
    pm_backoff_seconds: Gauge<f64, AtomicU64>,
    feed_head: Gauge,
    store_up: Gauge,
    projection_checkpoint: Family<ProjectionLabels, Gauge>,
    projection_lag_events: Family<ProjectionLabels, Gauge>,
    projection_lag_seconds: Family<ProjectionLabels, Gauge<f64, AtomicU64>>,
    projection_state: Family<ProjectionStateLabels, Gauge>,
    nodes: Family<ProvisionLabels, Gauge>,
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("ironledger"),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(latency),
            commands: Family::default(),
            command_seconds: Family::new_with_constructor(latency),
            events_appended: Counter::default(),
            appended_lock: std::sync::Mutex::new(()),
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(latency),
            store_errors: Family::default(),
            pm_in_work: Gauge::default(),
            pm_backing_off: Gauge::default(),
            pm_retries: Counter::default(),
            pm_failures: Family::default(),
            pm_backoff_seconds: Gauge::default(),
            feed_head: Gauge::default(),
            store_up: Gauge::default(),
            projection_checkpoint: Family::default(),
            projection_lag_events: Family::default(),
            projection_lag_seconds: Family::default(),
            projection_state: Family::default(),
            nodes: Family::default(),
        };
        let r = &mut m.registry;
        r.register(
            "http_requests",
            "API requests answered, by route template, method and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time to answer an API request, by route template and method",
            m.http_seconds.clone(),
        );
        r.register(
            "commands",
            "Commands run on aggregates, by aggregate, command and outcome (ok, refused, conflict, error)",
            m.commands.clone(),
        );
        r.register(
            "command_duration_seconds",
            "Time to decide and append a command (retries of lost races included)",
            m.command_seconds.clone(),
        );
        r.register(
            "events_appended",
            "Events this process appended to the log",
            m.events_appended.clone(),
        );
        r.register(
            "external_calls",
            "Calls to Cinder and to BMCs, by service, action and outcome",
            m.calls.clone(),
        );
        r.register(
            "external_call_duration_seconds",
            "Time of a call to Cinder or a BMC, by service and action",
            m.call_seconds.clone(),
        );
        r.register(
            "store_errors",
            "Store failures seen by commands and background work, by kind",
            m.store_errors.clone(),
        );
        r.register(
            "process_manager_nodes_in_work",
            "Nodes this process's process manager is working on now",
            m.pm_in_work.clone(),
        );
        r.register(
            "process_manager_nodes_backing_off",
            "Nodes whose last try failed and that wait before the next",
            m.pm_backing_off.clone(),
        );
        r.register(
            "process_manager_retries",
            "Steps retried after a transient failure (Cinder away, a 5xx)",
            m.pm_retries.clone(),
        );
        r.register(
            "process_manager_failures",
            "Deploys, undeploys and adoptions failed by the process manager, by kind",
            m.pm_failures.clone(),
        );
        r.register(
            "process_manager_longest_backoff_seconds",
            "The longest wait a backing-off node has before its next try",
            m.pm_backoff_seconds.clone(),
        );
        r.register(
            "store_up",
            "1 when the last scrape could read the store, 0 when it could not",
            m.store_up.clone(),
        );
        r.register(
            "feed_head",
            "The highest position given to an event in the log",
            m.feed_head.clone(),
        );
        r.register(
            "projection_checkpoint",
            "The position each projection has applied up to",
            m.projection_checkpoint.clone(),
        );
        r.register(
            "projection_lag_events",
            "Events in the log a projection has not applied yet",
            m.projection_lag_events.clone(),
        );
        r.register(
            "projection_lag_seconds",
            "How long the oldest event a projection has not applied has waited",
            m.projection_lag_seconds.clone(),
        );
        r.register(
            "projection_state",
            "1 for each projection's state (inline, caught_up, catching_up, failed), 0 for the others",
            m.projection_state.clone(),
        );
        r.register("nodes", "Nodes by provision state", m.nodes.clone());
        m
    }

    /// One answered API request.
    pub fn http(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels {
                route: route.to_string(),
                method: method.to_string(),
                status,
            })
            .inc();
        self.http_seconds
            .get_or_create(&RouteLabels {
                route: route.to_string(),
                method: method.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// One command run by the engine.
    pub fn command(&self, aggregate: &str, command: &str, outcome: &'static str, took: Duration) {
        self.commands
            .get_or_create(&CommandLabels {
                aggregate: aggregate.to_string(),
                command: command.to_string(),
                outcome,
            })
            .inc();
        self.command_seconds
            .get_or_create(&CommandTypeLabels {
                aggregate: aggregate.to_string(),
                command: command.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The engine's count of events appended so far (a total that only
    /// grows): the counter catches up with it.
    pub fn events_appended(&self, total: u64) {
        let _one = self.appended_lock.lock().expect("appended");
        let now = self.events_appended.get();
        if total > now {
            self.events_appended.inc_by(total - now);
        }
    }

    /// One call to Cinder (`service` = `cinder`) or a BMC (`redfish`, `ipmi`).
    pub fn call(&self, service: &'static str, action: &str, ok: bool, took: Duration) {
        self.calls
            .get_or_create(&CallLabels {
                service,
                action: action.to_string(),
                outcome: if ok { "ok" } else { "error" },
            })
            .inc();
        self.call_seconds
            .get_or_create(&ServiceActionLabels {
                service,
                action: action.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// A store failure: `kind` is [`StoreError::kind`], or `projector`
    /// for a round of the projector's worker that failed.
    pub fn store_error(&self, kind: &'static str) {
        self.store_errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// The process manager's nodes now: in work, backing off, and the
    /// longest back-off.
    pub fn process_manager(&self, in_work: usize, backing_off: usize, longest: Duration) {
        self.pm_in_work.set(in_work as i64);
        self.pm_backing_off.set(backing_off as i64);
        self.pm_backoff_seconds.set(longest.as_secs_f64());
    }

    pub fn pm_retry(&self) {
        self.pm_retries.inc();
    }

    /// A deploy (`deploy`), undeploy (`undeploy`) or adoption (`adopt`)
    /// failed by the process manager.
    pub fn pm_failure(&self, kind: &'static str) {
        self.pm_failures.get_or_create(&KindLabels { kind }).inc();
    }

    /// Reads what the shared store holds now: the head, every projection's
    /// checkpoint, lag and state, and the nodes by provision state.
    /// `projections` are the names of the read models and feed consumers.
    pub async fn read_store(
        &self,
        store: &dyn LogStore,
        projections: &[&str],
    ) -> Result<(), StoreError> {
        store.sequence().await?;
        let head = store.head().await?;
        self.feed_head.set(head as i64);
        let checkpoints = store.checkpoints(projections).await?;
        let failed: std::collections::BTreeSet<String> = store
            .failures(projections)
            .await?
            .into_iter()
            .map(|f| f.model)
            .collect();
        let now = chrono::Utc::now();
        for (name, raw) in projections.iter().zip(checkpoints) {
            let label = ProjectionLabels {
                projection: name.to_string(),
            };
            let at = if crate::store::is_inline(raw) {
                head
            } else {
                raw
            };
            self.projection_checkpoint
                .get_or_create(&label)
                .set(at as i64);
            let behind = head.saturating_sub(at);
            self.projection_lag_events
                .get_or_create(&label)
                .set(behind as i64);
            let waited = if behind == 0 {
                0.0
            } else {
                match store.read_feed(at, 1).await?.first() {
                    Some(oldest) => {
                        (now - oldest.recorded_at).num_milliseconds().max(0) as f64 / 1e3
                    }
                    None => 0.0,
                }
            };
            self.projection_lag_seconds
                .get_or_create(&label)
                .set(waited);
            let state = if failed.contains(*name) {
                "failed"
            } else if crate::store::is_inline(raw) {
                "inline"
            } else if behind == 0 {
                "caught_up"
            } else {
                "catching_up"
            };
            for s in ["inline", "caught_up", "catching_up", "failed"] {
                self.projection_state
                    .get_or_create(&ProjectionStateLabels {
                        projection: name.to_string(),
                        state: s,
                    })
                    .set(i64::from(s == state));
            }
        }
        let counts = store
            .count_by(crate::projections::nodes::MODEL, "provision_state")
            .await?;
        // Every state, so that a state nodes have left reads 0 (a series
        // that vanishes would keep its last value in Prometheus's eyes).
        for state in ProvisionState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| s.as_deref() == Some(state.as_str()))
                .map_or(0, |(_, n)| *n);
            self.nodes
                .get_or_create(&ProvisionLabels {
                    provision_state: state.as_str().to_string(),
                })
                .set(n as i64);
        }
        Ok(())
    }

    pub fn store_up(&self, up: bool) {
        self.store_up.set(i64::from(up));
    }

    /// The Prometheus text exposition of every figure.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
