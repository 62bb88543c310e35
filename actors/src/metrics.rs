//! Prometheus metrics. One `Metrics` per process, shared by the sessions (which count requests)
//! and the registry (which counts sessions); the edge renders it at `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Methods we label by name; anything else is counted as "other" so a client cannot blow up
/// label cardinality with made-up method names.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "server/discover",
];

/// Normalises a method name into a bounded label value.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("other")
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests by method and outcome (`ok`, `error`, `cancelled`, `panic`).
    pub requests: IntCounterVec,
    /// Request latency by method, from dispatch to response.
    pub latency: HistogramVec,
    /// Live session actors.
    pub sessions: IntGauge,
    /// Sessions created by `initialize`.
    pub sessions_created: IntCounter,
    /// Sessions re-created from a signed id after their actor was gone.
    pub sessions_recreated: IntCounter,
    /// Sessions reaped for idleness.
    pub sessions_reaped: IntCounter,
    /// Open SSE connections (sampled at each heartbeat).
    pub open_streams: IntGauge,
    /// Requests running now.
    pub in_flight: IntGauge,
    /// HTTP requests refused before reaching a session, by reason.
    pub refused: IntCounterVec,
    /// Size of SSE event replays on resume.
    pub replayed: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Registers every metric. Only fails on a programming error (a duplicate name), at start-up.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("mcp_requests_total", "MCP requests by method and outcome"),
            &["method", "outcome"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("mcp_request_duration_seconds", "MCP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0, 120.0, 300.0,
                ],
            ),
            &["method"],
        )?;
        let sessions = IntGauge::new("mcp_sessions", "Live MCP sessions")?;
        let sessions_created = IntCounter::new(
            "mcp_sessions_created_total",
            "Sessions created by initialize",
        )?;
        let sessions_recreated = IntCounter::new(
            "mcp_sessions_recreated_total",
            "Sessions re-created from a signed session id",
        )?;
        let sessions_reaped = IntCounter::new(
            "mcp_sessions_reaped_total",
            "Sessions reaped after the idle TTL",
        )?;
        let open_streams = IntGauge::new("mcp_open_streams", "Open SSE connections")?;
        let in_flight = IntGauge::new("mcp_in_flight_requests", "MCP requests running now")?;
        let refused = IntCounterVec::new(
            Opts::new(
                "http_refused_total",
                "HTTP requests refused at the edge, by reason",
            ),
            &["reason"],
        )?;
        let replayed = Histogram::with_opts(
            HistogramOpts::new("mcp_resume_replayed_events", "Events replayed per resume")
                .buckets(vec![0.0, 1.0, 5.0, 20.0, 100.0, 500.0]),
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(sessions.clone()))?;
        registry.register(Box::new(sessions_created.clone()))?;
        registry.register(Box::new(sessions_recreated.clone()))?;
        registry.register(Box::new(sessions_reaped.clone()))?;
        registry.register(Box::new(open_streams.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(replayed.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            sessions,
            sessions_created,
            sessions_recreated,
            sessions_reaped,
            open_streams,
            in_flight,
            refused,
            replayed,
        })
    }

    /// Registers a collector owned by another subsystem (e.g. the Dust client's breaker).
    pub fn register(
        &self,
        c: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(c)
    }

    /// Renders the Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}
