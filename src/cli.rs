//! Command line: `dust-mcp serve` runs the server; `dust-mcp token new NAME` mints a token,
//! `token list` shows the users and their OAuth grants, `token revoke NAME` ends those grants.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

/// dust-mcp: Dust agents and personal health data for Claude, as a remote MCP server.
#[derive(Debug, Parser)]
#[command(name = "dust-mcp", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run the Dust simulator alone (for load tests and manual experiments); knobs can be
    /// changed at run time with `POST /_sim/knobs`.
    Simulate(SimulateArgs),
}

/// Flags of `simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Address to listen on (loopback only).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub bind: SocketAddr,
    /// Knobs as JSON, e.g. '{"stamp_tokens":true,"token_interval_ms":20}'.
    #[arg(long, value_name = "JSON")]
    pub knobs: Option<String>,
    /// HTTP worker threads.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
}

/// Flags of `serve`; each overrides the config file and the environment.
#[derive(Debug, clap::Args, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// TOML config file [env: DUST_MCP_CONFIG].
    #[arg(long, value_name = "FILE", env = "DUST_MCP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Public base URL, e.g. https://mcp.example.com.
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Serve every request as one local user, without tokens (loopback binds only).
    #[arg(long)]
    pub no_auth: bool,
    /// Register the official conformance suite's fixture tools, resources and prompts.
    #[arg(long)]
    pub conformance_fixtures: bool,
    /// Log format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Dust base URL: https://dust.tt, https://eu.dust.tt, or a local simulator
    /// [env: DUST_BASE_URL].
    #[arg(long, value_name = "URL")]
    pub dust_url: Option<String>,
    /// Extra accepted Host names (repeatable).
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a fresh token and the config lines that let it in.
    New {
        /// The user's name (use "admin" for the admin token).
        name: String,
    },
    /// List the configured users (names only) with their active OAuth grants.
    List(StoreArgs),
    /// Revoke every OAuth grant of a user (connected apps must sign in again). Their personal
    /// access token stays valid until its [[users]] entry is removed from the config.
    Revoke {
        /// The user's name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where `token list|revoke` find the users and the database.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// TOML config file [env: DUST_MCP_CONFIG].
    #[arg(long, value_name = "FILE", env = "DUST_MCP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory [default: the config's, else ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl ServeArgs {
    /// Applies the flags on top of a loaded config.
    pub fn apply(&self, config: &mut Config) {
        if let Some(b) = self.bind {
            config.bind = b;
        }
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(u) = &self.public_url {
            config.public_url = Some(u.clone());
        }
        if self.no_auth {
            config.no_auth = true;
        }
        if self.conformance_fixtures {
            config.conformance_fixtures = true;
        }
        if let Some(u) = &self.dust_url {
            config.dust.base_url = u.clone();
        }
        if let Some(f) = self.log_format {
            config.log_format = f;
        }
        config
            .http
            .allowed_hosts
            .extend(self.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
    }
}
