//! HTTP/1.1 response body framing: `Content-Length`, `Transfer-Encoding: chunked`, or
//! read-until-close. Owns only the decoder state; the bytes live in the connection's buffer.

use bytes::{Buf, Bytes, BytesMut};

use super::HttpError;

/// Longest chunk-size or trailer line accepted (a guard against garbage, not a real limit).
const MAX_LINE: usize = 4096;

/// How the end of a response body is found.
#[derive(Debug)]
pub enum Framing {
    /// Exactly this many bytes remain.
    Length(u64),
    /// Chunked transfer coding, with the decoder's state.
    Chunked(ChunkedDecoder),
    /// The body ends when the server closes the connection (which is then not reusable).
    UntilClose,
}

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes.
    Data(Bytes),
    /// The buffer holds no complete step: read more.
    NeedMore,
    /// The body is complete (terminal chunk and trailers consumed).
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

/// Incremental decoder of the chunked transfer coding (RFC 9112 §7.1).
#[derive(Debug)]
pub struct ChunkedDecoder {
    state: State,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        Self { state: State::Size }
    }
}

/// Takes one line (without its CR LF) off the front of `buf`, if a whole line is there.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, HttpError> {
    match memchr::memchr(b'\n', buf) {
        Some(lf) => {
            let mut line = buf.split_to(lf + 1);
            line.truncate(lf);
            if line.last() == Some(&b'\r') {
                line.truncate(lf - 1);
            }
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(HttpError::Protocol("chunk line too long".into())),
        None => Ok(None),
    }
}

impl ChunkedDecoder {
    /// Decodes as far as the buffered bytes allow, returning at most one piece of data.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, HttpError> {
        loop {
            match self.state {
                State::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let digits = line[..].split(|b| *b == b';').next().unwrap_or(&[]);
                    let digits = std::str::from_utf8(digits)
                        .map_err(|_| HttpError::Protocol("chunk size is not ASCII".into()))?
                        .trim();
                    let size = u64::from_str_radix(digits, 16)
                        .map_err(|_| HttpError::Protocol(format!("bad chunk size {digits:?}")))?;
                    self.state = if size == 0 {
                        State::Trailer
                    } else {
                        State::Data(size)
                    };
                }
                State::Data(remaining) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let take = remaining.min(buf.len() as u64);
                    let left = remaining - take;
                    self.state = if left == 0 {
                        State::DataEnd
                    } else {
                        State::Data(left)
                    };
                    // `take` <= buf.len(), so the cast back cannot truncate.
                    return Ok(Decoded::Data(buf.split_to(take as usize).freeze()));
                }
                State::DataEnd => match buf.first() {
                    None => return Ok(Decoded::NeedMore),
                    Some(b'\n') => {
                        buf.advance(1);
                        self.state = State::Size;
                    }
                    Some(b'\r') if buf.len() < 2 => return Ok(Decoded::NeedMore),
                    Some(b'\r') if buf[1] == b'\n' => {
                        buf.advance(2);
                        self.state = State::Size;
                    }
                    Some(_) => {
                        return Err(HttpError::Protocol("chunk not followed by CRLF".into()))
                    }
                },
                State::Trailer => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    if line.is_empty() {
                        self.state = State::Done;
                    }
                }
                State::Done => return Ok(Decoded::Done),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` to a decoder in pieces of `step` bytes and returns the body.
    fn decode_in_steps(wire: &[u8], step: usize) -> Vec<u8> {
        let mut dec = ChunkedDecoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut pieces = wire.chunks(step);
        loop {
            match dec.decode(&mut buf).unwrap() {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::Done => return body,
                Decoded::NeedMore => {
                    buf.extend_from_slice(pieces.next().expect("ran out of input"))
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for step in 1..wire.len() {
            assert_eq!(decode_in_steps(wire, step), b"hello, world", "step {step}");
        }
    }

    #[test]
    fn bare_lf_line_ends_are_tolerated() {
        assert_eq!(decode_in_steps(b"3\nabc\n0\n\n", 2), b"abc");
    }

    #[test]
    fn garbage_sizes_are_protocol_errors() {
        let mut dec = ChunkedDecoder::default();
        let mut buf = BytesMut::from(&b"zz\r\n"[..]);
        assert!(matches!(dec.decode(&mut buf), Err(HttpError::Protocol(_))));
    }
}
