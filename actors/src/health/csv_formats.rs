//! Keto-Mojo CSV (UTF-8 BOM, preamble lines before the header; glucose and ketone readings,
//! paired into GKI) and lab-result CSV (columns found by header name, values flagged against
//! their reference range). Both read `ByteRecord`s into one reused record.

use std::io::Read;

use csv::{ByteRecord, ReaderBuilder};

use crate::health::collect::{Collector, Reading};
use crate::health::error::{ParseError, Position};
use crate::health::finish::glucose_mmol;
use crate::health::summary::{Flag, LabResult};
use crate::health::time::parse_stamp;
use crate::health::{Format, Limits, ParsedFile};

/// Header rows are looked for in the first lines only.
const MAX_PREAMBLE_LINES: u64 = 20;

/// Lower-cased header with the BOM, spaces, `_`, `-` and `#` removed.
pub(crate) fn normalise_header(raw: &[u8]) -> String {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    String::from_utf8_lossy(raw)
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Column indexes of a lab CSV.
pub(crate) struct LabCols {
    test: usize,
    value: usize,
    unit: Option<usize>,
    range: Option<usize>,
    date: Option<usize>,
    loinc: Option<usize>,
}

fn col(cols: &[String], names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| cols.iter().position(|c| c == n))
}

/// Finds the lab columns by name; `None` unless at least test and value are there.
pub(crate) fn lab_columns(cols: &[String]) -> Option<LabCols> {
    Some(LabCols {
        test: col(
            cols,
            &[
                "test",
                "testname",
                "name",
                "analyte",
                "component",
                "description",
            ],
        )?,
        value: col(
            cols,
            &["value", "result", "resultvalue", "observationvalue"],
        )?,
        unit: col(cols, &["unit", "units", "uom"]),
        range: col(
            cols,
            &[
                "referencerange",
                "refrange",
                "range",
                "reference",
                "normalrange",
                "referenceinterval",
            ],
        ),
        date: col(
            cols,
            &[
                "date",
                "collected",
                "collectiondate",
                "datecollected",
                "collecteddate",
                "resultdate",
                "effectivedate",
                "datetime",
                "time",
            ],
        ),
        loinc: col(cols, &["loinc", "loinccode", "code"]),
    })
}

fn field(rec: &ByteRecord, i: Option<usize>) -> &[u8] {
    i.and_then(|i| rec.get(i))
        .map_or(&[][..], |f| f.trim_ascii())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn number(b: &[u8]) -> Option<f64> {
    std::str::from_utf8(b)
        .ok()?
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
}

/// Parses a reference range: `a-b`, `a – b`, `<b`, `<=b`, `≤b`, `>a`, `>=a`, `≥a`.
pub(crate) fn parse_range(raw: &str) -> (Option<f64>, Option<f64>) {
    let s = raw.trim();
    let num = |t: &str| t.trim().trim_start_matches('=').trim().parse::<f64>().ok();
    if let Some(r) = s.strip_prefix('<').or_else(|| s.strip_prefix('≤')) {
        return (None, num(r));
    }
    if let Some(r) = s.strip_prefix('>').or_else(|| s.strip_prefix('≥')) {
        return (num(r), None);
    }
    // Split on the dash that separates two numbers (not a leading minus sign).
    for sep in ['–', '—', '-'] {
        if let Some(i) = s
            .char_indices()
            .skip(1)
            .find(|(_, c)| *c == sep)
            .map(|(i, _)| i)
        {
            let (a, b) = (&s[..i], &s[i + sep.len_utf8()..]);
            if let (Some(a), Some(b)) = (num(a), num(b)) {
                return (Some(a), Some(b));
            }
        }
    }
    (None, None)
}

/// Where `value` lies against `[low, high]` (bounds included).
pub(crate) fn flag(value: f64, low: Option<f64>, high: Option<f64>) -> Flag {
    match (low, high) {
        (None, None) => Flag::Unknown,
        (Some(l), _) if value < l => Flag::Low,
        (_, Some(h)) if value > h => Flag::High,
        _ => Flag::Normal,
    }
}

fn csv_error(e: csv::Error, format: Format) -> ParseError {
    let position = e
        .position()
        .map_or(Position::Byte(0), |p| Position::Line(p.line()));
    match e.into_kind() {
        csv::ErrorKind::Io(source) => ParseError::Io { offset: 0, source },
        other => ParseError::Corrupt {
            format: format.label(),
            position,
            detail: format!("{other:?}"),
        },
    }
}

/// Reads records until the header (a record for which `accept` finds the columns).
fn read_header<R: Read, T>(
    rdr: &mut csv::Reader<R>,
    rec: &mut ByteRecord,
    format: Format,
    what: &str,
    accept: impl Fn(&[String]) -> Option<T>,
) -> Result<T, ParseError> {
    loop {
        if !rdr
            .read_byte_record(rec)
            .map_err(|e| csv_error(e, format))?
        {
            return Err(ParseError::Corrupt {
                format: format.label(),
                position: Position::Line(rec.position().map_or(1, |p| p.line())),
                detail: format!("no header row with {what}"),
            });
        }
        let cols: Vec<String> = rec.iter().map(normalise_header).collect();
        if let Some(t) = accept(&cols) {
            return Ok(t);
        }
        if rec
            .position()
            .is_some_and(|p| p.line() > MAX_PREAMBLE_LINES)
        {
            return Err(ParseError::Corrupt {
                format: format.label(),
                position: Position::Line(MAX_PREAMBLE_LINES),
                detail: format!(
                    "no header row with {what} in the first {MAX_PREAMBLE_LINES} lines"
                ),
            });
        }
    }
}

fn reader<R: Read>(input: R) -> csv::Reader<R> {
    ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(input)
}

fn check_len(rec: &ByteRecord, limits: &Limits, format: Format) -> Result<(), ParseError> {
    if rec.as_slice().len() > limits.max_line_bytes {
        return Err(ParseError::LineTooLong {
            format: format.label(),
            position: Position::Line(rec.position().map_or(0, |p| p.line())),
            limit: limits.max_line_bytes,
        });
    }
    Ok(())
}

/// Parses a Keto-Mojo export.
pub(crate) fn parse_keto_mojo<R: Read>(
    input: R,
    limits: &Limits,
) -> Result<ParsedFile, ParseError> {
    let format = Format::KetoMojoCsv;
    let mut rdr = reader(input);
    let mut rec = ByteRecord::new();
    let (ty, ts, val, unit) = read_header(
        &mut rdr,
        &mut rec,
        format,
        "reading_type and reading_value",
        |c| {
            Some((
                col(c, &["readingtype"])?,
                col(c, &["readingtimestamp"])?,
                col(c, &["readingvalue"])?,
                col(c, &["readingunit"])?,
            ))
        },
    )?;
    let mut c = Collector::new(format, limits);
    c.name_metric("blood_ketone", "Blood ketone (β-hydroxybutyrate)");
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(e, format))?
    {
        check_len(&rec, limits, format)?;
        let pos = Position::Line(rec.position().map_or(0, |p| p.line()));
        if rec.iter().all(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        let kind = field(&rec, Some(ty)).to_ascii_lowercase();
        let Some(at) = parse_stamp(field(&rec, Some(ts))) else {
            c.skip(pos, "unreadable reading_timestamp", rec.as_slice())?;
            continue;
        };
        let Some(x) = number(field(&rec, Some(val))) else {
            c.skip(pos, "non-numeric reading_value", rec.as_slice())?;
            continue;
        };
        let u = text(field(&rec, Some(unit)));
        let (metric, mmol) = if kind.windows(7).any(|w| w == b"glucose") {
            ("HKQuantityTypeIdentifierBloodGlucose", glucose_mmol(x, &u))
        } else if kind.windows(6).any(|w| w == b"ketone") {
            (
                "blood_ketone",
                (u.eq_ignore_ascii_case("mmol/L")).then_some(x),
            )
        } else {
            c.skip(
                pos,
                "reading_type is neither glucose nor ketone",
                rec.as_slice(),
            )?;
            continue;
        };
        let Some(mmol) = mmol else {
            c.skip(pos, "unknown reading_unit", rec.as_slice())?;
            continue;
        };
        if metric == "blood_ketone" {
            c.gki_ketone.push((at, mmol));
        } else {
            c.gki_glucose.push((at.utc, mmol));
        }
        c.reading(Reading {
            metric,
            unit: &u,
            value: x,
            start: at,
            end: None,
            source: "Keto-Mojo",
            device: "",
        });
        c.record();
    }
    Ok(c.finish())
}

/// Parses a lab-result CSV.
pub(crate) fn parse_lab<R: Read>(input: R, limits: &Limits) -> Result<ParsedFile, ParseError> {
    let format = Format::LabCsv;
    let mut rdr = reader(input);
    let mut rec = ByteRecord::new();
    let cols = read_header(
        &mut rdr,
        &mut rec,
        format,
        "test and value columns",
        lab_columns,
    )?;
    let mut c = Collector::new(format, limits);
    while rdr
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(e, format))?
    {
        check_len(&rec, limits, format)?;
        let pos = Position::Line(rec.position().map_or(0, |p| p.line()));
        if rec.iter().all(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        let name = text(field(&rec, Some(cols.test)));
        let loinc = text(field(&rec, cols.loinc));
        if name.is_empty() && loinc.is_empty() {
            c.skip(pos, "no test name", rec.as_slice())?;
            continue;
        }
        let Some(x) = number(field(&rec, Some(cols.value))) else {
            c.skip(pos, "non-numeric value", rec.as_slice())?;
            continue;
        };
        let Some(at) = parse_stamp(field(&rec, cols.date)) else {
            c.skip(
                pos,
                "unreadable date (expected YYYY-MM-DD[THH:MM[:SS][offset]])",
                rec.as_slice(),
            )?;
            continue;
        };
        let unit = text(field(&rec, cols.unit));
        let kind = if loinc.is_empty() {
            name.clone()
        } else {
            loinc
        };
        let (low, high) = parse_range(&text(field(&rec, cols.range)));
        c.name_metric(&kind, &name);
        c.reading(Reading {
            metric: &kind,
            unit: &unit,
            value: x,
            start: at,
            end: None,
            source: "lab",
            device: "",
        });
        c.lab(LabResult {
            kind: kind.clone(),
            name,
            value: x,
            unit,
            time: at.to_string(),
            low,
            high,
            flag: flag(x, low, high),
        });
        c.record();
    }
    Ok(c.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_ranges_in_common_spellings() {
        assert_eq!(parse_range("70-99"), (Some(70.0), Some(99.0)));
        assert_eq!(parse_range("3.5 – 5.0"), (Some(3.5), Some(5.0)));
        assert_eq!(parse_range("<200"), (None, Some(200.0)));
        assert_eq!(parse_range(">= 40"), (Some(40.0), None));
        assert_eq!(parse_range("-1-1"), (Some(-1.0), Some(1.0)));
        assert_eq!(parse_range("see note"), (None, None));
        assert_eq!(flag(100.0, Some(70.0), Some(99.0)), Flag::High);
        assert_eq!(flag(99.0, Some(70.0), Some(99.0)), Flag::Normal);
        assert_eq!(flag(30.0, Some(40.0), None), Flag::Low);
    }
}
