//! A streaming zip writer for fixtures: entries are deflated with data descriptors (flag bit 3),
//! as phones write them, followed by the central directory. Also writes hand-made local
//! headers for malformed-archive tests (zip bombs, unsafe names).

use std::io::{self, Write};

use flate2::write::DeflateEncoder;
use flate2::Compression;

use crate::health::synth::CountingWriter;

struct CrcWriter<W> {
    inner: W,
    crc: crc32fast::Hasher,
    n: u64,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Central {
    name: String,
    flags: u16,
    method: u16,
    crc: u32,
    csize: u32,
    usize: u32,
    offset: u32,
}

/// Writes a zip archive to a non-seekable sink.
pub struct ZipStream<W: Write> {
    out: CountingWriter<W>,
    central: Vec<Central>,
}

fn u32_of(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

impl<W: Write> ZipStream<W> {
    /// Starts an archive.
    pub fn new(out: W) -> Self {
        ZipStream {
            out: CountingWriter::new(out),
            central: Vec::new(),
        }
    }

    /// Writes one deflated entry whose content `body` produces, with a data descriptor.
    pub fn entry<T>(
        &mut self,
        name: &str,
        body: impl FnOnce(&mut dyn Write) -> io::Result<T>,
    ) -> io::Result<T> {
        let offset = u32_of(self.out.count);
        let flags = 0x0808;
        self.local_header(name, flags, 8, 0, 0, 0, &[])?;
        let start = self.out.count;
        let (t, crc, n) = {
            let out: &mut dyn Write = &mut self.out;
            let mut w = CrcWriter {
                inner: DeflateEncoder::new(out, Compression::fast()),
                crc: crc32fast::Hasher::new(),
                n: 0,
            };
            let t = body(&mut w)?;
            let CrcWriter { inner, crc, n } = w;
            inner.finish()?;
            (t, crc.finalize(), n)
        };
        let csize = u32_of(self.out.count - start);
        self.out.write_all(&0x0807_4b50u32.to_le_bytes())?;
        for v in [crc, csize, u32_of(n)] {
            self.out.write_all(&v.to_le_bytes())?;
        }
        self.central.push(Central {
            name: name.into(),
            flags,
            method: 8,
            crc,
            csize,
            usize: u32_of(n),
            offset,
        });
        Ok(t)
    }

    /// Writes a raw local header (for malformed-archive tests); the caller writes the data.
    #[allow(clippy::too_many_arguments)]
    pub fn local_header(
        &mut self,
        name: &str,
        flags: u16,
        method: u16,
        crc: u32,
        csize: u32,
        usize: u32,
        extra: &[u8],
    ) -> io::Result<()> {
        let o = &mut self.out;
        o.write_all(&0x0403_4b50u32.to_le_bytes())?;
        for v in [20u16, flags, method, 0, 0x21] {
            o.write_all(&v.to_le_bytes())?;
        }
        for v in [crc, csize, usize] {
            o.write_all(&v.to_le_bytes())?;
        }
        o.write_all(&(name.len() as u16).to_le_bytes())?;
        o.write_all(&(extra.len() as u16).to_le_bytes())?;
        o.write_all(name.as_bytes())?;
        o.write_all(extra)
    }

    /// Raw bytes into the archive (after `local_header`).
    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    /// Writes the central directory and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        let cd_start = u32_of(self.out.count);
        for c in &self.central {
            let o = &mut self.out;
            o.write_all(&0x0201_4b50u32.to_le_bytes())?;
            for v in [20u16, 20, c.flags, c.method, 0, 0x21] {
                o.write_all(&v.to_le_bytes())?;
            }
            for v in [c.crc, c.csize, c.usize] {
                o.write_all(&v.to_le_bytes())?;
            }
            for v in [c.name.len() as u16, 0, 0, 0, 0] {
                o.write_all(&v.to_le_bytes())?;
            }
            o.write_all(&0u32.to_le_bytes())?;
            o.write_all(&c.offset.to_le_bytes())?;
            o.write_all(c.name.as_bytes())?;
        }
        let cd_size = u32_of(self.out.count) - cd_start;
        let n = self.central.len() as u16;
        self.out.write_all(&0x0605_4b50u32.to_le_bytes())?;
        for v in [0u16, 0, n, n] {
            self.out.write_all(&v.to_le_bytes())?;
        }
        self.out.write_all(&cd_size.to_le_bytes())?;
        self.out.write_all(&cd_start.to_le_bytes())?;
        self.out.write_all(&0u16.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out.into_inner())
    }
}
