//! Command line of `mcp-load` and its validation into a [`Config`].
//! Owns the safety rules: every run is bounded (duration and/or request count, hard cap
//! [`MAX_DURATION_SECS`]), and only loopback targets are loaded unless `--allow-remote`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::target::{self, Target, TargetError};

/// Longest run accepted: a load run is an experiment, not a soak test left running by mistake.
pub const MAX_DURATION_SECS: f64 = 600.0;

/// Most sessions accepted (each needs one or two sockets; the OS limit is raised at start).
pub const MAX_SESSIONS: usize = 100_000;

/// An MCP Streamable HTTP load generator (protocol 2025-11-25, no SDK).
///
/// Scenarios: `idle` opens N sessions that each hold the GET stream for the duration and
/// counts keep-alives; `call` has each of N sessions call one tool in a loop and reports
/// calls/s and latency. With `--pid` the server's RSS and CPU are sampled every 250 ms.
/// Only loopback URLs are accepted unless `--allow-remote` is given.
///
/// Example: mcp-load --url http://127.0.0.1:3001/mcp --scenario call --sessions 10
/// --duration 10 --tool echo --args '{"message":"hi"}' --pid 1234
#[derive(Debug, Parser)]
#[command(name = "mcp-load", version, verbatim_doc_comment)]
pub struct Args {
    /// The server's MCP endpoint, e.g. http://127.0.0.1:3001/mcp.
    #[arg(long)]
    pub url: String,
    /// Bearer token sent as `Authorization: Bearer ...` on every request.
    #[arg(long, env = "MCP_LOAD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// What each session does.
    #[arg(long, value_enum, default_value_t = Scenario::Call)]
    pub scenario: Scenario,
    /// Concurrent sessions (each with its own connection).
    #[arg(long, default_value_t = 10)]
    pub sessions: usize,
    /// Run length in seconds (after ramp-up; for `idle`, after all sessions are open).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Total tool calls across all sessions (`call` only); the run stops at whichever bound
    /// comes first.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Spread session start-up evenly over this many seconds.
    #[arg(long, default_value_t = 0.0)]
    pub ramp_up: f64,
    /// Tool to call (`call`).
    #[arg(long, default_value = "echo")]
    pub tool: String,
    /// Tool arguments as a JSON object (`call`).
    #[arg(long, default_value = r#"{"message":"hi"}"#)]
    pub args: String,
    /// Ask for progress notifications (`_meta.progressToken` = request id) on each call.
    #[arg(long)]
    pub progress: bool,
    /// Also open the GET stream in each `call` session.
    #[arg(long)]
    pub get_stream: bool,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// PID of the server process whose RSS and CPU are sampled every 250 ms.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Write the report (summary.json) into this directory.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// No progress bar (it is also off when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Allow a non-loopback target. This workplace forbids such traffic: never use it here.
    #[arg(long)]
    pub allow_remote: bool,
    /// Tokio worker threads of the generator (it shares cores with the server).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// The load shapes; each lives in its own module under `scenario/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Sessions open the GET stream and hold it.
    Idle,
    /// Sessions call one tool in a loop.
    Call,
}

/// Why the arguments were refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Neither `--duration` nor `--requests`.
    #[error("unbounded run refused: give --duration SECS (at most {MAX_DURATION_SECS}) and/or --requests N")]
    Unbounded,
    /// `idle` needs a duration: it makes no calls to count.
    #[error("the idle scenario needs --duration SECS")]
    IdleNeedsDuration,
    /// A number is out of its range.
    #[error("{name} must be {rule}, got {value}")]
    OutOfRange {
        /// The option.
        name: &'static str,
        /// The accepted range.
        rule: &'static str,
        /// What was given.
        value: String,
    },
    /// `--args` is not a JSON object.
    #[error("--args must be a JSON object: {0}")]
    ToolArgs(String),
    /// The URL was refused.
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// A validated run description.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the load goes.
    pub target: Target,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// The scenario.
    pub scenario: Scenario,
    /// Concurrent sessions.
    pub sessions: usize,
    /// Measured run length; `None` when only `requests` bounds the run.
    pub duration: Option<Duration>,
    /// Total calls budget.
    pub requests: Option<u64>,
    /// Session start-up spread.
    pub ramp_up: Duration,
    /// Tool name (already a JSON string literal, quotes included).
    pub tool_json: String,
    /// Tool arguments, compact JSON.
    pub args_json: String,
    /// Whether each call asks for progress.
    pub progress: bool,
    /// Whether `call` sessions open the GET stream.
    pub get_stream: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Server PID to sample.
    pub pid: Option<u32>,
    /// Worker threads.
    pub threads: usize,
}

fn secs(
    name: &'static str,
    value: f64,
    max: f64,
    allow_zero: bool,
) -> Result<Duration, ConfigError> {
    let ok = value.is_finite() && value <= max && (value > 0.0 || (allow_zero && value == 0.0));
    if !ok {
        return Err(ConfigError::OutOfRange {
            name,
            rule: if allow_zero {
                "between 0 and 600 seconds"
            } else {
                "above 0 and at most 600 seconds"
            },
            value: value.to_string(),
        });
    }
    Ok(Duration::from_secs_f64(value))
}

impl Args {
    /// Checks the bounds, the URL and the tool arguments.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        if self.duration.is_none() && self.requests.is_none() {
            return Err(ConfigError::Unbounded);
        }
        if self.scenario == Scenario::Idle && self.duration.is_none() {
            return Err(ConfigError::IdleNeedsDuration);
        }
        let duration = self
            .duration
            .map(|d| secs("--duration", d, MAX_DURATION_SECS, false))
            .transpose()?;
        let ramp_up = secs("--ramp-up", self.ramp_up, MAX_DURATION_SECS, true)?;
        let timeout = secs("--timeout", self.timeout, MAX_DURATION_SECS, false)?;
        if self.sessions == 0 || self.sessions > MAX_SESSIONS {
            return Err(ConfigError::OutOfRange {
                name: "--sessions",
                rule: "between 1 and 100000",
                value: self.sessions.to_string(),
            });
        }
        if self.requests == Some(0) {
            return Err(ConfigError::OutOfRange {
                name: "--requests",
                rule: "at least 1",
                value: "0".into(),
            });
        }
        if self.threads == 0 || self.threads > 64 {
            return Err(ConfigError::OutOfRange {
                name: "--threads",
                rule: "between 1 and 64",
                value: self.threads.to_string(),
            });
        }
        let args: serde_json::Value =
            serde_json::from_str(&self.args).map_err(|e| ConfigError::ToolArgs(e.to_string()))?;
        if !args.is_object() {
            return Err(ConfigError::ToolArgs("not an object".into()));
        }
        let target = target::resolve(&self.url, self.allow_remote)?;
        Ok(Config {
            target,
            token: self.token.clone(),
            scenario: self.scenario,
            sessions: self.sessions,
            duration,
            requests: self.requests,
            ramp_up,
            tool_json: serde_json::Value::String(self.tool.clone()).to_string(),
            args_json: args.to_string(),
            progress: self.progress,
            get_stream: self.get_stream,
            timeout,
            pid: self.pid,
            threads: self.threads,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["mcp-load", "--url", "http://127.0.0.1:3001/mcp"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap().validate()
    }

    #[test]
    fn a_run_without_any_bound_is_refused() {
        assert!(matches!(parse(&[]), Err(ConfigError::Unbounded)));
        assert!(matches!(
            parse(&["--scenario", "idle"]),
            Err(ConfigError::Unbounded)
        ));
        assert!(matches!(
            parse(&["--scenario", "idle", "--requests", "10"]),
            Err(ConfigError::IdleNeedsDuration)
        ));
    }

    #[test]
    fn durations_beyond_the_cap_or_not_positive_are_refused() {
        for bad in ["601", "0", "-1", "NaN", "inf"] {
            let arg = format!("--duration={bad}");
            let err = parse(&[&arg]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::OutOfRange {
                        name: "--duration",
                        ..
                    }
                ),
                "{bad}"
            );
        }
        assert!(parse(&["--duration", "600"]).is_ok());
        assert!(parse(&["--requests", "5", "--ramp-up", "700"]).is_err());
        assert!(parse(&["--requests", "0"]).is_err());
        assert!(parse(&["--requests", "5", "--sessions", "0"]).is_err());
    }

    #[test]
    fn bounded_runs_are_accepted() {
        let c = parse(&["--requests", "100"]).unwrap();
        assert_eq!(c.requests, Some(100));
        assert_eq!(c.duration, None);
        let c = parse(&["--scenario", "idle", "--duration", "2.5", "--sessions", "7"]).unwrap();
        assert_eq!(c.duration, Some(Duration::from_millis(2500)));
        assert_eq!(c.sessions, 7);
        assert_eq!(c.tool_json, "\"echo\"");
    }

    #[test]
    fn non_loopback_urls_are_refused() {
        let argv = [
            "mcp-load",
            "--url",
            "http://192.0.2.1/mcp",
            "--duration",
            "1",
        ];
        let err = Args::try_parse_from(argv).unwrap().validate().unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Target(TargetError::NotLoopback { .. })
        ));
    }

    #[test]
    fn tool_arguments_must_be_a_json_object() {
        assert!(matches!(
            parse(&["--requests", "1", "--args", "[1]"]),
            Err(ConfigError::ToolArgs(_))
        ));
        assert!(matches!(
            parse(&["--requests", "1", "--args", "{nope"]),
            Err(ConfigError::ToolArgs(_))
        ));
        let c = parse(&["--requests", "1", "--args", r#"{ "message" : "x" }"#]).unwrap();
        assert_eq!(c.args_json, r#"{"message":"x"}"#);
    }
}
