//! `ironledger serve`.

use super::anyhow_free::Result;
use super::GlobalArgs;
use crate::domain::NodeServices;
use crate::effects::power_sync::{PowerSync, SyncConfig};
use crate::effects::process_manager::{PmConfig, ProcessManager};
use crate::engine::Engine;
use crate::http::{router, AppState};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on this port instead of [api] port (0 picks a free one; the
    /// address is printed on stdout).
    #[arg(long)]
    pub port: Option<u16>,
}

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> Result<()> {
    let config = global.config()?;
    crate::telemetry::use_json(config.use_json);
    // The events this process records name it as configured.
    crate::engine::set_host_name(&config.host);
    tracing::info!(database = %config.database, "opening event store");
    // Held until the process ends (the OS releases it even on SIGKILL).
    let _single_server = match &config.database {
        crate::store::DatabaseUrl::Sqlite(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            Some(lock_embedded_store(path)?)
        }
        _ => None,
    };
    // Secrets at rest: the master key from configuration (generated into the
    // data directory on first start), per-node data keys in the store.
    let master = config.secrets.master_key()?;
    let opened = crate::store::open(&config.database).await?;
    let keyring = crate::secrets::Keyring::new(master, opened.store.clone());
    tracing::info!(
        master_key = keyring.master().id(),
        "secrets are encrypted at rest"
    );
    let engine = Arc::new(Engine::with_keyring(
        opened,
        NodeServices {
            catalog: config.catalog.clone(),
        },
        keyring,
    ));
    // A read model that cannot catch up must not keep the service from
    // starting: what it can serve, it serves, and `/health` says it is stuck
    // (events it cannot apply are recorded and skipped; only a store that
    // does not answer ends up here, and the worker keeps trying).
    match engine.projector().catch_up().await {
        Ok(applied) => tracing::info!(applied, "projections caught up"),
        Err(e) => {
            tracing::error!(error = %e, "projections could not catch up; serving, see /health")
        }
    }

    // The projector's worker applies this process's commands at once and polls
    // for events other processes wrote (see `projections::Projector`). The
    // engine has started it already; this only makes that explicit.
    engine.projector().spawn_worker();

    // The process manager deploys and undeploys nodes (Cinder, iPXE scripts)
    // and carries out power requests of BMC nodes.
    let mut pm_config = PmConfig::new(config.http_root.clone(), config.cinder.clone());
    pm_config.lease_ttl = config.lease_ttl;
    pm_config.san_retries = config.san_boot_retries;
    pm_config.power_wait.timeout = config.power_state_change_timeout;
    ProcessManager::new(engine.clone(), pm_config)?.spawn();
    tracing::info!(http_root = %config.http_root.display(), cinder = config.cinder.is_some(), "process manager running");

    // Beside it, the periodic power-state sync of BMC nodes (Ironic's
    // `_sync_power_states` and `_power_failure_recovery`).
    let mut sync_config = SyncConfig::new(config.power_sync.clone());
    sync_config.lease_ttl = config.lease_ttl;
    sync_config.power_wait.timeout = config.power_state_change_timeout;
    PowerSync::new(engine.clone(), sync_config).spawn();
    tracing::info!(
        interval_s = config.power_sync.interval.map(|d| d.as_secs()),
        force = config.power_sync.force,
        max_retries = config.power_sync.max_retries,
        recovery_interval_s = config.power_sync.recovery_interval.map(|d| d.as_secs()),
        "power state sync {}",
        if config.power_sync.interval.is_some() {
            "running"
        } else {
            "disabled"
        }
    );

    let mut limits = config.api.limits.clone();
    match crate::http::server::raise_open_file_limit() {
        Ok(files) => {
            tracing::info!(
                soft_before = files.soft_before,
                soft = files.soft,
                hard = files.hard,
                "open-file limit"
            );
            let cap = crate::http::server::connections_within(limits.max_connections, files.soft);
            if cap < limits.max_connections {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    open_file_limit = files.soft,
                    serving = cap,
                    "[api] max_connections does not fit in the open-file limit: lowered"
                );
                limits.max_connections = cap;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }

    let addr = SocketAddr::new(config.api.host_ip, args.port.unwrap_or(config.api.port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("ironledger listening on http://{local}");
    tracing::info!(
        %local,
        store = engine.store().backend(),
        max_connections = limits.max_connections,
        idle_timeout = ?limits.idle_timeout,
        header_timeout = ?limits.header_timeout,
        body_timeout = ?limits.body_timeout,
        "serving"
    );
    let state = AppState {
        engine,
        config: Arc::new(config),
    };
    crate::http::server::serve(listener, router(state), limits, shutdown()).await?;
    Ok(())
}

/// One `serve` per SQLite file. The embedded store keeps node leases in the
/// process, so a second server on the same file would deploy the same nodes
/// twice (two Cinder attachments, racing script writes). Several servers need
/// PostgreSQL, whose leases live in the database.
fn lock_embedded_store(db: &std::path::Path) -> Result<std::fs::File> {
    let mut name = db.as_os_str().to_owned();
    name.push(".serve-lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another `ironledger serve` is running on {}: the embedded store takes one server; run several on PostgreSQL",
            db.display()
        )
        .into()),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
