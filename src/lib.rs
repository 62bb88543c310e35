//! dust-mcp: the HTTP edge and binary glue (see README).
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]
pub mod simulator;
