//! The HTTP edge: knows HTTP and actor handles, no protocol logic. Each file is one concern:
//! `mcp` (the endpoint), `headers` (pure validators), `sse` (stream responses), `auth` (who is
//! calling), `admin` (operator routes), `rescue` (errors to responses), `upload` (health files),
//! `oauth` (the OAuth 2.1 authorization server Claude connects through).

pub mod admin;
pub mod auth;
pub mod headers;
pub mod mcp;
pub mod oauth;
pub mod rescue;
pub mod sse;
pub mod upload;
