//! FHIR R4: a `Bundle` streamed entry by entry through a serde visitor (never a whole-file
//! `Value`), and NDJSON with one resource per line read into a reused buffer. Each resource is
//! deserialised into small typed structs; Observations with `valueQuantity` or quantity
//! `component`s become readings, `referenceRange` gives lab flags, BP panels give pairs.

use std::fmt;
use std::io::{BufRead, BufReader, Read};

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::health::collect::{Collector, Reading};
use crate::health::csv_formats::flag;
use crate::health::error::{ParseError, Position};
use crate::health::summary::LabResult;
use crate::health::time::parse_stamp;
use crate::health::{Format, Limits, ParsedFile};

const LOINC: &str = "http://loinc.org";

#[derive(Deserialize, Default)]
struct Coding {
    system: Option<String>,
    code: Option<String>,
    display: Option<String>,
}

#[derive(Deserialize, Default)]
struct Concept {
    #[serde(default)]
    coding: Vec<Coding>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct Quantity {
    value: Option<f64>,
    unit: Option<String>,
    code: Option<String>,
}

#[derive(Deserialize)]
struct Range {
    low: Option<Quantity>,
    high: Option<Quantity>,
}

#[derive(Deserialize)]
struct Period {
    start: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Component {
    code: Option<Concept>,
    value_quantity: Option<Quantity>,
    #[serde(default)]
    reference_range: Vec<Range>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Resource {
    resource_type: Option<String>,
    code: Option<Concept>,
    effective_date_time: Option<String>,
    effective_period: Option<Period>,
    issued: Option<String>,
    value_quantity: Option<Quantity>,
    #[serde(default)]
    component: Vec<Component>,
    #[serde(default)]
    reference_range: Vec<Range>,
}

#[derive(Deserialize)]
struct Entry {
    resource: Option<Resource>,
}

/// (type, name) of a concept: its LOINC coding if any, else its first coding, else its text.
fn identify(c: &Concept) -> Option<(String, String)> {
    let pick = c
        .coding
        .iter()
        .find(|k| k.system.as_deref() == Some(LOINC) && k.code.is_some())
        .or_else(|| c.coding.iter().find(|k| k.code.is_some()));
    let name = |k: Option<&Coding>| {
        k.and_then(|k| k.display.clone())
            .or_else(|| c.text.clone())
            .unwrap_or_default()
    };
    match pick {
        Some(k) => Some((k.code.clone().unwrap_or_default(), name(Some(k)))),
        None => c.text.clone().map(|t| (t.clone(), t)),
    }
}

fn observe(c: &mut Collector<'_>, r: Resource, pos: Position) -> Result<(), ParseError> {
    let kind = r.resource_type.as_deref().unwrap_or("(no resourceType)");
    if kind != "Observation" {
        c.ignore(kind);
        return Ok(());
    }
    let when = r
        .effective_date_time
        .as_deref()
        .or(r.effective_period.as_ref().and_then(|p| p.start.as_deref()))
        .or(r.issued.as_deref());
    let Some(at) = when.and_then(|w| parse_stamp(w.as_bytes())) else {
        return c.skip(pos, "Observation without a readable effective time", b"");
    };
    let mut parts: Vec<(Option<Concept>, Option<Quantity>, Vec<Range>)> = Vec::new();
    parts.push((r.code, r.value_quantity, r.reference_range));
    parts.extend(
        r.component
            .into_iter()
            .map(|k| (k.code, k.value_quantity, k.reference_range)),
    );
    let mut used = 0;
    let (mut sys, mut dia) = (None, None);
    for (code, q, ranges) in parts {
        let (Some(code), Some(q)) = (code, q) else {
            continue;
        };
        let (Some((id, name)), Some(v)) = (identify(&code), q.value.filter(|v| v.is_finite()))
        else {
            continue;
        };
        let unit = q.unit.or(q.code).unwrap_or_default();
        match id.as_str() {
            "8480-6" => sys = Some(v),
            "8462-4" => dia = Some(v),
            _ => {}
        }
        c.name_metric(&id, &name);
        c.reading(Reading {
            metric: &id,
            unit: &unit,
            value: v,
            start: at,
            end: None,
            source: "fhir",
            device: "",
        });
        if let Some(range) = ranges.first() {
            let low = range.low.as_ref().and_then(|q| q.value);
            let high = range.high.as_ref().and_then(|q| q.value);
            c.lab(LabResult {
                kind: id,
                name,
                value: v,
                unit,
                time: at.to_string(),
                low,
                high,
                flag: flag(v, low, high),
            });
        }
        used += 1;
    }
    if let (Some(s), Some(d)) = (sys, dia) {
        c.bp_pair(at, s, d);
    }
    if used == 0 {
        return c.skip(pos, "Observation without a numeric valueQuantity", b"");
    }
    c.record();
    Ok(())
}

fn json_error(e: serde_json::Error, format: Format) -> ParseError {
    let position = Position::LineColumn(e.line() as u64, e.column() as u64);
    match e.classify() {
        serde_json::error::Category::Eof => ParseError::Truncated {
            format: format.label(),
            position,
            detail: e.to_string(),
        },
        serde_json::error::Category::Io => ParseError::Io {
            offset: 0,
            source: std::io::Error::other(e.to_string()),
        },
        _ => ParseError::Corrupt {
            format: format.label(),
            position,
            detail: e.to_string(),
        },
    }
}

// === Bundle: a visitor over the top-level map that streams `entry` ===

struct BundleSeed<'c, 'l> {
    c: &'c mut Collector<'l>,
    failure: &'c mut Option<ParseError>,
}

impl<'de> DeserializeSeed<'de> for BundleSeed<'_, '_> {
    type Value = Option<String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for BundleSeed<'_, '_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a FHIR Bundle object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut resource_type = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "resourceType" => resource_type = Some(map.next_value::<String>()?),
                "entry" => map.next_value_seed(EntriesSeed {
                    c: &mut *self.c,
                    failure: &mut *self.failure,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(resource_type)
    }
}

struct EntriesSeed<'c, 'l> {
    c: &'c mut Collector<'l>,
    failure: &'c mut Option<ParseError>,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of Bundle entries")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0u64;
        while let Some(entry) = seq.next_element::<Entry>()? {
            index += 1;
            let Some(resource) = entry.resource else {
                continue;
            };
            // Bundle positions are entry numbers; the JSON line is only known on error.
            if let Err(e) = observe(self.c, resource, Position::Line(index)) {
                *self.failure = Some(e);
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

/// Parses a FHIR Bundle (JSON) in one streaming pass.
pub(crate) fn parse_bundle<R: Read>(input: R, limits: &Limits) -> Result<ParsedFile, ParseError> {
    let format = Format::FhirBundle;
    let mut c = Collector::new(format, limits);
    let mut failure = None;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(256 * 1024, input));
    let res = BundleSeed {
        c: &mut c,
        failure: &mut failure,
    }
    .deserialize(&mut de);
    if let Some(f) = failure {
        return Err(f);
    }
    let rt = res.map_err(|e| json_error(e, format))?;
    de.end().map_err(|e| json_error(e, format))?;
    if rt.as_deref() != Some("Bundle") {
        return Err(ParseError::Corrupt {
            format: format.label(),
            position: Position::Line(1),
            detail: format!("resourceType is {rt:?}, not \"Bundle\""),
        });
    }
    Ok(c.finish())
}

/// Parses FHIR NDJSON: one resource per line, blank lines allowed.
pub(crate) fn parse_ndjson<R: Read>(input: R, limits: &Limits) -> Result<ParsedFile, ParseError> {
    let format = Format::FhirNdjson;
    let mut c = Collector::new(format, limits);
    let mut r = BufReader::with_capacity(256 * 1024, input);
    let mut line = Vec::with_capacity(64 * 1024);
    let mut n = 0u64;
    loop {
        line.clear();
        let got = (&mut r)
            .take(limits.max_line_bytes as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|source| ParseError::Io { offset: 0, source })?;
        if got == 0 {
            break;
        }
        n += 1;
        if line.len() > limits.max_line_bytes {
            return Err(ParseError::LineTooLong {
                format: format.label(),
                position: Position::Line(n),
                limit: limits.max_line_bytes,
            });
        }
        let body = line.trim_ascii();
        if body.is_empty() {
            continue;
        }
        let resource: Resource = serde_json::from_slice(body).map_err(|e| {
            let mut err = json_error(e, format);
            if let ParseError::Corrupt { position, .. } | ParseError::Truncated { position, .. } =
                &mut err
            {
                if let Position::LineColumn(_, col) = *position {
                    *position = Position::LineColumn(n, col);
                }
            }
            err
        })?;
        observe(&mut c, resource, Position::Line(n))?;
    }
    Ok(c.finish())
}
