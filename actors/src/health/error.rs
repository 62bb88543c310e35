//! `ParseError`: every way a health upload can be refused, each saying what was wrong, where
//! (byte offset or line), and what the user can do about it. A parse that fails returns no
//! partial summary.

use std::fmt;

use serde::Serialize;

/// Where in the input something happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Byte offset into the (decompressed) document.
    Byte(u64),
    /// 1-based line number.
    Line(u64),
    /// 1-based line and column (JSON).
    LineColumn(u64, u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Byte(b) => write!(f, "byte {b}"),
            Position::Line(l) => write!(f, "line {l}"),
            Position::LineColumn(l, c) => write!(f, "line {l}, column {c}"),
        }
    }
}

/// The formats we accept, as listed in error messages.
pub const SUPPORTED: &str = "Apple Health export.zip or export.xml, Keto-Mojo CSV, lab-result CSV \
     (columns test, value, unit, reference range, date), FHIR R4 Bundle JSON, FHIR NDJSON Observations";

/// A refused upload.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The input had no bytes at all.
    #[error("the file is empty; export the data again and upload the exported file itself")]
    Empty,
    /// Content matched none of the supported formats.
    #[error("unrecognised file format ({what}); supported formats: {SUPPORTED}")]
    UnknownFormat {
        /// What the content looked like.
        what: String,
    },
    /// The document ended before it was complete.
    #[error("{format} is truncated at {position}: {detail}; the upload or export was cut short, upload the complete file again")]
    Truncated {
        /// The format being parsed.
        format: &'static str,
        /// Where the input ended.
        position: Position,
        /// What was still open.
        detail: String,
    },
    /// The document is not well-formed or not what its format requires.
    #[error(
        "{format} is corrupt at {position}: {detail}; re-export the data and upload the new file"
    )]
    Corrupt {
        /// The format being parsed.
        format: &'static str,
        /// Where the defect is.
        position: Position,
        /// What is wrong.
        detail: String,
    },
    /// A zip entry whose name could escape the extraction folder.
    #[error("zip entry {name:?} has an unsafe name (contains `..` or starts with `/`); this is not an Apple Health export, upload the export.zip the Health app wrote")]
    UnsafeZipEntry {
        /// The entry name as stored.
        name: String,
    },
    /// Decompression went past a limit (size or ratio): a zip bomb or an oversized export.
    #[error("zip entry {name:?} {detail}; the archive looks like a zip bomb or exceeds the upload limit, upload export.xml on its own or split the export")]
    TooLarge {
        /// The entry name.
        name: String,
        /// Which limit and by how much.
        detail: String,
    },
    /// The zip holds no `export.xml`.
    #[error("the zip archive contains no apple_health_export/export.xml entry; upload the export.zip from the Health app (Profile > Export All Health Data)")]
    MissingExportXml,
    /// A zip feature we cannot stream.
    #[error("zip entry {name:?}: {detail}; re-create the archive with deflate compression or upload export.xml directly")]
    UnsupportedZip {
        /// The entry name.
        name: String,
        /// What is unsupported.
        detail: String,
    },
    /// More records were unusable than the limit allows.
    #[error("{format}: {skipped} records could not be used (limit {limit}), first at {first}; the file is probably not a {format} file or badly damaged")]
    TooManySkipped {
        /// The format being parsed.
        format: &'static str,
        /// Records skipped so far.
        skipped: u64,
        /// The configured limit.
        limit: u64,
        /// Where the first skipped record was.
        first: Position,
    },
    /// One line or CSV record longer than the limit.
    #[error("{format}: the record at {position} is longer than {limit} bytes; the file is not line-oriented {format} data")]
    LineTooLong {
        /// The format being parsed.
        format: &'static str,
        /// Where the record starts.
        position: Position,
        /// The configured limit.
        limit: usize,
    },
    /// The input stream failed.
    #[error("reading the upload failed at byte {offset}: {source}; retry the upload")]
    Io {
        /// Bytes consumed before the failure.
        offset: u64,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
