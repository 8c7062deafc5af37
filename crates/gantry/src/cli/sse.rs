//! Server-sent events (the `text/event-stream` format of the HTML standard), parsed from bytes as
//! they arrive in whatever pieces the network cuts them.
//!
//! Sans-IO: [`Parser::push`] takes bytes and returns the events they complete; the caller owns the
//! connection. An event cut off by the end of a connection is never returned (the standard says
//! to drop it), so a client that resumes from the last event's id sees it again whole.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    /// `message` unless the stream named it.
    pub(crate) event: String,
    pub(crate) data: String,
    /// The last event id the stream set, at or before this event.
    pub(crate) id: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Parser {
    line: Vec<u8>,
    /// The last byte was a CR, so a LF right after it ends nothing more.
    after_cr: bool,
    started: bool,
    event: Option<String>,
    data: Option<String>,
    last_id: Option<String>,
}

impl Parser {
    /// Feeds bytes; returns the events they complete, in order.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(e) = self.line_done(&line) {
                        out.push(e);
                    }
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(b);
                }
            }
        }
        out
    }

    fn line_done(&mut self, line: &[u8]) -> Option<Event> {
        let mut line = String::from_utf8_lossy(line);
        if !self.started {
            self.started = true;
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned().into();
            }
        }
        if line.is_empty() {
            let event = self.event.take();
            // A block without data dispatches nothing.
            let mut data = self.data.take()?;
            if data.ends_with('\n') {
                data.pop();
            }
            return Some(Event {
                event: event.unwrap_or_else(|| "message".to_owned()),
                data,
                id: self.last_id.clone(),
            });
        }
        if line.starts_with(':') {
            return None; // a comment: the server's keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                let data = self.data.get_or_insert_with(String::new);
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            // `retry` and unknown fields: Gantry chooses its own reconnection delay.
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str, id: Option<&str>) -> Event {
        Event {
            event: event.to_owned(),
            data: data.to_owned(),
            id: id.map(str::to_owned),
        }
    }

    /// Parses `input` whole and cut at every byte, which must give the same events.
    fn check(input: &str, expect: &[Event]) {
        let mut whole = Parser::default();
        assert_eq!(whole.push(input.as_bytes()), expect, "whole");
        for cut in 0..input.len() {
            let mut p = Parser::default();
            let (a, b) = input.as_bytes().split_at(cut);
            let mut got = p.push(a);
            got.extend(p.push(b));
            assert_eq!(got, expect, "cut at {cut}");
        }
    }

    #[test]
    fn events_with_names_ids_and_data() {
        check(
            "event: log\nid: 1\ndata: {\"a\":1}\n\nevent: end\ndata: {}\n\n",
            &[
                event("log", "{\"a\":1}", Some("1")),
                // The id lasts until the stream sets another.
                event("end", "{}", Some("1")),
            ],
        );
    }

    #[test]
    fn line_endings_comments_and_multi_line_data() {
        check(
            ": keep-alive\r\n\r\ndata:a\rdata:  b\r\n\r\ndata\n\n",
            &[event("message", "a\n b", None), event("message", "", None)],
        );
    }

    #[test]
    fn blocks_without_data_and_cut_off_events_dispatch_nothing() {
        check("event: log\nid: 7\n\nevent: log\ndata: x", &[]);
        let mut p = Parser::default();
        assert_eq!(
            p.push(b"id: 7\n\ndata: y\n\n"),
            [event("message", "y", Some("7"))]
        );
    }

    #[test]
    fn a_leading_byte_order_mark_is_ignored() {
        check("\u{feff}data: x\n\n", &[event("message", "x", None)]);
    }
}
