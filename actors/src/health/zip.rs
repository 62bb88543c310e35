//! Streamed `export.zip`: reads local file headers in order from a non-seekable stream, skips
//! entries until `apple_health_export/export.xml`, and hands out a reader of its inflated bytes.
//! Entries with data descriptors (flag bit 3) work because deflate is self-terminating and
//! flate2's `bufread` decoder consumes exactly the compressed bytes. Checks CRC-32 and sizes,
//! refuses `..`/absolute names, and stops at a size or ratio limit (zip bombs).

use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::DeflateDecoder;

use crate::health::error::{ParseError, Position};
use crate::health::Limits;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
/// The ratio check starts after this many output bytes, so tiny entries never trip it.
const RATIO_CHECK_AFTER_BYTES: u64 = 1 << 20;
const INPUT_BUFFER_BYTES: usize = 128 * 1024;

/// A zip-level failure carried through `io::Error` to the XML parser, then turned back into a
/// `ParseError`.
#[derive(Debug, Clone)]
pub(crate) enum ZipFailure {
    TooLarge { name: String, detail: String },
    Corrupt { name: String, detail: String },
    Truncated { name: String },
}

impl fmt::Display for ZipFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZipFailure::TooLarge { name, detail } => write!(f, "{name}: {detail}"),
            ZipFailure::Corrupt { name, detail } => write!(f, "{name}: {detail}"),
            ZipFailure::Truncated { name } => write!(f, "{name}: compressed data ends early"),
        }
    }
}

impl std::error::Error for ZipFailure {}

impl ZipFailure {
    /// The matching `ParseError`; `at` is the decompressed offset reached.
    pub fn to_error(&self, at: u64) -> ParseError {
        let position = Position::Byte(at);
        match self.clone() {
            ZipFailure::TooLarge { name, detail } => ParseError::TooLarge { name, detail },
            ZipFailure::Corrupt { name, detail } => ParseError::Corrupt {
                format: "Apple Health export.zip",
                position,
                detail: format!("entry {name:?}: {detail}"),
            },
            ZipFailure::Truncated { name } => ParseError::Truncated {
                format: "Apple Health export.zip",
                position,
                detail: format!("entry {name:?} ends before its compressed data is complete"),
            },
        }
    }

    fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

enum Body<R> {
    Deflate(DeflateDecoder<BufReader<R>>),
    Stored(io::Take<BufReader<R>>),
}

/// The inflated bytes of one entry, verified against its CRC-32 and size at the end.
pub(crate) struct Entry<R> {
    body: Body<R>,
    crc: crc32fast::Hasher,
    out: u64,
    name: String,
    header_crc: u32,
    header_size: u64,
    descriptor: bool,
    zip64: bool,
    max_out: u64,
    max_ratio: u64,
    done: bool,
}

fn bad(name: &str, detail: impl Into<String>) -> io::Error {
    ZipFailure::Corrupt {
        name: name.to_owned(),
        detail: detail.into(),
    }
    .into_io()
}

impl<R: Read> Entry<R> {
    fn inner(&mut self) -> &mut BufReader<R> {
        match &mut self.body {
            Body::Deflate(d) => d.get_mut(),
            Body::Stored(t) => t.get_mut(),
        }
    }

    fn into_inner(self) -> BufReader<R> {
        match self.body {
            Body::Deflate(d) => d.into_inner(),
            Body::Stored(t) => t.into_inner(),
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        let (crc, size) = if self.descriptor {
            let name = self.name.clone();
            let zip64 = self.zip64;
            let r = self.inner();
            let trunc = |_| ZipFailure::Truncated { name: name.clone() }.into_io();
            let mut first = read_u32(r).map_err(trunc)?;
            if first == DATA_DESCRIPTOR {
                first = read_u32(r).map_err(trunc)?;
            }
            let size = if zip64 {
                read_u64(r).map_err(trunc)?;
                read_u64(r).map_err(trunc)?
            } else {
                read_u32(r).map_err(trunc)?;
                u64::from(read_u32(r).map_err(trunc)?)
            };
            (first, size)
        } else {
            (self.header_crc, self.header_size)
        };
        let actual = self.crc.clone().finalize();
        if actual != crc {
            return Err(bad(
                &self.name,
                format!("CRC-32 mismatch (stored {crc:08x}, computed {actual:08x})"),
            ));
        }
        if size != self.out && !(self.descriptor && !self.zip64 && size == self.out & 0xffff_ffff) {
            return Err(bad(
                &self.name,
                format!("size mismatch (stored {size}, inflated {})", self.out),
            ));
        }
        Ok(())
    }
}

impl<R: Read> Read for Entry<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = match &mut self.body {
            Body::Deflate(d) => d.read(buf),
            Body::Stored(t) => t.read(buf),
        };
        let n = match n {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(ZipFailure::Truncated {
                    name: self.name.clone(),
                }
                .into_io())
            }
            Err(e) if e.get_ref().is_some_and(|i| i.is::<ZipFailure>()) => return Err(e),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
                ) =>
            {
                return Err(bad(&self.name, format!("invalid deflate data: {e}")))
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            if let Body::Stored(_) = self.body {
                if self.out != self.header_size {
                    return Err(ZipFailure::Truncated {
                        name: self.name.clone(),
                    }
                    .into_io());
                }
            }
            self.finish()?;
            self.done = true;
            return Ok(0);
        }
        self.crc.update(&buf[..n]);
        self.out += n as u64;
        if self.out > self.max_out {
            return Err(ZipFailure::TooLarge {
                name: self.name.clone(),
                detail: format!("inflates past the limit of {} bytes", self.max_out),
            }
            .into_io());
        }
        if let Body::Deflate(d) = &self.body {
            let input = d.total_in().max(1);
            if self.out > RATIO_CHECK_AFTER_BYTES && self.out / input > self.max_ratio {
                return Err(ZipFailure::TooLarge {
                    name: self.name.clone(),
                    detail: format!(
                        "inflates more than {}× ({} bytes from {input})",
                        self.max_ratio, self.out
                    ),
                }
                .into_io());
            }
        }
        Ok(n)
    }
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn unsafe_name(name: &str) -> bool {
    name.starts_with('/')
        || name.starts_with('\\')
        || name.split(['/', '\\']).any(|part| part == "..")
        || name.as_bytes().get(1) == Some(&b':')
}

fn is_export_xml(name: &str) -> bool {
    name == "export.xml" || (name.ends_with("/export.xml") && name.matches('/').count() == 1)
}

fn io_err(e: io::Error, at: u64) -> ParseError {
    if let Some(z) = e.get_ref().and_then(|i| i.downcast_ref::<ZipFailure>()) {
        return z.to_error(at);
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        return ParseError::Truncated {
            format: "Apple Health export.zip",
            position: Position::Byte(at),
            detail: "the archive ends inside a file header".into(),
        };
    }
    ParseError::Io {
        offset: at,
        source: e,
    }
}

/// Skips to `export.xml` and returns a reader of its inflated content.
pub(crate) fn open_export_xml<R: Read>(input: R, limits: &Limits) -> Result<Entry<R>, ParseError> {
    let mut br = BufReader::with_capacity(INPUT_BUFFER_BYTES, input);
    let mut entries = 0u64;
    loop {
        if br.fill_buf().map_err(|e| io_err(e, 0))?.is_empty() {
            return Err(if entries == 0 {
                ParseError::Empty
            } else {
                ParseError::MissingExportXml
            });
        }
        let sig = read_u32(&mut br).map_err(|e| io_err(e, 0))?;
        match sig {
            LOCAL_HEADER => {}
            CENTRAL_HEADER | END_OF_CENTRAL => return Err(ParseError::MissingExportXml),
            _ => {
                return Err(ParseError::Corrupt {
                    format: "Apple Health export.zip",
                    position: Position::Byte(0),
                    detail: format!(
                        "expected a zip file header after entry {entries}, found {sig:08x}"
                    ),
                })
            }
        }
        let mut h = [0u8; 26];
        br.read_exact(&mut h).map_err(|e| io_err(e, 0))?;
        let word = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let dword = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (flags, method, crc) = (word(2), word(4), dword(10));
        let (mut csize, mut usize_) = (u64::from(dword(14)), u64::from(dword(18)));
        let mut name = vec![0; usize::from(word(22))];
        br.read_exact(&mut name).map_err(|e| io_err(e, 0))?;
        let name = String::from_utf8_lossy(&name).into_owned();
        let mut extra = vec![0; usize::from(word(24))];
        br.read_exact(&mut extra).map_err(|e| io_err(e, 0))?;
        if unsafe_name(&name) {
            return Err(ParseError::UnsafeZipEntry { name });
        }
        let mut zip64 = false;
        let mut ex = &extra[..];
        while ex.len() >= 4 {
            let id = u16::from_le_bytes([ex[0], ex[1]]);
            let len = usize::from(u16::from_le_bytes([ex[2], ex[3]])).min(ex.len() - 4);
            let mut data = &ex[4..4 + len];
            if id == 1 {
                zip64 = true;
                if usize_ == 0xffff_ffff {
                    usize_ = read_u64(&mut data).unwrap_or(usize_);
                }
                if csize == 0xffff_ffff {
                    csize = read_u64(&mut data).unwrap_or(csize);
                }
            }
            ex = &ex[4 + len..];
        }
        if flags & 1 != 0 {
            return Err(ParseError::UnsupportedZip {
                name,
                detail: "the entry is encrypted".into(),
            });
        }
        let descriptor = flags & 8 != 0;
        if !descriptor && usize_ > limits.max_decompressed_bytes {
            return Err(ParseError::TooLarge {
                name,
                detail: format!(
                    "declares {usize_} bytes, more than the limit of {}",
                    limits.max_decompressed_bytes
                ),
            });
        }
        let body = match method {
            8 => Body::Deflate(DeflateDecoder::new(br)),
            0 if !descriptor => Body::Stored(br.take(csize)),
            0 => {
                return Err(ParseError::UnsupportedZip {
                    name,
                    detail: "stored (uncompressed) with a data descriptor cannot be streamed"
                        .into(),
                })
            }
            m => {
                return Err(ParseError::UnsupportedZip {
                    name,
                    detail: format!("compression method {m}"),
                })
            }
        };
        let mut entry = Entry {
            body,
            crc: crc32fast::Hasher::new(),
            out: 0,
            name,
            header_crc: crc,
            header_size: usize_,
            descriptor,
            zip64,
            max_out: limits.max_decompressed_bytes,
            max_ratio: limits.max_compression_ratio,
            done: false,
        };
        if is_export_xml(&entry.name) {
            return Ok(entry);
        }
        let mut sink = [0u8; 16 * 1024];
        loop {
            match entry.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(io_err(e, entry.out)),
            }
        }
        br = entry.into_inner();
        entries += 1;
    }
}
