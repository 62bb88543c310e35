//! Incremental Server-Sent Events decoder over raw bytes (WHATWG "event stream" parsing):
//! frames may be split anywhere across chunks; LF, CRLF and CR line ends, comments and
//! multi-line `data` are handled. It knows nothing about Dust's payloads.

/// One dispatched SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseFrame {
    /// The `event:` name, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field, if any (Dust sends none; its ids live in the JSON).
    pub id: Option<String>,
}

/// An event larger than the configured bound; the stream should be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SSE event larger than {limit} bytes")]
pub struct SseTooLarge {
    /// The bound that was passed.
    pub limit: usize,
}

/// Feed it bytes as they arrive; it returns the events completed so far.
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// Start of the unconsumed part of `buf`.
    pos: usize,
    /// The last chunk ended in CR: a LF starting the next one belongs to that line end.
    skip_lf: bool,
    started: bool,
    pending: SseFrame,
    has_data: bool,
    max_event_bytes: usize,
}

impl SseDecoder {
    /// A decoder refusing events (or lines) above `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            skip_lf: false,
            started: false,
            pending: SseFrame::default(),
            has_data: false,
            max_event_bytes,
        }
    }

    /// Consumes a chunk and returns every event it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseFrame>, SseTooLarge> {
        let mut out = Vec::new();
        let mut chunk = chunk;
        if self.skip_lf && !chunk.is_empty() {
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
            self.skip_lf = false;
        }
        self.buf.extend_from_slice(chunk);
        loop {
            let rest = &self.buf[self.pos..];
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                break;
            };
            let line_end = self.pos + end;
            let mut next = line_end + 1;
            if self.buf[line_end] == b'\r' {
                match self.buf.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            let line = String::from_utf8_lossy(&self.buf[self.pos..line_end]).into_owned();
            self.pos = next;
            if let Some(frame) = self.line(&line) {
                out.push(frame);
            }
            if self.pending.data.len() > self.max_event_bytes {
                return Err(SseTooLarge {
                    limit: self.max_event_bytes,
                });
            }
        }
        if self.buf.len() - self.pos > self.max_event_bytes {
            return Err(SseTooLarge {
                limit: self.max_event_bytes,
            });
        }
        // Compact once the consumed prefix dominates, keeping feed() linear overall.
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        Ok(out)
    }

    fn line(&mut self, line: &str) -> Option<SseFrame> {
        let line = if self.started {
            line
        } else {
            self.started = true;
            line.strip_prefix('\u{feff}').unwrap_or(line)
        };
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None; // comment (keep-alives, older Dust handshakes)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.pending.data.push('\n');
                }
                self.pending.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.pending.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.pending.id = Some(value.to_owned()),
            _ => {} // `retry` and unknown fields: nothing for us to do
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseFrame> {
        let frame = std::mem::take(&mut self.pending);
        let had_data = std::mem::replace(&mut self.has_data, false);
        // The spec drops events without data; Dust's handshake has `data: {}` so it survives
        // and the caller ignores it by name.
        had_data.then_some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<SseFrame> {
        let mut d = SseDecoder::new(1 << 20);
        chunks.iter().flat_map(|c| d.feed(c).unwrap()).collect()
    }

    fn data(s: &str) -> SseFrame {
        SseFrame {
            data: s.to_owned(),
            ..SseFrame::default()
        }
    }

    const DUST: &[u8] =
        b"event: dust-handshake\ndata: {}\n\ndata: {\"eventId\":\"1-0\"}\n\ndata: done\n\n";

    #[test]
    fn whole_dust_stream() {
        let frames = all(&[DUST]);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].event.as_deref(), Some("dust-handshake"));
        assert_eq!(frames[0].data, "{}");
        assert_eq!(frames[1], data("{\"eventId\":\"1-0\"}"));
        assert_eq!(frames[2], data("done"));
    }

    #[test]
    fn every_split_point_gives_the_same_frames() {
        let whole = all(&[DUST]);
        for i in 0..DUST.len() {
            assert_eq!(all(&[&DUST[..i], &DUST[i..]]), whole, "split at {i}");
        }
        let bytes: Vec<&[u8]> = DUST.chunks(1).collect();
        assert_eq!(all(&bytes), whole);
    }

    #[test]
    fn crlf_and_cr_line_ends_at_any_split() {
        let crlf = b"data: a\r\ndata: b\r\n\r\ndata: c\r\r";
        let want = vec![data("a\nb"), data("c")];
        for i in 0..crlf.len() {
            assert_eq!(all(&[&crlf[..i], &crlf[i..]]), want, "split at {i}");
        }
    }

    #[test]
    fn comments_ids_and_multiline_data() {
        let frames =
            all(&[b": keep-alive\n\nid: 7\ndata:x\ndata\ndata:  y\nretry: 10\nfoo: bar\n\n"]);
        assert_eq!(
            frames,
            vec![SseFrame {
                event: None,
                data: "x\n\n y".into(),
                id: Some("7".into())
            }]
        );
    }

    #[test]
    fn unfinished_event_is_held_back() {
        let mut d = SseDecoder::new(1 << 20);
        assert!(d.feed(b"data: {\"a\":").unwrap().is_empty());
        assert!(d.feed(b"1}\n").unwrap().is_empty());
        assert_eq!(d.feed(b"\n").unwrap(), vec![data("{\"a\":1}")]);
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let text = "data: héllo ✓\n\n".as_bytes();
        for i in 0..text.len() {
            assert_eq!(all(&[&text[..i], &text[i..]]), vec![data("héllo ✓")]);
        }
    }

    #[test]
    fn bom_is_stripped_and_oversized_events_refused() {
        assert_eq!(all(&[b"\xEF\xBB\xBFdata: x\n\n"]), vec![data("x")]);
        let mut d = SseDecoder::new(16);
        assert!(d.feed(&[b'a'; 64]).is_err());
        let mut d = SseDecoder::new(16);
        assert!(d.feed(b"data: 0123456789\ndata: 0123456789\n").is_err());
    }
}
