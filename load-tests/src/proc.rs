//! Reading a process's memory and CPU from Linux `/proc`: VmRSS from `/proc/PID/status`,
//! utime+stime from `/proc/PID/stat`. Pure parsers plus one reader; sampling over time is
//! `sampler.rs`.

use std::io;
use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat` times. USER_HZ is 100 on every Linux ABI this
/// runs on (x86-64, arm64); reading it needs `sysconf`, i.e. unsafe code, which the crate forbids.
pub const TICKS_PER_SEC: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcReading {
    /// Resident set size in KiB.
    pub rss_kib: u64,
    /// User plus system CPU time so far, in clock ticks.
    pub cpu_ticks: u64,
}

/// Which process to read.
#[derive(Debug, Clone, Copy)]
pub enum Pid {
    /// The load generator itself.
    OwnProcess,
    /// Another process.
    Other(u32),
}

impl Pid {
    fn dir(self) -> String {
        match self {
            Pid::OwnProcess => "/proc/self".into(),
            Pid::Other(pid) => format!("/proc/{pid}"),
        }
    }
}

/// `VmRSS` in KiB from the text of `/proc/PID/status`.
pub fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

/// utime + stime (ticks) from the text of `/proc/PID/stat`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may itself hold spaces and ')'.
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields after the name start at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Reads RSS and CPU time of `pid` now.
pub fn read(pid: Pid) -> io::Result<ProcReading> {
    let dir = pid.dir();
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{dir}/{what}: unreadable"),
        )
    };
    let status = std::fs::read_to_string(format!("{dir}/status"))?;
    let stat = std::fs::read_to_string(format!("{dir}/stat"))?;
    Ok(ProcReading {
        rss_kib: parse_status_rss(&status).ok_or_else(|| bad("status"))?,
        cpu_ticks: parse_stat_ticks(&stat).ok_or_else(|| bad("stat"))?,
    })
}

/// CPU use between two readings as a percentage of one core.
pub fn cpu_percent(earlier_ticks: u64, later_ticks: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    later_ticks.saturating_sub(earlier_ticks) as f64 / TICKS_PER_SEC / secs * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_readable_through_both_paths() {
        let own = read(Pid::OwnProcess).unwrap();
        let by_pid = read(Pid::Other(std::process::id())).unwrap();
        assert!(own.rss_kib > 0);
        // A test binary holds at least a megabyte resident (code, stacks, allocator).
        assert!(by_pid.rss_kib > 1024, "{by_pid:?}");
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        assert!(parse_stat_ticks(&stat).is_some());
    }

    #[test]
    fn busy_work_shows_up_as_cpu_ticks() {
        let before = read(Pid::OwnProcess).unwrap().cpu_ticks;
        let mut x = 0u64;
        let mut after = before;
        // At least one tick (10 ms) of CPU must appear; bounded so a broken parser fails.
        for _ in 0..2000 {
            for i in 0..200_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            after = read(Pid::OwnProcess).unwrap().cpu_ticks;
            if after > before {
                break;
            }
        }
        assert!(after > before, "no CPU time seen ({x})");
    }

    #[test]
    fn stat_with_awkward_command_names_parses() {
        let stat = "4242 (we (i)rd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                    1234 56 0 0 20 0 1 0 100 1000000 250 18446744073709551615";
        assert_eq!(parse_stat_ticks(stat), Some(1290));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn status_rss_is_read_in_kib() {
        let status = "Name:\tnode\nVmPeak:\t 9999 kB\nVmRSS:\t   70432 kB\nThreads:\t7\n";
        assert_eq!(parse_status_rss(status), Some(70432));
        assert_eq!(parse_status_rss("Name:\tkthread\n"), None);
    }

    #[test]
    fn cpu_percent_is_relative_to_one_core() {
        // 50 ticks = 0.5 s of CPU over 0.25 s of wall time = two cores busy.
        assert_eq!(cpu_percent(100, 150, Duration::from_millis(250)), 200.0);
        assert_eq!(cpu_percent(100, 100, Duration::from_secs(1)), 0.0);
        assert_eq!(cpu_percent(100, 90, Duration::from_secs(1)), 0.0);
    }
}
