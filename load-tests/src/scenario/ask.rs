//! Timing of `dust_ask` calls (the `ask` and `upload` scenarios): reads each call's
//! `notifications/progress`, and records time to the first notification and to the first one
//! with answer text (a `[t=<unix µs>]` stamp the simulator wrote), the gaps between text
//! notifications, and for every stamp the delay the bridge added (arrival - stamp).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::mcp::Arrival;
use crate::stats::{Latencies, LatencySummary, Timed};

/// What one `dust_ask` call's stream looked like, recorded per session and merged.
#[derive(Debug, Clone, Default)]
pub struct AskRecorder {
    first_progress: Latencies,
    first_text: Latencies,
    first_text_added: Latencies,
    gaps: Latencies,
    chunk_delay: Latencies,
    progress: u64,
    stamps: u64,
    calls: u64,
    calls_without_text: u64,
    negative: u64,
    /// Delay added per stamp over the run (for the chart).
    pub chunk_delay_timed: Timed,
    /// Time to first answer text over the run (for the chart).
    pub first_text_timed: Timed,
}

/// Ask figures for the report.
#[derive(Debug, Clone, Serialize)]
pub struct AskFigures {
    /// From sending `tools/call` to the first progress notification.
    pub first_progress_ms: Option<LatencySummary>,
    /// From sending `tools/call` to the first notification carrying answer text.
    pub first_text_ms: Option<LatencySummary>,
    /// `first_text_ms` minus the simulator's first-token delay (with `--first-token-delay-ms`).
    pub first_text_added_ms: Option<LatencySummary>,
    /// The first-token delay subtracted, ms.
    pub first_token_delay_ms: Option<f64>,
    /// Between consecutive notifications carrying answer text, within one call.
    pub gap_ms: Option<LatencySummary>,
    /// Per stamped token: arrival here minus the simulator's emission stamp.
    pub chunk_delay_ms: Option<LatencySummary>,
    /// Progress notifications received.
    pub progress_notifications: u64,
    /// Stamped tokens received.
    pub stamps: u64,
    /// Mean stamped tokens per successful call.
    pub stamps_per_call: f64,
    /// Successful calls whose progress carried no stamped text.
    pub calls_without_text: u64,
    /// Delays below zero (a stamp "after" its arrival: clock stepped); recorded as 0.
    pub negative_delays: u64,
}

/// The part of a progress notification that matters here.
#[derive(Deserialize)]
struct Notification {
    method: Option<String>,
    params: Option<ProgressParams>,
}

#[derive(Deserialize)]
struct ProgressParams {
    #[serde(rename = "progressToken")]
    token: Option<serde_json::Value>,
    message: Option<String>,
}

/// The `message` of a `notifications/progress` for `token` (an empty one if it has none);
/// `None` for any other message.
pub fn progress_message(data: &[u8], token: u64) -> Option<String> {
    let n: Notification = serde_json::from_slice(data).ok()?;
    if n.method.as_deref() != Some("notifications/progress") {
        return None;
    }
    let p = n.params?;
    let ours = match p.token? {
        serde_json::Value::Number(v) => v.as_u64() == Some(token),
        serde_json::Value::String(s) => s.parse::<u64>().ok() == Some(token),
        _ => false,
    };
    ours.then(|| p.message.unwrap_or_default())
}

/// Every `[t=<digits>]` stamp in `text`, in order (malformed ones are skipped).
pub fn stamps(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.match_indices("[t=").filter_map(move |(at, _)| {
        let rest = &text[at + 3..];
        let end = rest.find(']')?;
        let digits = &rest[..end];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    })
}

/// Microseconds from the stamp to the arrival (negative if the stamp is later).
pub fn added_delay_us(arrival_wall_us: u64, stamp_us: u64) -> i64 {
    i128::from(arrival_wall_us)
        .saturating_sub(i128::from(stamp_us))
        .clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Spacing of consecutive arrivals.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gaps {
    last: Option<Instant>,
}

impl Gaps {
    /// The time since the previous arrival (`None` for the first one).
    pub fn arrive(&mut self, at: Instant) -> Option<Duration> {
        let gap = self.last.map(|last| at.saturating_duration_since(last));
        self.last = Some(at);
        gap
    }
}

/// The state of one call in flight; feed it each streamed message.
#[derive(Debug)]
pub struct AskCall<'a> {
    rec: &'a mut AskRecorder,
    token: u64,
    sent: Instant,
    t0: Instant,
    first_token_delay: Option<Duration>,
    seen_any: bool,
    seen_text: bool,
    gaps: Gaps,
}

impl AskRecorder {
    /// Starts timing a call sent at `sent` with progress token `token`.
    pub fn start_call(
        &mut self,
        token: u64,
        sent: Instant,
        t0: Instant,
        first_token_delay: Option<Duration>,
    ) -> AskCall<'_> {
        AskCall {
            rec: self,
            token,
            sent,
            t0,
            first_token_delay,
            seen_any: false,
            seen_text: false,
            gaps: Gaps::default(),
        }
    }

    /// Adds another session's figures.
    pub fn merge(&mut self, o: &AskRecorder) {
        self.first_progress.merge(&o.first_progress);
        self.first_text.merge(&o.first_text);
        self.first_text_added.merge(&o.first_text_added);
        self.gaps.merge(&o.gaps);
        self.chunk_delay.merge(&o.chunk_delay);
        self.progress += o.progress;
        self.stamps += o.stamps;
        self.calls += o.calls;
        self.calls_without_text += o.calls_without_text;
        self.negative += o.negative;
        self.chunk_delay_timed.merge(&o.chunk_delay_timed);
        self.first_text_timed.merge(&o.first_text_timed);
    }

    /// The report's figures.
    pub fn figures(&self, first_token_delay: Option<Duration>) -> AskFigures {
        AskFigures {
            first_progress_ms: self.first_progress.summary(),
            first_text_ms: self.first_text.summary(),
            first_text_added_ms: self.first_text_added.summary(),
            first_token_delay_ms: first_token_delay.map(|d| d.as_secs_f64() * 1000.0),
            gap_ms: self.gaps.summary(),
            chunk_delay_ms: self.chunk_delay.summary(),
            progress_notifications: self.progress,
            stamps: self.stamps,
            stamps_per_call: if self.calls == 0 {
                0.0
            } else {
                self.stamps as f64 / self.calls as f64
            },
            calls_without_text: self.calls_without_text,
            negative_delays: self.negative,
        }
    }
}

impl AskCall<'_> {
    /// Handles one message streamed before the response.
    pub fn on_message(&mut self, data: &[u8], arrival: Arrival) {
        let Some(text) = progress_message(data, self.token) else {
            return;
        };
        let rec = &mut *self.rec;
        rec.progress += 1;
        let since_sent = arrival.at.saturating_duration_since(self.sent);
        if !self.seen_any {
            self.seen_any = true;
            rec.first_progress.record(since_sent);
        }
        let mut any_stamp = false;
        for stamp in stamps(&text) {
            any_stamp = true;
            rec.stamps += 1;
            let us = added_delay_us(arrival.wall_us, stamp);
            if us < 0 {
                rec.negative += 1;
            }
            let delay = Duration::from_micros(us.max(0).unsigned_abs());
            rec.chunk_delay.record(delay);
            rec.chunk_delay_timed
                .record(arrival.at.saturating_duration_since(self.t0), delay);
        }
        if !any_stamp {
            return;
        }
        if !self.seen_text {
            self.seen_text = true;
            rec.first_text.record(since_sent);
            rec.first_text_timed
                .record(arrival.at.saturating_duration_since(self.t0), since_sent);
            if let Some(d) = self.first_token_delay {
                if since_sent < d {
                    rec.negative += 1;
                }
                rec.first_text_added.record(since_sent.saturating_sub(d));
            }
        }
        if let Some(gap) = self.gaps.arrive(arrival.at) {
            rec.gaps.record(gap);
        }
    }

    /// Ends a successful call.
    pub fn finish(self) {
        self.rec.calls += 1;
        self.rec.calls_without_text += u64::from(!self.seen_text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_found_after_each_word_and_bad_ones_skipped() {
        let text = "Hello[t=1700000000000001] world[t=1700000000020002] ";
        assert_eq!(
            stamps(text).collect::<Vec<_>>(),
            vec![1_700_000_000_000_001, 1_700_000_000_020_002]
        );
        assert_eq!(stamps("Asking writer…").count(), 0);
        assert_eq!(stamps("[t=] [t=12x] [t=99").count(), 0);
        assert_eq!(stamps("[t=[t=5]").collect::<Vec<_>>(), vec![5]);
        assert_eq!(stamps("é[t=7]ü").collect::<Vec<_>>(), vec![7]);
    }

    #[test]
    fn delay_is_arrival_minus_stamp_and_may_be_negative() {
        assert_eq!(added_delay_us(1_000_500, 1_000_000), 500);
        assert_eq!(added_delay_us(1_000_000, 1_000_250), -250);
        assert_eq!(added_delay_us(0, u64::MAX), i64::MIN);
    }

    #[test]
    fn gaps_are_between_consecutive_arrivals() {
        let t = Instant::now();
        let mut g = Gaps::default();
        assert_eq!(g.arrive(t), None);
        assert_eq!(
            g.arrive(t + Duration::from_millis(20)),
            Some(Duration::from_millis(20))
        );
        assert_eq!(
            g.arrive(t + Duration::from_millis(70)),
            Some(Duration::from_millis(50))
        );
    }

    #[test]
    fn only_our_progress_notifications_are_read() {
        let ours = br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":2,"message":"Hi[t=5] "}}"#;
        assert_eq!(progress_message(ours, 7).as_deref(), Some("Hi[t=5] "));
        assert_eq!(progress_message(ours, 8), None);
        let string_token =
            br#"{"method":"notifications/progress","params":{"progressToken":"7","progress":1}}"#;
        assert_eq!(progress_message(string_token, 7).as_deref(), Some(""));
        let other = br#"{"method":"notifications/message","params":{"progressToken":7}}"#;
        assert_eq!(progress_message(other, 7), None);
        assert_eq!(progress_message(b"not json", 7), None);
    }

    fn arrival(at: Instant, wall_us: u64) -> Arrival {
        Arrival { at, wall_us }
    }

    fn progress(text: &str) -> Vec<u8> {
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": 1, "progress": 1, "message": text}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_call_records_first_progress_first_text_gaps_and_each_stamps_delay() {
        let t0 = Instant::now();
        let mut rec = AskRecorder::default();
        let mut call = rec.start_call(1, t0, t0, Some(Duration::from_millis(200)));
        call.on_message(
            &progress("Asking writer…"),
            arrival(t0 + Duration::from_millis(3), 0),
        );
        // Two tokens coalesced into one notification 210 ms after the call: delays 2 and 1 ms.
        call.on_message(
            &progress("One[t=1000000] two[t=1001000] "),
            arrival(t0 + Duration::from_millis(210), 1_002_000),
        );
        call.on_message(
            &progress("three[t=1040000] "),
            arrival(t0 + Duration::from_millis(250), 1_040_500),
        );
        call.finish();
        let f = rec.figures(Some(Duration::from_millis(200)));
        assert_eq!(f.progress_notifications, 3);
        assert_eq!(f.stamps, 3);
        assert_eq!(f.calls_without_text, 0);
        // hdrhistogram keeps 3 significant digits, hence the tolerances.
        let first = f.first_progress_ms.unwrap();
        assert!(
            first.count == 1 && (first.max_ms - 3.0).abs() < 0.01,
            "{first:?}"
        );
        assert_eq!(f.first_text_ms.unwrap().count, 1);
        assert!((f.first_text_ms.unwrap().max_ms - 210.0).abs() < 0.5);
        assert!((f.first_text_added_ms.unwrap().max_ms - 10.0).abs() < 0.05);
        // One gap, between the two text notifications (not from "Asking…").
        assert_eq!(f.gap_ms.unwrap().count, 1);
        assert!((f.gap_ms.unwrap().max_ms - 40.0).abs() < 0.05);
        let d = f.chunk_delay_ms.unwrap();
        assert_eq!(d.count, 3);
        assert!(
            (d.max_ms - 2.0).abs() < 0.01 && (d.p50_ms - 1.0).abs() < 0.01,
            "{d:?}"
        );
        let timed = rec.chunk_delay_timed.over_time(Duration::from_secs(1));
        assert_eq!(timed.iter().map(|p| p.count).sum::<usize>(), 3);
    }

    #[test]
    fn a_call_without_text_is_counted() {
        let t0 = Instant::now();
        let mut rec = AskRecorder::default();
        let mut call = rec.start_call(1, t0, t0, None);
        call.on_message(&progress("Asking writer…"), arrival(t0, 0));
        call.finish();
        let f = rec.figures(None);
        assert_eq!((f.calls_without_text, f.stamps), (1, 0));
        assert!(f.first_text_ms.is_none() && f.first_text_added_ms.is_none());
    }
}
