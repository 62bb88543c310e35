//! Input plumbing: a byte-counting reader that reports progress once per MiB, and format
//! detection from the first bytes of a stream.

use std::io::{self, Read};

use crate::health::error::ParseError;
use crate::health::Format;

const PROGRESS_STEP_BYTES: u64 = 1 << 20;

/// Counts the bytes read and calls `progress` at most once per MiB.
pub(crate) struct Counting<'p, R> {
    inner: R,
    total: u64,
    next_report: u64,
    progress: &'p mut dyn FnMut(u64),
}

impl<'p, R: Read> Counting<'p, R> {
    pub fn new(inner: R, progress: &'p mut dyn FnMut(u64)) -> Self {
        Counting {
            inner,
            total: 0,
            next_report: PROGRESS_STEP_BYTES,
            progress,
        }
    }

    /// Bytes consumed so far.
    pub fn total(&self) -> u64 {
        self.total
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        if self.total >= self.next_report {
            (self.progress)(self.total);
            self.next_report = self.total + PROGRESS_STEP_BYTES;
        }
        Ok(n)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn skip_ws(b: &[u8]) -> &[u8] {
    let i = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[i..]
}

/// See [`crate::health::detect`].
pub(crate) fn detect(prefix: &[u8], file_name: Option<&str>) -> Result<Format, ParseError> {
    if prefix.is_empty() {
        return Err(ParseError::Empty);
    }
    let name = file_name.unwrap_or("").to_ascii_lowercase();
    if prefix.starts_with(b"PK\x03\x04") {
        return Ok(Format::AppleHealthZip);
    }
    if prefix.starts_with(b"PK\x05\x06") {
        return Err(ParseError::UnknownFormat {
            what: "an empty zip archive".into(),
        });
    }
    if prefix.starts_with(&[0x1f, 0x8b]) {
        return Err(ParseError::UnknownFormat {
            what:
                "gzip-compressed data: send it with Content-Encoding: gzip or decompress it first"
                    .into(),
        });
    }
    let body = skip_ws(prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix));
    if body.starts_with(b"<") {
        if find(body, b"<HealthData").is_some() || find(body, b"DOCTYPE HealthData").is_some() {
            return Ok(Format::AppleHealthXml);
        }
        let what = if find(body, b"<ClinicalDocument").is_some() {
            "an HL7 CDA document (export_cda.xml); upload export.xml or the whole export.zip"
        } else {
            "XML that is not an Apple Health export"
        };
        return Err(ParseError::UnknownFormat { what: what.into() });
    }
    if body.starts_with(b"{") {
        return detect_json(body, &name);
    }
    if std::str::from_utf8(&body[..body.len().min(4096)]).is_err()
        && std::str::from_utf8(&body[..body.len().min(4096).saturating_sub(4)]).is_err()
    {
        return Err(ParseError::UnknownFormat {
            what: "binary data".into(),
        });
    }
    detect_csv(body, &name)
}

fn detect_json(body: &[u8], name: &str) -> Result<Format, ParseError> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(rename = "resourceType", borrow)]
        resource_type: Option<std::borrow::Cow<'a, str>>,
    }
    let first_line = body.split(|&c| c == b'\n').next().unwrap_or(body);
    if let Ok(head) = serde_json::from_slice::<Head<'_>>(first_line) {
        return match head.resource_type.as_deref() {
            Some("Bundle") if !name.ends_with(".ndjson") => Ok(Format::FhirBundle),
            Some(_) => Ok(Format::FhirNdjson),
            None => Err(ParseError::UnknownFormat {
                what: "JSON without a FHIR resourceType".into(),
            }),
        };
    }
    // A pretty-printed document: the first resourceType is the outermost one in practice.
    if let Some(at) = find(body, b"\"resourceType\"") {
        let rest = skip_ws(&body[at + 14..]);
        let rest = skip_ws(rest.strip_prefix(b":").unwrap_or(rest));
        if rest.starts_with(b"\"Bundle\"") {
            return Ok(Format::FhirBundle);
        }
        return Err(ParseError::UnknownFormat {
            what: "a multi-line FHIR resource that is not a Bundle; send a Bundle or NDJSON".into(),
        });
    }
    Err(ParseError::UnknownFormat {
        what: "JSON without a FHIR resourceType".into(),
    })
}

fn detect_csv(body: &[u8], name: &str) -> Result<Format, ParseError> {
    let lower: Vec<u8> = body[..body.len().min(16 * 1024)].to_ascii_lowercase();
    if find(&lower, b"reading_type").is_some() && find(&lower, b"reading_value").is_some() {
        return Ok(Format::KetoMojoCsv);
    }
    for line in lower.split(|&c| c == b'\n').take(20) {
        let cols: Vec<String> = line
            .split(|&c| c == b',' || c == b';' || c == b'\t')
            .map(crate::health::csv_formats::normalise_header)
            .collect();
        if crate::health::csv_formats::lab_columns(&cols).is_some() {
            return Ok(Format::LabCsv);
        }
    }
    let what = if name.ends_with(".csv") {
        "a CSV whose header has neither Keto-Mojo columns (reading_type, reading_value) nor lab \
         columns (test, value)"
    } else {
        "text that is neither XML, JSON nor a known CSV"
    };
    Err(ParseError::UnknownFormat { what: what.into() })
}
