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

/// See the workspace `Cargo.toml`: the allocator is a measured choice, not a default.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// `EX_USAGE`: a bad command line or configuration.
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Token(TokenCommand::New { name }) => {
            print_new_token(&name);
            ExitCode::SUCCESS
        }
        Command::Token(TokenCommand::List(store)) => match token_list(&store) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dust-mcp: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Token(TokenCommand::Revoke { name, store }) => match token_revoke(&name, &store) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dust-mcp: {e}");
                ExitCode::from(EXIT_USAGE)
            }
        },
        Command::Simulate(args) => {
            telemetry::init(dust_mcp::config::LogFormat::Human, "info");
            match actix_rt::System::new().block_on(simulate(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
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
    // Install the handlers before the server announces itself, so a SIGTERM sent right after
    // the "listening" line is a graceful stop and not the default kill.
    let shutdown = ShutdownSignal::install();
    let running = server::start(config).await?;
    shutdown.wait().await;
    running.shutdown().await;
    Ok(())
}

async fn simulate(args: dust_mcp::cli::SimulateArgs) -> Result<(), String> {
    use dust_mcp::simulator::{Knobs, SimConfig, Simulator};
    if !args.bind.ip().is_loopback() {
        return Err(format!(
            "the simulator binds loopback addresses only, not {}",
            args.bind
        ));
    }
    let knobs: Knobs = match &args.knobs {
        Some(j) => {
            serde_json::from_str(j).map_err(|e| format!("--knobs is not valid knob JSON: {e}"))?
        }
        None => Knobs::default(),
    };
    let config = SimConfig {
        bind: args.bind,
        workers: args.workers.max(1),
        knobs,
        ..SimConfig::default()
    };
    let shutdown = ShutdownSignal::install();
    let sim = Simulator::start(config)
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    // One machine-readable line for scripts, then the human one.
    println!(
        "DUST_BASE_URL={} DUST_API_KEY={} DUST_WORKSPACE_ID={}",
        sim.url(),
        sim.api_key(),
        sim.workspace_id()
    );
    tracing::info!(url = %sim.url(), "Dust simulator running; POST /_sim/knobs to change its behaviour");
    shutdown.wait().await;
    sim.stop().await;
    Ok(())
}

/// SIGTERM or SIGINT (Ctrl-C elsewhere), installed once at start.
struct ShutdownSignal {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignal {
    fn install() -> ShutdownSignal {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            ShutdownSignal {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        ShutdownSignal {}
    }

    async fn wait(self) {
        #[cfg(unix)]
        {
            let (mut term, mut int) = (self.term, self.int);
            let term_recv = async {
                match term.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let int_recv = async {
                match int.as_mut() {
                    Some(s) => s.recv().await,
                    None => tokio::signal::ctrl_c().await.ok(),
                }
            };
            tokio::select! {
                _ = term_recv => tracing::info!("SIGTERM received"),
                _ = int_recv => tracing::info!("SIGINT received"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The config and the OAuth store that `token list|revoke` work on.
fn open_store(
    args: &dust_mcp::cli::StoreArgs,
) -> Result<(Config, actors::store::oauth::OAuthStore), String> {
    let mut config =
        Config::load(args.config.as_deref(), std::env::vars()).map_err(|e| e.to_string())?;
    if let Some(d) = &args.data_dir {
        config.data_dir = d.clone();
    }
    let db = config.data_dir.join(actors::store::DB_FILE_NAME);
    let store = actors::store::oauth::OAuthStore::open(&db).map_err(|e| e.to_string())?;
    Ok((config, store))
}

fn token_list(args: &dust_mcp::cli::StoreArgs) -> Result<(), String> {
    let (config, mut store) = open_store(args)?;
    let grants = store.active_grants().map_err(|e| e.to_string())?;
    if config.users.is_empty() {
        println!("no [[users]] configured (add one with `dust-mcp token new NAME`)");
    }
    for u in &config.users {
        let active = grants
            .iter()
            .find(|g| g.user == u.name)
            .map_or(0, |g| g.active);
        println!("{}\t{active} active OAuth grant(s)", u.name);
    }
    for g in grants
        .iter()
        .filter(|g| !config.users.iter().any(|u| u.name == g.user))
    {
        println!(
            "{}\t{} grant(s) of a user no longer configured (refused)",
            g.user, g.active
        );
    }
    Ok(())
}

fn token_revoke(name: &str, args: &dust_mcp::cli::StoreArgs) -> Result<(), String> {
    let (config, mut store) = open_store(args)?;
    let n = store.revoke_user(name).map_err(|e| e.to_string())?;
    println!("revoked {n} OAuth grant(s) of {name}; connected apps must sign in again");
    if config.users.iter().any(|u| u.name == name) {
        println!(
            "{name}'s personal access token still works: remove their [[users]] entry from the config and restart to end it"
        );
    }
    Ok(())
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
