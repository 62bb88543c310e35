//! The `dust-mcp` binary: parse the command line, load the config, run.

use std::process::ExitCode;

use clap::Parser;
use dust_mcp::{
    cli::{Cli, Command, TokenCommand},
    config::Config,
    edge::auth::token_hash,
    server, telemetry,
};
use rand::RngCore;

/// `EX_USAGE`: a bad command line or configuration.
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Token(TokenCommand::New { name }) => {
            print_new_token(&name);
            ExitCode::SUCCESS
        }
        Command::Serve(args) => {
            let mut config = match Config::load(args.config.as_deref(), std::env::vars()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("dust-mcp: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            args.apply(&mut config);
            telemetry::init(config.log_format, &config.log_filter);
            if let Err(e) = config.validate() {
                tracing::error!("{e}");
                return ExitCode::from(EXIT_USAGE);
            }
            match actix_rt::System::new().block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn serve(config: Config) -> Result<(), server::StartError> {
    let running = server::start(config).await?;
    wait_for_signal().await;
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => tracing::info!("SIGINT received"),
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn print_new_token(name: &str) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("dmcp_{}", hex::encode(bytes));
    let hash = hex::encode(token_hash(&token));
    println!("token for {name} (shown once; give it to them, keep only the hash):\n  {token}\n");
    if name == "admin" {
        println!("add to the config file:\n  admin_token_sha256 = \"{hash}\"");
    } else {
        println!("add to the config file:\n  [[users]]\n  name = \"{name}\"\n  token_sha256 = \"{hash}\"");
    }
}
