//! A minimal HTTP/1.1 client connection on tokio TCP: write one request, parse the response
//! head with `httparse`, then hand out body bytes as they arrive (so SSE can be parsed
//! incrementally). Owns the socket and its read buffer; pooling and retries live in `mcp`.

mod chunked;

use std::io;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use chunked::{ChunkedDecoder, Decoded, Framing};

/// Initial read buffer per connection: enough for a response head and a small SSE event,
/// small enough that 10,000 idle streams stay cheap.
const READ_CHUNK: usize = 4096;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Headers parsed per response head.
const MAX_HEADERS: usize = 48;

/// What went wrong on the wire.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The TCP connect failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// Where we tried to connect.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// The peer closed (or reset) the connection before sending any response byte; on a
    /// reused keep-alive connection this is the server's idle timeout, and the request is
    /// safe to re-send.
    #[error("connection closed before any response byte")]
    ClosedBeforeResponse,
    /// The peer closed the connection in the middle of a response.
    #[error("connection closed mid-response")]
    ClosedMidResponse,
    /// Any other socket error.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The bytes were not valid HTTP/1.1.
    #[error("bad HTTP response: {0}")]
    Protocol(String),
}

/// The parts of a response head the load generator uses.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, lower-cased, parameters stripped.
    pub content_type: String,
    /// `Mcp-Session-Id`, if present.
    pub session_id: Option<String>,
    /// How the body ends.
    pub framing: Framing,
    /// Whether the connection may carry another request once this body is fully read.
    pub keep_alive: bool,
}

/// One HTTP/1.1 connection.
#[derive(Debug)]
pub struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet consumed (head remainder, body).
    buf: BytesMut,
    /// Responses fully read on this connection; > 0 means it is a reused keep-alive one.
    pub served: u64,
}

/// Whether an I/O error means "the peer is gone" rather than a local failure.
fn is_peer_closed(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// Serialises a request with the given extra headers; `Content-Length` is added for a body.
pub fn build_request(
    method: &str,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let length = (method != "GET").then_some(body.len());
    let mut out = build_head(method, authority, path, headers, length);
    out.extend_from_slice(body);
    out
}

/// Serialises a request head (through its blank line); `content_length` adds that header.
pub fn build_head(
    method: &str,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_length: Option<usize>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + content_length.unwrap_or(0).min(1 << 16));
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(authority.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(len) = content_length {
        out.extend_from_slice(format!("Content-Length: {len}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

impl Conn {
    /// Opens a TCP connection (Nagle off: requests are written in one piece).
    pub async fn connect(addr: SocketAddr) -> Result<Self, HttpError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| HttpError::Connect { addr, source })?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            served: 0,
        })
    }

    /// Reads more bytes into the buffer; returns how many (0 = the peer closed).
    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 512 {
            self.buf.reserve(READ_CHUNK);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// Writes `request` and reads the response head.
    pub async fn send(&mut self, request: &[u8]) -> Result<ResponseHead, HttpError> {
        self.send_parts(request, &[]).await
    }

    /// Writes a request head (ending with its blank line) and then `body`, and reads the
    /// response head; large uploads go out without copying the body into the request.
    pub async fn send_parts(
        &mut self,
        head: &[u8],
        body: &[u8],
    ) -> Result<ResponseHead, HttpError> {
        self.buf.clear();
        for part in [head, body] {
            if part.is_empty() {
                continue;
            }
            if let Err(e) = self.stream.write_all(part).await {
                return Err(if is_peer_closed(&e) {
                    HttpError::ClosedBeforeResponse
                } else {
                    e.into()
                });
            }
        }
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = self.parse_head()? {
                    return Ok(head);
                }
            }
            if self.buf.len() > MAX_HEAD {
                return Err(HttpError::Protocol("response head too large".into()));
            }
            let got_any = !self.buf.is_empty();
            match self.fill().await {
                Ok(0) if got_any => return Err(HttpError::ClosedMidResponse),
                Ok(0) => return Err(HttpError::ClosedBeforeResponse),
                Ok(_) => {}
                Err(e) if is_peer_closed(&e) && !got_any => {
                    return Err(HttpError::ClosedBeforeResponse)
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Parses a complete head off the buffer, skipping 1xx interim responses.
    fn parse_head(&mut self) -> Result<Option<ResponseHead>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(HttpError::Protocol(e.to_string())),
        };
        let status = resp.code.unwrap_or(0);
        let mut content_type = String::new();
        let mut session_id = None;
        let mut length = None;
        let mut chunked = false;
        let mut close = resp.version == Some(0);
        for h in resp.headers.iter() {
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            if h.name.eq_ignore_ascii_case("content-type") {
                let main = value.split(';').next().unwrap_or("");
                content_type = main.trim().to_ascii_lowercase();
            } else if h.name.eq_ignore_ascii_case("mcp-session-id") {
                session_id = Some(value.to_owned());
            } else if h.name.eq_ignore_ascii_case("content-length") {
                length =
                    Some(value.parse::<u64>().map_err(|_| {
                        HttpError::Protocol(format!("bad content-length {value:?}"))
                    })?);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().ends_with("chunked");
            } else if h.name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let _ = self.buf.split_to(len);
        if (100..200).contains(&status) {
            return self.parse_head();
        }
        let framing = if status == 204 || status == 304 {
            Framing::Length(0)
        } else if chunked {
            Framing::Chunked(ChunkedDecoder::default())
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            Framing::UntilClose
        };
        let keep_alive = !close && !matches!(framing, Framing::UntilClose);
        Ok(Some(ResponseHead {
            status,
            content_type,
            session_id,
            framing,
            keep_alive,
        }))
    }

    /// Next piece of the body, or `None` once the body is complete.
    pub async fn body_piece(&mut self, framing: &mut Framing) -> Result<Option<Bytes>, HttpError> {
        loop {
            match framing {
                Framing::Length(0) => return Ok(None),
                Framing::Length(remaining) => {
                    if !self.buf.is_empty() {
                        let take = (*remaining).min(self.buf.len() as u64);
                        *remaining -= take;
                        // `take` <= buf.len(), so the cast cannot truncate.
                        return Ok(Some(self.buf.split_to(take as usize).freeze()));
                    }
                }
                Framing::Chunked(dec) => match dec.decode(&mut self.buf)? {
                    Decoded::Data(d) => return Ok(Some(d)),
                    Decoded::Done => return Ok(None),
                    Decoded::NeedMore => {}
                },
                Framing::UntilClose => {
                    if !self.buf.is_empty() {
                        return Ok(Some(self.buf.split().freeze()));
                    }
                }
            }
            match self.fill().await {
                Ok(0) if matches!(framing, Framing::UntilClose) => return Ok(None),
                Ok(0) => return Err(HttpError::ClosedMidResponse),
                Ok(_) => {}
                Err(e) if is_peer_closed(&e) => return Err(HttpError::ClosedMidResponse),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
