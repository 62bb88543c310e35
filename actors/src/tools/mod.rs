//! The product's tools, resources and prompts, registered into the MCP catalogue at start-up:
//! `dust` (Dust agents), `health` (uploaded health files). Each file builds on a pure library (`crate::dust`) and, where a
//! request needs its own actor, starts it (`crate::dust_stream`).

pub mod dust;
pub mod health;
