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
/// calls/s and latency; `ask` calls dust_ask in a loop and times the streamed progress
/// (first text, gaps, delay added per stamped token); `upload` runs `ask` while
/// `--uploaders` post a health export. With `--pid` the server's RSS and CPU are sampled
/// every 250 ms. `mcp-load gen-health` writes a synthetic export.xml for `upload`.
/// Only loopback URLs are accepted unless `--allow-remote` is given.
///
/// Example: mcp-load --url http://127.0.0.1:3001/mcp --scenario call --sessions 10
/// --duration 10 --tool echo --args '{"message":"hi"}' --pid 1234
#[derive(Debug, Parser)]
#[command(
    name = "mcp-load",
    version,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    /// A helper command instead of a load run.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The server's MCP endpoint, e.g. http://127.0.0.1:3001/mcp.
    #[arg(long, required = true)]
    pub url: Option<String>,
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
    /// Calling scenarios: call for this many seconds before the measured `--duration` starts,
    /// without recording those calls (first connections, caches); their errors still count.
    #[arg(long, default_value_t = 0.0)]
    pub warm_up: f64,
    /// Calling scenarios: spread the sessions' first calls evenly over this many seconds
    /// instead of starting them together, so streams are not in phase (independent users);
    /// use a `--warm-up` at least as long so the measured window sees every session calling.
    #[arg(long, default_value_t = 0.0)]
    pub stagger: f64,
    /// Tool to call (`call`).
    #[arg(long, default_value = "echo")]
    pub tool: String,
    /// Tool arguments as a JSON object (`call`).
    #[arg(long, default_value = r#"{"message":"hi"}"#)]
    pub args: String,
    /// Agent asked by `ask`/`upload` (dust_ask's `agent`).
    #[arg(long, default_value = "writer")]
    pub agent: String,
    /// Message sent by `ask`/`upload` (dust_ask's `message`).
    #[arg(long, default_value = "Write a short note for the load test")]
    pub message: String,
    /// The simulator's `first_token_delay_ms` knob, subtracted from time-to-first-text to give
    /// the time the bridge added (`ask`/`upload`).
    #[arg(long)]
    pub first_token_delay_ms: Option<f64>,
    /// The file `upload` posts (make one with `mcp-load gen-health`).
    #[arg(long)]
    pub upload_file: Option<PathBuf>,
    /// Concurrent uploaders in `upload` (each posts the file in a loop).
    #[arg(long, default_value_t = 2)]
    pub uploaders: usize,
    /// Path and query the uploads go to, on the `--url` host.
    #[arg(long, default_value = "/v1/health/files?name=export.xml")]
    pub upload_path: String,
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
    /// Sessions call dust_ask in a loop and time the streamed answer.
    Ask,
    /// `ask` plus concurrent health-file uploads.
    Upload,
}

impl Scenario {
    /// Lower-case name, as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Idle => "idle",
            Scenario::Call => "call",
            Scenario::Ask => "ask",
            Scenario::Upload => "upload",
        }
    }

    /// Whether the scenario makes tool calls (and so has calls/s and latencies).
    pub fn calls(self) -> bool {
        self != Scenario::Idle
    }
}

/// Helper commands that are not load runs.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Writes a synthetic Apple Health export.xml (the project's seeded generator) for `upload`.
    GenHealth {
        /// Size to reach, in MiB (whole days are written until at least this much).
        #[arg(long, default_value_t = 10.0)]
        mb: f64,
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
        /// Seed of the generator (same seed, same file).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
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
    /// No `--url` (only helper commands run without one).
    #[error("--url is required")]
    NoUrl,
    /// `upload` without `--upload-file`.
    #[error("the upload scenario needs --upload-file FILE (make one with `mcp-load gen-health`)")]
    NoUploadFile,
    /// `--upload-path` must be an origin-form path.
    #[error("--upload-path must start with '/', got {0:?}")]
    UploadPath(String),
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
    /// Unrecorded calling before the measured window.
    pub warm_up: Duration,
    /// Spread of the sessions' first calls.
    pub stagger: Duration,
    /// Tool name (already a JSON string literal, quotes included).
    pub tool_json: String,
    /// Tool arguments, compact JSON.
    pub args_json: String,
    /// Whether each call asks for progress.
    pub progress: bool,
    /// What `ask`/`upload` send.
    pub ask: AskConfig,
    /// The uploads of `upload`.
    pub upload: Option<UploadConfig>,
    /// Whether `call` sessions open the GET stream.
    pub get_stream: bool,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Server PID to sample.
    pub pid: Option<u32>,
    /// Worker threads.
    pub threads: usize,
}

/// The dust_ask call of `ask` and `upload`.
#[derive(Debug, Clone)]
pub struct AskConfig {
    /// `tools/call` params without `_meta` closing brace: `{"name":"dust_ask","arguments":{..}`.
    pub params_prefix: String,
    /// The simulator's first-token delay, if given.
    pub first_token_delay: Option<Duration>,
}

/// The uploads of `upload`.
#[derive(Debug, Clone)]
pub struct UploadConfig {
    /// The file posted.
    pub file: PathBuf,
    /// Concurrent uploaders.
    pub uploaders: usize,
    /// Origin-form path and query.
    pub path: String,
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
        let warm_up = secs("--warm-up", self.warm_up, MAX_DURATION_SECS, true)?;
        let stagger = secs("--stagger", self.stagger, MAX_DURATION_SECS, true)?;
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
        let url = self.url.as_deref().ok_or(ConfigError::NoUrl)?;
        let target = target::resolve(url, self.allow_remote)?;
        let first_token_delay = self
            .first_token_delay_ms
            .map(|ms| {
                secs(
                    "--first-token-delay-ms",
                    ms / 1000.0,
                    MAX_DURATION_SECS,
                    true,
                )
            })
            .transpose()?;
        let ask_args = serde_json::json!({"agent": self.agent, "message": self.message});
        let ask = AskConfig {
            params_prefix: format!(r#"{{"name":"dust_ask","arguments":{ask_args}"#),
            first_token_delay,
        };
        let upload = if self.scenario == Scenario::Upload {
            let file = self.upload_file.clone().ok_or(ConfigError::NoUploadFile)?;
            if !self.upload_path.starts_with('/') {
                return Err(ConfigError::UploadPath(self.upload_path.clone()));
            }
            if self.uploaders == 0 || self.uploaders > 1000 {
                return Err(ConfigError::OutOfRange {
                    name: "--uploaders",
                    rule: "between 1 and 1000",
                    value: self.uploaders.to_string(),
                });
            }
            Some(UploadConfig {
                file,
                uploaders: self.uploaders,
                path: self.upload_path.clone(),
            })
        } else {
            None
        };
        Ok(Config {
            target,
            token: self.token.clone(),
            scenario: self.scenario,
            sessions: self.sessions,
            duration,
            requests: self.requests,
            ramp_up,
            warm_up,
            stagger,
            tool_json: serde_json::Value::String(self.tool.clone()).to_string(),
            args_json: args.to_string(),
            progress: self.progress,
            ask,
            upload,
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
    fn ask_builds_dust_ask_params_and_upload_needs_a_file_and_a_path() {
        let c = parse(&["--scenario", "ask", "--duration", "5", "--agent", "writer"]).unwrap();
        let params = format!(r#"{},"_meta":{{"progressToken":3}}}}"#, c.ask.params_prefix);
        let v: serde_json::Value = serde_json::from_str(&params).unwrap();
        assert_eq!(v["name"], "dust_ask");
        assert_eq!(v["arguments"]["agent"], "writer");
        assert_eq!(v["_meta"]["progressToken"], 3);
        assert!(c.upload.is_none());
        let c = parse(&[
            "--scenario",
            "ask",
            "--duration",
            "5",
            "--first-token-delay-ms",
            "200",
        ]);
        assert_eq!(
            c.unwrap().ask.first_token_delay,
            Some(Duration::from_millis(200))
        );
        assert!(matches!(
            parse(&["--scenario", "upload", "--duration", "5"]),
            Err(ConfigError::NoUploadFile)
        ));
        assert!(matches!(
            parse(&[
                "--scenario",
                "upload",
                "--duration",
                "5",
                "--upload-file",
                "x.xml",
                "--upload-path",
                "v1/x"
            ]),
            Err(ConfigError::UploadPath(_))
        ));
        let c = parse(&[
            "--scenario",
            "upload",
            "--duration",
            "5",
            "--upload-file",
            "x.xml",
        ])
        .unwrap();
        assert_eq!(c.upload.unwrap().path, "/v1/health/files?name=export.xml");
    }

    #[test]
    fn gen_health_needs_no_url_but_a_load_run_does() {
        let a = Args::try_parse_from(["mcp-load", "gen-health", "--mb", "2", "--out", "f.xml"])
            .unwrap();
        assert!(matches!(
            a.command,
            Some(Command::GenHealth { seed: 1, .. })
        ));
        assert!(Args::try_parse_from(["mcp-load", "--duration", "1"]).is_err());
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
