//! dust-mcp's actor system and what runs behind the mailboxes.
#![forbid(unsafe_code)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod health;
