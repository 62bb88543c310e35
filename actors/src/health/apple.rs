//! Apple Health `export.xml`: a quick-xml pull parser over a reused buffer, raw attribute values
//! (unescaped only for `unit` and `sourceName` when they contain `&`). Tolerates the iOS 16
//! broken DTD, `\x0b` in attributes and typographic apostrophes; counts a Record listed both
//! inside a Correlation and at top level once; fails on truncation with the byte offset.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::io::{BufReader, Read};

use quick_xml::errors::{Error as XmlError, SyntaxError};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::health::collect::{Collector, Reading, SleepStage};
use crate::health::error::{ParseError, Position};
use crate::health::time::{parse_stamp, Stamp};
use crate::health::units::conversion;
use crate::health::zip::ZipFailure;
use crate::health::{Format, Limits, ParsedFile};

const READ_BUFFER_BYTES: usize = 256 * 1024;
const BP_SYSTOLIC: &str = "HKQuantityTypeIdentifierBloodPressureSystolic";
const BP_DIASTOLIC: &str = "HKQuantityTypeIdentifierBloodPressureDiastolic";

#[derive(Default)]
struct Corr {
    blood_pressure: bool,
    start: Option<Stamp>,
    systolic: Option<f64>,
    diastolic: Option<f64>,
}

#[derive(Default)]
struct Workout {
    kind: String,
    duration_min: f64,
    energy_kcal: Option<f64>,
    distance_km: Option<f64>,
    stats_energy: f64,
    stats_distance: f64,
}

#[derive(Default)]
struct State {
    depth: u32,
    root_seen: bool,
    corr: Option<Corr>,
    workout: Option<Workout>,
}

/// Parses an export.xml stream.
pub(crate) fn parse<R: Read>(
    input: R,
    limits: &Limits,
    format: Format,
) -> Result<ParsedFile, ParseError> {
    let label = format.label();
    let mut reader = Reader::from_reader(BufReader::with_capacity(READ_BUFFER_BYTES, input));
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.check_comments = false;
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut c = Collector::new(format, limits);
    let mut st = State::default();
    loop {
        let event = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(e) => return Err(xml_error(e, reader.error_position(), label)),
        };
        let pos = reader.buffer_position();
        match event {
            Event::Start(e) => {
                st.depth += 1;
                on_start(&e, pos, &mut st, &mut c, label)?;
            }
            Event::Empty(e) => {
                on_start(&e, pos, &mut st, &mut c, label)?;
                on_end(e.name().as_ref(), &mut st, &mut c);
            }
            Event::End(e) => {
                st.depth = st.depth.saturating_sub(1);
                on_end(e.name().as_ref(), &mut st, &mut c);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let end = Position::Byte(reader.buffer_position());
    if !st.root_seen {
        return Err(ParseError::Corrupt {
            format: label,
            position: end,
            detail: "no <HealthData> element".into(),
        });
    }
    if st.depth > 0 {
        return Err(ParseError::Truncated {
            format: label,
            position: end,
            detail: format!(
                "{} elements are still open, <HealthData> is never closed",
                st.depth
            ),
        });
    }
    Ok(c.finish())
}

fn xml_error(e: XmlError, at: u64, label: &'static str) -> ParseError {
    let position = Position::Byte(at);
    match e {
        XmlError::Io(io) => {
            if let Some(z) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<ZipFailure>())
            {
                return z.to_error(at);
            }
            if io.kind() == std::io::ErrorKind::UnexpectedEof {
                return ParseError::Truncated {
                    format: label,
                    position,
                    detail: io.to_string(),
                };
            }
            ParseError::Io {
                offset: at,
                source: std::io::Error::new(io.kind(), io.to_string()),
            }
        }
        XmlError::Syntax(
            s @ (SyntaxError::UnclosedTag
            | SyntaxError::UnclosedComment
            | SyntaxError::UnclosedCData
            | SyntaxError::UnclosedDoctype
            | SyntaxError::UnclosedPI
            | SyntaxError::UnclosedXmlDecl
            | SyntaxError::UnclosedSingleQuotedAttributeValue
            | SyntaxError::UnclosedDoubleQuotedAttributeValue
            | SyntaxError::InvalidBangMarkup),
        ) => ParseError::Truncated {
            format: label,
            position,
            detail: s.to_string(),
        },
        other => ParseError::Corrupt {
            format: label,
            position,
            detail: other.to_string(),
        },
    }
}

fn unescaped(raw: Cow<'_, str>) -> Cow<'_, str> {
    if !raw.contains('&') {
        return raw;
    }
    match quick_xml::escape::unescape(&raw) {
        Ok(s) => Cow::Owned(s.into_owned()),
        Err(_) => raw,
    }
}

fn on_start(
    e: &BytesStart<'_>,
    pos: u64,
    st: &mut State,
    c: &mut Collector<'_>,
    label: &'static str,
) -> Result<(), ParseError> {
    let name = e.name();
    let name = name.as_ref();
    if !st.root_seen {
        if name != "HealthData" {
            return Err(ParseError::Corrupt {
                format: label,
                position: Position::Byte(pos),
                detail: format!("the root element is <{name}>, not <HealthData>"),
            });
        }
        st.root_seen = true;
        return Ok(());
    }
    match name {
        "Record" => on_record(e, pos, st, c),
        "Correlation" => {
            let mut corr = Corr::default();
            for a in e.attributes().with_checks(false).flatten() {
                match a.key.as_ref() {
                    "type" => {
                        corr.blood_pressure = a.value == "HKCorrelationTypeIdentifierBloodPressure"
                    }
                    "startDate" => corr.start = parse_stamp(a.value.as_bytes()),
                    _ => {}
                }
            }
            st.corr = Some(corr);
            Ok(())
        }
        "Workout" => {
            st.workout = Some(workout_attrs(e));
            Ok(())
        }
        "WorkoutStatistics" => {
            if let Some(w) = st.workout.as_mut() {
                workout_stat(e, w);
            }
            Ok(())
        }
        "ActivitySummary" => {
            c.activity_summaries += 1;
            c.record();
            Ok(())
        }
        _ => Ok(()),
    }
}

fn on_end(name: &str, st: &mut State, c: &mut Collector<'_>) {
    match name {
        "Correlation" => {
            if let Some(Corr {
                blood_pressure: true,
                start: Some(at),
                systolic: Some(s),
                diastolic: Some(d),
            }) = st.corr.take()
            {
                c.bp_pair(at, s, d);
            }
        }
        "Workout" => {
            if let Some(w) = st.workout.take() {
                let energy = w.energy_kcal.unwrap_or(w.stats_energy);
                let distance = w.distance_km.unwrap_or(w.stats_distance);
                c.workout(&w.kind, w.duration_min, energy, distance);
                c.record();
            }
        }
        _ => {}
    }
}

fn convert(value: f64, from: &str, to: &str) -> Option<f64> {
    conversion(from, to, false).map(|(a, b)| a * value + b)
}

fn workout_attrs(e: &BytesStart<'_>) -> Workout {
    let mut w = Workout::default();
    let (mut dur, mut dur_u) = (None, Cow::Borrowed("min"));
    let (mut dist, mut dist_u) = (None, Cow::Borrowed("km"));
    let (mut en, mut en_u) = (None, Cow::Borrowed("kcal"));
    for a in e.attributes().with_checks(false).flatten() {
        match a.key.as_ref() {
            "workoutActivityType" => {
                w.kind = a
                    .value
                    .strip_prefix("HKWorkoutActivityType")
                    .unwrap_or(&a.value)
                    .to_owned();
            }
            "duration" => dur = a.value.trim().parse::<f64>().ok(),
            "durationUnit" => dur_u = a.value,
            "totalDistance" => dist = a.value.trim().parse::<f64>().ok(),
            "totalDistanceUnit" => dist_u = a.value,
            "totalEnergyBurned" => en = a.value.trim().parse::<f64>().ok(),
            "totalEnergyBurnedUnit" => en_u = a.value,
            _ => {}
        }
    }
    w.duration_min = dur.and_then(|d| convert(d, &dur_u, "min")).unwrap_or(0.0);
    w.distance_km = dist.and_then(|d| convert(d, &dist_u, "km"));
    w.energy_kcal = en.and_then(|d| convert(d, &en_u, "kcal"));
    w
}

fn workout_stat(e: &BytesStart<'_>, w: &mut Workout) {
    let (mut kind, mut sum, mut unit) = (Cow::Borrowed(""), None, Cow::Borrowed(""));
    for a in e.attributes().with_checks(false).flatten() {
        match a.key.as_ref() {
            "type" => kind = a.value,
            "sum" => sum = a.value.trim().parse::<f64>().ok(),
            "unit" => unit = a.value,
            _ => {}
        }
    }
    let Some(sum) = sum else { return };
    let kind = kind
        .strip_prefix("HKQuantityTypeIdentifier")
        .unwrap_or(&kind);
    if kind == "ActiveEnergyBurned" {
        w.stats_energy += convert(sum, &unit, "kcal").unwrap_or(0.0);
    } else if kind.starts_with("Distance") {
        w.stats_distance += convert(sum, &unit, "km").unwrap_or(0.0);
    }
}

fn sleep_stage(value: &str) -> Option<SleepStage> {
    Some(match value.strip_prefix("HKCategoryValueSleepAnalysis")? {
        "InBed" => SleepStage::InBed,
        "Asleep" | "AsleepUnspecified" => SleepStage::Unspecified,
        "AsleepCore" => SleepStage::Core,
        "AsleepDeep" => SleepStage::Deep,
        "AsleepREM" => SleepStage::Rem,
        "Awake" => SleepStage::Awake,
        _ => return None,
    })
}

fn on_record(
    e: &BytesStart<'_>,
    pos: u64,
    st: &mut State,
    c: &mut Collector<'_>,
) -> Result<(), ParseError> {
    let (mut kind, mut unit, mut value) = (Cow::Borrowed(""), Cow::Borrowed(""), Cow::Borrowed(""));
    let (mut start, mut end) = (Cow::Borrowed(""), Cow::Borrowed(""));
    let (mut source, mut device) = (Cow::Borrowed(""), Cow::Borrowed(""));
    for a in e.attributes().with_checks(false) {
        let Ok(a) = a else {
            return c.skip(
                Position::Byte(pos),
                "malformed attribute",
                e.attributes_raw().as_bytes(),
            );
        };
        match a.key.as_ref() {
            "type" => kind = a.value,
            "unit" => unit = a.value,
            "value" => value = a.value,
            "startDate" => start = a.value,
            "endDate" => end = a.value,
            "sourceName" => source = a.value,
            "device" => device = a.value,
            _ => {}
        }
    }
    let sample = || e.attributes_raw().as_bytes();
    if kind.is_empty() {
        return c.skip(Position::Byte(pos), "Record without type", sample());
    }
    let Some(t0) = parse_stamp(start.as_bytes()) else {
        return c.skip(Position::Byte(pos), "unreadable startDate", sample());
    };
    let t1 = parse_stamp(end.as_bytes());
    if kind.starts_with("HKCategoryTypeIdentifier") {
        if &*kind == "HKCategoryTypeIdentifierSleepAnalysis" {
            match (sleep_stage(&value), t1) {
                (Some(stage), Some(t1)) => c.sleep(stage, t0, t1),
                _ => {
                    return c.skip(
                        Position::Byte(pos),
                        "unknown sleep value or endDate",
                        sample(),
                    )
                }
            }
        } else {
            *c.categories.entry(kind.to_string()).or_default() += 1;
        }
        c.record();
        return Ok(());
    }
    let Ok(mut x) = value.trim().parse::<f64>() else {
        return c.skip(Position::Byte(pos), "non-numeric value", sample());
    };
    if !x.is_finite() {
        return c.skip(Position::Byte(pos), "non-finite value", sample());
    }
    let unit = unescaped(unit);
    if unit == "%" {
        // Apple writes percentages as fractions (SpO2 0.97); report them as percent.
        x *= 100.0;
    }
    if let Some(corr) = st.corr.as_mut() {
        if corr.blood_pressure {
            match &*kind {
                BP_SYSTOLIC => corr.systolic = Some(x),
                BP_DIASTOLIC => corr.diastolic = Some(x),
                _ => {}
            }
        }
    }
    if (kind.starts_with("HKQuantityTypeIdentifierBloodPressure")
        || kind.starts_with("HKQuantityTypeIdentifierDietary"))
        && !c.first_sighting(
            foldhash::fast::FixedState::default()
                .hash_one((&*kind, &*source, &*start, &*end, &*value)),
        )
    {
        return Ok(());
    }
    let source = unescaped(source);
    c.reading(Reading {
        metric: &kind,
        unit: &unit,
        value: x,
        start: t0,
        end: t1,
        source: &source,
        device: &device,
    });
    c.record();
    Ok(())
}
