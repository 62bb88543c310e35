//! dust-mcp: the HTTP edge and binary glue of a hosted, multi-user remote MCP server for Dust.tt
//! agents and personal health data.
//!
//! # Layout
//! - [`server`]: start (config checked, actors started, port bound) and graceful stop.
//! - [`app`]: shared state, routes, and the middleware stack.
//! - [`edge`]: `/mcp` (Streamable HTTP), header validators, SSE responses, authentication,
//!   admin routes, and the one place errors become responses.
//! - [`config`]: every setting and its default (TOML file, `DUST_MCP_*`, flags).
//! - [`simulator`]: a faithful Dust API simulator (demo mode, tests, load tests).
//! - [`cli`], [`telemetry`]: the command line and logging.
//!
//! The actors (sessions, registry) live in the `actors` crate; this crate only knows their
//! handles. Start reading at `edge/mcp.rs`.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod app;
pub mod cli;
pub mod config;
pub mod edge;
pub mod server;
pub mod simulator;
pub mod telemetry;
