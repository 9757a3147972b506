use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ironledger::telemetry::init();
    let cli = ironledger::cli::Cli::parse();
    match ironledger::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ironledger: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
