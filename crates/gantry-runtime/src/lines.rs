//! Splitting a step's output bytes into [`LogLine`]s and handing them to the engine.
//!
//! Owns the one rule both backends share: a line ends at `\n` (a trailing `\r` is dropped),
//! bytes that are not UTF-8 are replaced, a line longer than [`MAX_LINE_BYTES`] is sent in
//! pieces, and an unterminated last line is sent when its stream ends. It must not buffer more
//! than one line per stream, so a line reaches the engine as soon as its newline is read.
//!
//! Concurrency model: one [`LineSplitter`] per stream, owned by the task reading that stream;
//! [`LogSender`] is a cheap clone of the engine's channel shared by those tasks.

use gantry_engine::runtime::{LogLine, LogStream};
use tokio::sync::mpsc;

/// Past this many bytes without a newline, the bytes so far are sent as one line.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;

/// Turns chunks of bytes, cut anywhere, into whole lines.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Adds a chunk and returns the lines it completed, in order.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &byte in chunk {
            if byte == b'\n' {
                lines.push(self.take());
            } else {
                self.pending.push(byte);
                if self.pending.len() >= MAX_LINE_BYTES {
                    lines.push(self.take());
                }
            }
        }
        lines
    }

    /// The unterminated rest, when the stream has ended.
    pub(crate) fn finish(mut self) -> Option<String> {
        (!self.pending.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let mut bytes = std::mem::take(&mut self.pending);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        match String::from_utf8(bytes) {
            Ok(line) => line,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        }
    }
}

/// Sends one step's lines to the engine. A closed channel means nobody listens any more; the
/// step keeps running (and its pipes keep draining) so it is never blocked on a full pipe.
#[derive(Debug, Clone)]
pub(crate) struct LogSender {
    step: String,
    tx: mpsc::Sender<LogLine>,
}

impl LogSender {
    pub(crate) fn new(step: &str, tx: mpsc::Sender<LogLine>) -> Self {
        Self {
            step: step.to_owned(),
            tx,
        }
    }

    pub(crate) async fn send(&self, stream: LogStream, line: String) {
        let line = LogLine {
            step: self.step.clone(),
            stream,
            line,
        };
        // An error only means the receiver is gone, which is not the step's failure.
        let _ = self.tx.send(line).await;
    }

    pub(crate) async fn send_all(&self, stream: LogStream, lines: Vec<String>) {
        for line in lines {
            self.send(stream, line).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_cut_anywhere_come_out_whole() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.push(b"one\ntw"), vec!["one"]);
        assert_eq!(splitter.push(b"o\r\n\nthr"), vec!["two", ""]);
        assert_eq!(splitter.push(b"ee"), Vec::<String>::new());
        assert_eq!(splitter.finish().as_deref(), Some("three"));
    }

    #[test]
    fn nothing_pending_means_no_last_line() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.push(b"done\n"), vec!["done"]);
        assert_eq!(splitter.finish(), None);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let mut splitter = LineSplitter::default();
        assert_eq!(splitter.push(b"a\xffb\n"), vec!["a\u{fffd}b"]);
    }

    #[test]
    fn an_endless_line_is_sent_in_pieces() {
        let mut splitter = LineSplitter::default();
        let lines = splitter.push(&vec![b'x'; MAX_LINE_BYTES + 10]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);
        assert_eq!(splitter.finish().map(|rest| rest.len()), Some(10));
    }
}
