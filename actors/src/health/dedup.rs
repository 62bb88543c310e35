//! Source de-duplication of cumulative metrics (steps, distance, energy, ...), the way the
//! Health app does it: per time interval the highest-priority source wins.
//!
//! Priority rule: sources whose name (or device) mentions "Watch" first, then "iPhone", then
//! every other source; ties by source name. A reading of a lower-priority source counts only for
//! the fraction of its interval that no higher-priority source covers (an instantaneous reading
//! counts when its instant is uncovered). Readings of one source never cancel each other.

/// One cumulative reading kept until the end of the parse (24 bytes).
#[derive(Debug, Clone, Copy)]
pub struct Interval {
    /// Start, UTC seconds.
    pub start: i64,
    /// Value in the unit `unit`.
    pub value: f64,
    /// Duration in seconds (end − start, 0 for an instant).
    pub dur: u32,
    /// Index of the source in the collector's source table.
    pub source: u16,
    /// Index of the unit in the collector's unit table.
    pub unit: u16,
}

/// The priority class of a source: 0 Watch, 1 iPhone, 2 others.
pub fn source_class(name: &str, device: &str) -> u8 {
    if name.contains("Watch") || device.contains("Watch") {
        0
    } else if name.contains("iPhone") || device.contains("iPhone") {
        1
    } else {
        2
    }
}

/// De-duplicated total of one day's readings. `rank(source)` orders sources (lower wins) and
/// `factor(unit)` converts a value into the output unit.
pub fn dedup_total(
    items: &mut [Interval],
    rank: impl Fn(u16) -> (u8, u16),
    factor: impl Fn(u16) -> f64,
) -> f64 {
    items.sort_by_key(|i| (rank(i.source), i.start));
    let mut covered: Vec<(i64, i64)> = Vec::new();
    let mut tier: Vec<(i64, i64)> = Vec::new();
    let mut total = crate::health::stats::Neumaier::default();
    let mut i = 0;
    while i < items.len() {
        let key = rank(items[i].source);
        let mut j = i;
        while j < items.len() && rank(items[j].source) == key {
            let it = items[j];
            let end = it.start + i64::from(it.dur);
            let share = if it.dur == 0 {
                if inside(&covered, it.start) {
                    0.0
                } else {
                    1.0
                }
            } else {
                let overlap = overlap(&covered, it.start, end);
                (f64::from(it.dur) - overlap as f64) / f64::from(it.dur)
            };
            if share > 0.0 {
                total.add(it.value * factor(it.unit) * share);
            }
            if it.dur > 0 {
                tier.push((it.start, end));
            }
            j += 1;
        }
        covered.append(&mut tier);
        covered = union(covered);
        i = j;
    }
    total.value()
}

fn union(mut v: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

fn overlap(covered: &[(i64, i64)], s: i64, e: i64) -> i64 {
    let from = covered.partition_point(|c| c.1 <= s);
    covered[from..]
        .iter()
        .take_while(|c| c.0 < e)
        .map(|c| c.1.min(e) - c.0.max(s))
        .filter(|d| *d > 0)
        .sum()
}

fn inside(covered: &[(i64, i64)], t: i64) -> bool {
    let from = covered.partition_point(|c| c.1 <= t);
    covered.get(from).is_some_and(|c| c.0 <= t && t < c.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(start: i64, dur: u32, value: f64, source: u16) -> Interval {
        Interval {
            start,
            value,
            dur,
            source,
            unit: 0,
        }
    }

    #[test]
    fn watch_wins_over_iphone_and_partial_overlaps_count_pro_rata() {
        // source 0 = Watch, 1 = iPhone, 2 = a third-party app.
        let rank = |s: u16| (s as u8, s);
        let mut items = vec![
            iv(0, 600, 1000.0, 0),    // Watch 00:00-00:10
            iv(120, 300, 400.0, 1),   // iPhone inside the Watch interval: dropped
            iv(300, 600, 600.0, 1),   // iPhone 00:05-00:15: half uncovered -> 300
            iv(3600, 600, 500.0, 1),  // iPhone alone: kept
            iv(3600, 1200, 800.0, 2), // app: first half under iPhone -> 400
            iv(100, 0, 7.0, 2),       // instant under Watch: dropped
            iv(9000, 0, 5.0, 2),      // instant uncovered: kept
        ];
        let total = dedup_total(&mut items, rank, |_| 1.0);
        assert_eq!(total, 1000.0 + 300.0 + 500.0 + 400.0 + 5.0);
    }

    #[test]
    fn one_source_never_cancels_itself() {
        let mut items = vec![iv(0, 600, 10.0, 3), iv(0, 600, 20.0, 3)];
        assert_eq!(dedup_total(&mut items, |s| (2, s), |_| 1.0), 30.0);
    }
}
