//! `ironledger serve`.

use super::anyhow_free::Result;
use super::GlobalArgs;
use crate::domain::NodeServices;
use crate::engine::Engine;
use crate::http::{router, AppState};
use clap::Args;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen on this port instead of [api] port (0 picks a free one; the
    /// address is printed on stdout).
    #[arg(long)]
    pub port: Option<u16>,
}

/// How often the background task looks for events other processes wrote.
const POLL: Duration = Duration::from_millis(200);

pub async fn run(global: &GlobalArgs, args: ServeArgs) -> Result<()> {
    let config = global.config()?;
    tracing::info!(database = %config.database, "opening event store");
    if let crate::store::DatabaseUrl::Sqlite(path) = &config.database {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let engine = Arc::new(
        Engine::open(
            &config.database,
            NodeServices {
                catalog: config.catalog.clone(),
            },
        )
        .await?,
    );
    let applied = engine.projector().catch_up().await?;
    tracing::info!(applied, "projections caught up");

    // Keep read models current with events written by other processes.
    let follower = engine.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(POLL).await;
            if let Err(e) = follower.projector().catch_up().await {
                tracing::error!(error = %e, "projection catch-up failed");
            }
        }
    });

    let addr = SocketAddr::new(config.api.host_ip, args.port.unwrap_or(config.api.port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("ironledger listening on http://{local}");
    tracing::info!(%local, store = engine.store().backend(), "serving");
    let state = AppState {
        engine,
        config: Arc::new(config),
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
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
