//! The protocol layer: JSON-RPC envelopes, versions, signed session ids, the catalogue of tools,
//! resources and prompts, and method dispatch. Wire types come from `rmcp::model`; this layer
//! adds what rmcp leaves to servers (dispatch, -32602 for malformed known methods, version
//! negotiation, stripping 2026-only fields for older peers). No actors, no HTTP.

pub mod catalogue;
pub mod context;
pub mod dispatch;
pub mod fixtures;
pub mod jsonrpc;
pub mod session_id;
pub mod version;

pub use rmcp::model;
