//! What a running request can do besides returning its result: report progress, log to the
//! client, and ask the client something (sampling, elicitation). The session that runs the
//! request supplies the `Emitter`; this module knows nothing of actors.

use std::sync::{
    atomic::{AtomicU8, Ordering},
    Arc,
};

use rmcp::model::{ErrorData, ProgressToken, RequestId};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::{jsonrpc, session_id::ClientCaps, version::Version};
use crate::principal::Principal;

/// A message from a running request to its session.
#[derive(Debug)]
pub enum Output {
    /// A notification to deliver on the request's stream.
    Notify(Value),
    /// A server-to-client request; the client's answer (or a failure) comes back on `reply`.
    AskClient {
        method: String,
        params: Value,
        reply: oneshot::Sender<Result<Value, ErrorData>>,
    },
    /// Cut the request's live connection; the client resumes with `Last-Event-ID`.
    Detach,
}

/// Delivers a request's output to its session.
pub type Emitter = Arc<dyn Fn(Output) + Send + Sync>;

/// Why a server-to-client request failed.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("the client did not declare the `{0}` capability, so it cannot be asked")]
    NotSupported(&'static str),
    #[error("the client did not answer within {0} s")]
    Timeout(u64),
    #[error("the session closed before the client answered")]
    Closed,
    #[error("the client answered with an error: {0}")]
    Client(String),
}

/// The per-request handle given to tools, prompts and resources.
#[derive(Clone)]
pub struct RequestContext {
    /// Who asked.
    pub principal: Principal,
    /// The JSON-RPC id of the request.
    pub request_id: RequestId,
    /// `_meta.progressToken`, echoed with its JSON type in every progress notification.
    pub progress_token: Option<ProgressToken>,
    /// What the client can be asked.
    pub caps: ClientCaps,
    /// Negotiated protocol version.
    pub version: Version,
    /// How long a server-to-client request may wait for its answer.
    pub ask_timeout: std::time::Duration,
    emit: Emitter,
    log_level: Arc<AtomicU8>,
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("principal", &self.principal.name)
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

/// Syslog severities, least severe first (MCP server/utilities/logging.mdx). rmcp's own
/// `LoggingLevel` is deprecated (SEP-2577) but the legacy revisions we speak still use logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl LogLevel {
    const NAMES: [&'static str; 8] = [
        "debug",
        "info",
        "notice",
        "warning",
        "error",
        "critical",
        "alert",
        "emergency",
    ];

    /// Parses a level name as sent in `logging/setLevel`.
    pub fn parse(s: &str) -> Option<LogLevel> {
        use LogLevel::*;
        let all = [
            Debug, Info, Notice, Warning, Error, Critical, Alert, Emergency,
        ];
        Self::NAMES.iter().position(|n| *n == s).map(|i| all[i])
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// The rank stored in the session's shared level cell.
    pub fn rank(self) -> u8 {
        self as u8
    }
}

impl RequestContext {
    /// Builds a context; called by the session for each request.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        principal: Principal,
        request_id: RequestId,
        progress_token: Option<ProgressToken>,
        caps: ClientCaps,
        version: Version,
        ask_timeout: std::time::Duration,
        emit: Emitter,
        log_level: Arc<AtomicU8>,
    ) -> RequestContext {
        RequestContext {
            principal,
            request_id,
            progress_token,
            caps,
            version,
            ask_timeout,
            emit,
            log_level,
        }
    }

    pub(crate) fn emit(&self, output: Output) {
        (self.emit)(output)
    }

    /// Sends `notifications/progress` if the request carried a progress token; a no-op otherwise.
    /// `progress` must grow from call to call (the spec requires it; callers count up).
    pub fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) {
        let Some(token) = &self.progress_token else {
            return;
        };
        let mut params = json!({"progressToken": token, "progress": progress});
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        if let Some(message) = message {
            params["message"] = json!(message);
        }
        (self.emit)(Output::Notify(jsonrpc::notification(
            "notifications/progress",
            params,
        )));
    }

    /// Whether the caller asked for progress.
    pub fn wants_progress(&self) -> bool {
        self.progress_token.is_some()
    }

    /// Sends `notifications/message` if `level` is at or above the session's `logging/setLevel`.
    pub fn log(&self, level: LogLevel, logger: &str, data: Value) {
        if level.rank() < self.log_level.load(Ordering::Relaxed) {
            return;
        }
        (self.emit)(Output::Notify(jsonrpc::notification(
            "notifications/message",
            json!({"level": level.as_str(), "logger": logger, "data": data}),
        )));
    }

    /// Sends a server-to-client request on this request's stream and waits for the answer,
    /// failing fast when the client did not declare `capability` or does not answer in time.
    pub async fn ask_client(
        &self,
        capability: &'static str,
        method: &str,
        params: Value,
    ) -> Result<Value, AskError> {
        let declared = match capability {
            "sampling" => self.caps.sampling,
            "elicitation" => self.caps.elicitation,
            "roots" => self.caps.roots,
            _ => false,
        };
        if !declared {
            return Err(AskError::NotSupported(capability));
        }
        let (reply, answer) = oneshot::channel();
        (self.emit)(Output::AskClient {
            method: method.to_owned(),
            params,
            reply,
        });
        match tokio::time::timeout(self.ask_timeout, answer).await {
            Err(_) => Err(AskError::Timeout(self.ask_timeout.as_secs())),
            Ok(Err(_)) => Err(AskError::Closed),
            Ok(Ok(Err(e))) => Err(AskError::Client(e.message.into_owned())),
            Ok(Ok(Ok(v))) => Ok(v),
        }
    }
}
