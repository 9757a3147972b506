//! The `ironledger` command line.

mod common;
mod config;
mod events;
mod export;
mod failures;
mod history;
mod import;
mod leftovers;
mod plan;
mod rebuild;
mod serve;
mod show;
mod verify;

pub use export::Line as ExportLine;

use crate::config::{Config, Overrides};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// ironledger: an event-sourced engine for bare-metal nodes that boot from
/// remote (iSCSI) volumes, answering OpenStack Ironic's v1 API.
///
/// Every change to a node is recorded as an immutable event; read models are
/// built from the log. The store is chosen as Ironic chooses its database:
/// `[database] connection` in the file given with --config-file, overridden by
/// --database-url / DATABASE_URL; with neither, a SQLite file in the data
/// directory.
///
/// Besides `serve`, the audit and replay tools work on the same database (it
/// may be serving meanwhile): `events`, `history`, `show --as-of`, `rebuild`,
/// `verify`, `export`, `import`, `leftovers`, `failures`, `plan`, and `config`
/// (the configuration in effect). `ironledger <command> --help` explains each.
#[derive(Debug, Parser)]
#[command(name = "ironledger", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// An ironic.conf-style INI file; may be repeated (later files win).
    #[arg(long = "config-file", global = true, value_name = "PATH")]
    pub config_file: Vec<PathBuf>,

    /// The event store: postgresql://user@host/db (also postgresql+psycopg2://),
    /// sqlite:////absolute/path.db, or memory (nothing kept). Overrides
    /// [database] connection.
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Where the embedded store, the HTTP boot root and keys live
    /// (default: $XDG_DATA_HOME/ironledger or ~/.local/share/ironledger).
    #[arg(long, env = "IRONLEDGER_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl GlobalArgs {
    pub fn config(&self) -> anyhow_free::Result<Config> {
        let overrides = Overrides {
            config_files: self.config_file.clone(),
            database_url: self.database_url.clone(),
            data_dir: self.data_dir.clone(),
        };
        Ok(Config::load(&overrides)?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API server (Ironic v1 API on [api] host_ip:port, default
    /// 127.0.0.1:6385) with the projections and the deploy process manager.
    Serve(serve::ServeArgs),
    /// Create or upgrade the store's schema, then exit (serve does this too).
    Migrate,
    // The subcommands below take their help from their argument structs
    // (first paragraph: the summary in `ironledger --help`).
    Events(events::EventsArgs),
    History(history::HistoryArgs),
    Show(show::ShowArgs),
    Rebuild(rebuild::RebuildArgs),
    Verify(verify::VerifyArgs),
    Export(export::ExportArgs),
    Import(import::ImportArgs),
    Leftovers(leftovers::LeftoversArgs),
    Failures(failures::FailuresArgs),
    Plan(plan::PlanArgs),
    Config(config::ConfigArgs),
}

/// A tiny error type for the binary: any error, shown with its message.
pub mod anyhow_free {
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
    pub type Result<T> = std::result::Result<T, Error>;
}

/// Entry point of the binary.
pub async fn run(cli: Cli) -> anyhow_free::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(&cli.global, args).await,
        Command::Events(args) => events::run(&cli.global, args).await,
        Command::History(args) => history::run(&cli.global, args).await,
        Command::Show(args) => show::run(&cli.global, args).await,
        Command::Rebuild(args) => rebuild::run(&cli.global, args).await,
        Command::Verify(args) => verify::run(&cli.global, args).await,
        Command::Export(args) => export::run(&cli.global, args).await,
        Command::Import(args) => import::run(&cli.global, args).await,
        Command::Leftovers(args) => leftovers::run(&cli.global, args).await,
        Command::Failures(args) => failures::run(&cli.global, args).await,
        Command::Plan(args) => plan::run(&cli.global, args).await,
        Command::Config(args) => config::run(&cli.global, args).await,
        Command::Migrate => {
            let config = cli.global.config()?;
            let opened = crate::store::open(&config.database).await?;
            println!(
                "{} store at {} is up to date (head {})",
                opened.store.backend(),
                config.database,
                opened.store.head().await?
            );
            Ok(())
        }
    }
}
