//! What the health tools show: the compact Markdown summary (also the resource and the Dust
//! fragment), `health_summary`'s structuredContent and its schema, and period arithmetic.

use serde_json::{json, Value};

use crate::store::{civil_from_days, days_from_civil, FileRecord, Period, SeriesPoint};

/// Most metric rows in the Markdown summary.
const MAX_METRIC_ROWS: usize = 60;

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn arr(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// `health_summary`'s structuredContent.
pub fn structured(rec: &FileRecord) -> Value {
    let s = rec.summary.clone().unwrap_or(Value::Null);
    let metrics: Vec<Value> = arr(&s, "metrics")
        .iter()
        .map(|m| {
            json!({
                "type": m["type"], "name": m["name"], "unit": m["unit"], "count": m["count"],
                "min": m["min"], "max": m["max"], "mean": m["mean"], "stddev": m["stddev"],
                "first": m["first"], "last": m["last"],
            })
        })
        .collect();
    json!({
        "file_id": rec.id,
        "format": rec.format,
        "records": rec.records,
        "skipped": rec.skipped,
        "metrics": metrics,
        "days": s.get("days").cloned().unwrap_or(json!(0)),
        "workouts": arr(&s, "workouts"),
        "warnings": rec.warnings,
    })
}

/// JSON Schema of [`structured`].
pub fn summary_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "file_id": {"type": "string"},
            "format": {"type": "string"},
            "records": {"type": "integer"},
            "skipped": {"type": "integer"},
            "metrics": {"type": "array", "items": {"type": "object", "properties": {
                "type": {"type": "string"}, "name": {"type": "string"}, "unit": {"type": "string"},
                "count": {"type": "integer"}, "min": {"type": "number"}, "max": {"type": "number"},
                "mean": {"type": "number"}, "stddev": {"type": "number"},
                "first": {"type": "string"}, "last": {"type": "string"}
            }, "required": ["type", "name", "unit", "count", "min", "max", "mean", "stddev", "first", "last"]}},
            "days": {"type": "integer"},
            "workouts": {"type": "array", "items": {"type": "object"}},
            "warnings": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["file_id", "format", "records", "skipped", "metrics", "days", "workouts", "warnings"]
    })
}

/// The compact Markdown summary: never raw records, bounded in size.
pub fn markdown(rec: &FileRecord) -> String {
    let s = rec.summary.clone().unwrap_or(Value::Null);
    let mut out = format!(
        "# Health file {} ({})\n\nfile_id `{}`, {} bytes, uploaded {}.\n{} records used, {} skipped, {} days with readings.\n",
        rec.name, rec.format, rec.id, rec.bytes, rec.created_at, rec.records, rec.skipped,
        num(&s["days"])
    );
    let metrics = arr(&s, "metrics");
    if !metrics.is_empty() {
        out.push_str("\n## Metrics\n\n| metric | unit | count | min | mean | max | stddev | first | last |\n|---|---|---|---|---|---|---|---|---|\n");
        for m in metrics.iter().take(MAX_METRIC_ROWS) {
            out.push_str(&format!(
                "| {} (`{}`) | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                m["name"].as_str().unwrap_or(""),
                m["type"].as_str().unwrap_or(""),
                m["unit"].as_str().unwrap_or(""),
                num(&m["count"]),
                fmt_num(num(&m["min"])),
                fmt_num(num(&m["mean"])),
                fmt_num(num(&m["max"])),
                fmt_num(num(&m["stddev"])),
                m["first"].as_str().unwrap_or(""),
                m["last"].as_str().unwrap_or(""),
            ));
        }
        if metrics.len() > MAX_METRIC_ROWS {
            out.push_str(&format!(
                "\n({} more metrics in structuredContent)\n",
                metrics.len() - MAX_METRIC_ROWS
            ));
        }
    }
    let dedup = arr(&s, "dedup");
    if !dedup.is_empty() {
        out.push_str("\n## Totals of cumulative metrics (overlapping sources counted once)\n\n");
        for d in &dedup {
            out.push_str(&format!(
                "- `{}`: {} {} (raw sum over all sources {})\n",
                d["type"].as_str().unwrap_or(""),
                fmt_num(num(&d["dedup_total"])),
                d["unit"].as_str().unwrap_or(""),
                fmt_num(num(&d["raw_total"]))
            ));
        }
    }
    let workouts = arr(&s, "workouts");
    if !workouts.is_empty() {
        out.push_str("\n## Workouts\n\n");
        for w in &workouts {
            out.push_str(&format!(
                "- {}: {} workouts, {} min, {} kcal, {} km\n",
                w["type"].as_str().unwrap_or(""),
                num(&w["count"]),
                fmt_num(num(&w["duration_min"])),
                fmt_num(num(&w["energy_kcal"])),
                fmt_num(num(&w["distance_km"]))
            ));
        }
    }
    let sleep = arr(&s, "sleep");
    if !sleep.is_empty() {
        let asleep: f64 = sleep.iter().map(|n| num(&n["asleep_min"])).sum();
        out.push_str(&format!(
            "\n## Sleep\n\n{} nights, {} h asleep per night on average.\n",
            sleep.len(),
            fmt_num(asleep / sleep.len() as f64 / 60.0)
        ));
    }
    let bp = &s["blood_pressure"];
    if num(&bp["pairs"]) > 0.0 {
        out.push_str(&format!(
            "\n## Blood pressure\n\n{} readings, mean {}/{} mmHg.\n",
            num(&bp["pairs"]),
            fmt_num(num(&bp["systolic_mean"])),
            fmt_num(num(&bp["diastolic_mean"]))
        ));
    }
    let gki = arr(&s, "gki");
    if !gki.is_empty() {
        let mean = gki.iter().map(|g| num(&g["gki"])).sum::<f64>() / gki.len() as f64;
        out.push_str(&format!(
            "\n## Glucose-ketone index\n\n{} paired readings, mean GKI {}.\n",
            gki.len(),
            fmt_num(mean)
        ));
    }
    let labs = arr(&s, "labs");
    if !labs.is_empty() {
        let flagged = |f: &str| labs.iter().filter(|l| l["flag"] == f).count();
        out.push_str(&format!(
            "\n## Lab results\n\n{} results: {} low, {} normal, {} high, {} without a range.\n",
            labs.len(),
            flagged("low"),
            flagged("normal"),
            flagged("high"),
            flagged("unknown")
        ));
    }
    if !rec.warnings.is_empty() {
        out.push_str("\n## Warnings\n\n");
        for w in rec.warnings.iter().take(20) {
            out.push_str(&format!("- {w}\n"));
        }
    }
    out
}

/// A series as a Markdown table (the first `rows` points).
pub fn series_table(points: &[SeriesPoint], rows: usize) -> String {
    let mut out =
        String::from("| start | count | sum | min | mean | max |\n|---|---|---|---|---|---|\n");
    for p in points.iter().take(rows) {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            p.start,
            p.count,
            fmt_num(p.dedup_total.unwrap_or(p.sum)),
            fmt_num(p.min),
            fmt_num(p.mean),
            fmt_num(p.max)
        ));
    }
    out
}

/// Parses `YYYY-MM-DD` into a day number.
pub fn parse_day(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i64 = s[0..4].parse().ok()?;
    let m: u32 = s[5..7].parse().ok()?;
    let d: u32 = s[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let n = days_from_civil(y, m, d);
    (civil_from_days(n) == (y, m, d)).then_some(n)
}

/// `YYYY-MM-DD` of a day number.
pub fn format_day(n: i64) -> String {
    let (y, m, d) = civil_from_days(n);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The start of the period containing `day` (ISO weeks start on Monday).
pub fn period_start(period: Period, day: i64) -> i64 {
    match period {
        Period::Day => day,
        // 1970-01-01 was a Thursday: Monday-based weekday is (n + 3) mod 7.
        Period::Week => day - (day + 3).rem_euclid(7),
        Period::Month => {
            let (y, m, _) = civil_from_days(day);
            days_from_civil(y, m, 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_on_monday_and_the_first_of_the_month() {
        let d = parse_day("2024-02-29").unwrap();
        assert_eq!(format_day(period_start(Period::Week, d)), "2024-02-26");
        assert_eq!(format_day(period_start(Period::Month, d)), "2024-02-01");
        assert_eq!(parse_day("2023-02-29"), None);
        assert_eq!(parse_day("2024-2-1"), None);
    }
}
