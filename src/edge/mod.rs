//! The HTTP edge: knows HTTP and actor handles, no protocol logic. Each file is one concern:
//! `mcp` (the endpoint), `headers` (pure validators), `sse` (stream responses), `auth` (who is
//! calling), `admin` (operator routes), `rescue` (errors to responses), `upload` (health files).

pub mod admin;
pub mod auth;
pub mod headers;
pub mod mcp;
pub mod rescue;
pub mod sse;
pub mod upload;
