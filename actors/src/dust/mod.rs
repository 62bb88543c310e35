//! The Dust API client (dust-api.md): agents, conversations, the agent-message event stream,
//! files and fragments, with pooling, timeouts, retries, a rate limiter and a circuit breaker.
//! Pure library: no MCP and no actors. Start with `client.rs` (how to get a `DustClient` on any
//! arbiter), then `stream.rs` (answers). Imports flow settings/error → client → the call files.
mod agents;
mod breaker;
mod cache;
mod client;
mod context;
mod conversations;
mod error;
mod events;
mod files;
mod limiter;
mod metrics;
mod retry;
mod settings;
mod sse;
mod stream;
mod types;

pub use breaker::{BreakerSnapshot, BreakerState, CircuitBreaker};
pub use cache::{AgentCache, Cached};
pub use client::{DustClient, DustShared, DustStatus};
pub use context::{is_known_timezone, valid_timezone, UserContext};
pub use conversations::{NewMessage, PostedMessage};
pub use error::DustError;
pub use events::{AgentEvent, TextClass};
pub use files::{FragmentInput, MAX_INLINE_FRAGMENT_CHARS};
pub use limiter::TokenBucket;
pub use metrics::{DustMetrics, DustMetricsSnapshot};
pub use retry::{parse_retry_after, Backoff};
pub use settings::{DustSettings, Secret, DUST_EU_BASE_URL, DUST_US_BASE_URL};
pub use sse::{SseDecoder, SseFrame, SseTooLarge};
pub use stream::AgentEventStream;
pub use types::{
    AgentConfiguration, AgentMessage, AgentMessageStatus, AgentStatus, ContentFragment,
    Conversation, ConversationItem, DustFile, MessageError, UserMessage, WireUserContext,
};
