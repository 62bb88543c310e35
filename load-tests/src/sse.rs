//! Incremental `text/event-stream` parser (WHATWG HTML "server-sent events" rules).
//! Owns only the partial line and the event being built; it knows nothing of JSON-RPC.
//! Bytes arrive in arbitrary pieces (TCP reads, HTTP chunks); items come out as soon as the
//! blank line that ends them has been seen.

/// One thing a server can put on an SSE stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A dispatched event. `data` is the `data:` lines joined by `\n` (an empty `data:` gives
    /// an empty string, which is how MCP 2025-11-25 servers send their priming event).
    Event {
        /// The `event:` field, empty when absent (which means "message").
        event: String,
        /// The `id:` field of this event, if it carried one.
        id: Option<String>,
        /// The joined data lines, as raw bytes (JSON is parsed from bytes directly).
        data: Vec<u8>,
    },
    /// A comment line (`: text`), which servers use as keep-alive; holds the text after `:`.
    Comment(Vec<u8>),
}

/// Parser state carried across `feed` calls.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current line not yet terminated.
    line: Vec<u8>,
    /// The previous piece ended with CR: a leading LF in the next piece belongs to that CRLF.
    after_cr: bool,
    /// Data lines seen for the current event (spec: the "data buffer").
    data: Vec<u8>,
    /// Whether any `data:` line was seen (so an empty `data:` still dispatches).
    has_data: bool,
    /// The current event's `event:` field.
    event: String,
    /// The current event's `id:` field.
    id: Option<String>,
    /// Whether the first line of the stream was already seen (to strip a UTF-8 BOM once).
    started: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream and appends every completed item to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<SseItem>) {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(pos) = memchr::memchr2(b'\r', b'\n', chunk) {
            let ended_by_cr = chunk[pos] == b'\r';
            if self.line.is_empty() {
                self.process_line(&chunk[..pos], out);
            } else {
                self.line.extend_from_slice(&chunk[..pos]);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, out);
                self.line = line;
                self.line.clear();
            }
            chunk = &chunk[pos + 1..];
            if ended_by_cr {
                match chunk.first() {
                    Some(b'\n') => chunk = &chunk[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.line.extend_from_slice(chunk);
    }

    fn process_line(&mut self, mut line: &[u8], out: &mut Vec<SseItem>) {
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix("\u{feff}".as_bytes()) {
                line = rest;
            }
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if let Some(comment) = line.strip_prefix(b":") {
            let text = comment.strip_prefix(b" ").unwrap_or(comment);
            out.push(SseItem::Comment(text.to_vec()));
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            // Spec: an id containing NUL is ignored.
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            // `retry:` only matters to a client that reconnects; a load run does not.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseItem>) {
        if self.has_data {
            out.push(SseItem::Event {
                event: std::mem::take(&mut self.event),
                id: self.id.take(),
                data: std::mem::take(&mut self.data),
            });
        } else {
            self.event.clear();
            self.id = None;
        }
        self.has_data = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_pieces(pieces: &[&[u8]]) -> Vec<SseItem> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            parser.feed(piece, &mut out);
        }
        out
    }

    fn event(event: &str, id: Option<&str>, data: &str) -> SseItem {
        SseItem::Event {
            event: event.into(),
            id: id.map(Into::into),
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let stream: &[u8] = b"id: 1\r\nretry: 5000\r\ndata:\r\n\r\n: keep-alive\r\n\
            event: message\r\ndata: {\"a\":1}\r\n\r\n";
        let expected = vec![
            event("", Some("1"), ""),
            SseItem::Comment(b"keep-alive".to_vec()),
            event("message", None, "{\"a\":1}"),
        ];
        assert_eq!(parse_pieces(&[stream]), expected);
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(parse_pieces(&[a, b]), expected, "split at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse_pieces(&bytes), expected);
    }

    #[test]
    fn lf_cr_and_crlf_all_end_lines() {
        let lf = parse_pieces(&[b"data: x\n\n"]);
        let cr = parse_pieces(&[b"data: x\r\r"]);
        let crlf = parse_pieces(&[b"data: x\r\n\r\n"]);
        assert_eq!(lf, vec![event("", None, "x")]);
        assert_eq!(cr, lf);
        assert_eq!(crlf, lf);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        let out = parse_pieces(&[b"data: first\ndata:second\ndata:  third\n\n"]);
        assert_eq!(out, vec![event("", None, "first\nsecond\n third")]);
    }

    #[test]
    fn comments_are_reported_and_do_not_end_an_event() {
        let out = parse_pieces(&[b":ping\ndata: a\n: mid\ndata: b\n\n"]);
        assert_eq!(
            out,
            vec![
                SseItem::Comment(b"ping".to_vec()),
                SseItem::Comment(b"mid".to_vec()),
                event("", None, "a\nb"),
            ]
        );
    }

    #[test]
    fn a_blank_line_without_data_dispatches_nothing() {
        let out = parse_pieces(&[b"event: x\nid: 7\n\n\ndata: y\n\n"]);
        assert_eq!(out, vec![event("", None, "y")]);
    }

    #[test]
    fn an_unterminated_event_is_held_back() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        parser.feed(b"data: partial\n", &mut out);
        assert!(out.is_empty());
        parser.feed(b"\n", &mut out);
        assert_eq!(out, vec![event("", None, "partial")]);
    }

    #[test]
    fn a_leading_bom_is_ignored() {
        let out = parse_pieces(&["\u{feff}data: z\n\n".as_bytes()]);
        assert_eq!(out, vec![event("", None, "z")]);
    }
}
