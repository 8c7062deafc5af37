//! Following a run on the server: its log lines as they are written, over the server-sent events
//! of `GET /runs/{id}/logs/stream`, until the stream's `end` event gives the run's status.
//!
//! A dropped connection is opened again with `Last-Event-ID` set to the position of the last line
//! printed (the server numbers each event with its line's position), and a line at or before that
//! position is never printed again, so no line is lost or doubled. Step changes are not in the
//! stream: `run start --follow` also asks for the run every second while it reads. One task; the
//! stream and the step poll are interleaved with `select!`.

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use reqwest::Method;
use serde_json::Value;

use super::client::{segment, Client};
use super::sse;

/// How often to try again after the stream fails without progress before giving up, and the
/// longest wait between two tries.
const RETRIES: u32 = 8;
const LONGEST_WAIT: Duration = Duration::from_secs(5);

/// A log chunk as the CLI prints it: `step │ text` (the text keeps its own line end).
pub(crate) fn log_line(c: &Value) -> String {
    format!(
        "{} │ {}",
        c["step"].as_str().unwrap_or_default(),
        c["text"].as_str().unwrap_or_default()
    )
}

pub(crate) fn step_line(s: &Value) -> String {
    let reason = s["reason"]
        .as_str()
        .map(|r| format!("  ({r})"))
        .unwrap_or_default();
    format!(
        "{}  {}{reason}",
        s["name"].as_str().unwrap_or_default(),
        s["status"].as_str().unwrap_or_default()
    )
}

/// The steps of a run as last printed, to print each change once.
#[derive(Debug, Default)]
pub(crate) struct StepWatch {
    seen: HashMap<String, String>,
}

impl StepWatch {
    /// The lines for the steps of `run` whose status changed since the last call.
    fn changes(&mut self, run: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for s in run["steps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let name = s["name"].as_str().unwrap_or_default();
            let status = s["status"].as_str().unwrap_or_default();
            if self.seen.get(name).map(String::as_str) != Some(status) {
                out.push(step_line(s));
                self.seen.insert(name.to_owned(), status.to_owned());
            }
        }
        out
    }

    /// Asks for the run and prints its step changes. Best effort: the log stream, not this,
    /// decides when the run has ended.
    async fn poll(&mut self, client: &Client, id: &str, out: &mut dyn Write) -> anyhow::Result<()> {
        if let Ok(run) = client
            .send(Method::GET, &format!("/runs/{}", segment(id)), None)
            .await
        {
            if run.ok() {
                for line in self.changes(&run.body) {
                    writeln!(out, "{line}")?;
                }
                out.flush()?;
            }
        }
        Ok(())
    }
}

/// Prints the run's log lines (and, with `steps`, its step changes) until it ends; returns its
/// final status (`succeeded`, `failed`, …).
pub(crate) async fn follow(
    client: &Client,
    id: &str,
    out: &mut dyn Write,
    mut steps: Option<&mut StepWatch>,
) -> anyhow::Result<String> {
    let path = format!("/runs/{}/logs/stream", segment(id));
    let mut last: Option<i64> = None;
    let mut failures = 0u32;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last_id = last.map(|p| p.to_string());
        let dropped = match client.open_stream(&path, last_id.as_deref()).await {
            Ok(Ok(mut response)) => {
                let mut parser = sse::Parser::default();
                loop {
                    let chunk = tokio::select! {
                        chunk = response.chunk() => chunk,
                        _ = tick.tick(), if steps.is_some() => {
                            if let Some(w) = steps.as_deref_mut() {
                                w.poll(client, id, out).await?;
                            }
                            continue;
                        }
                    };
                    let bytes = match chunk {
                        Ok(Some(bytes)) => bytes,
                        Ok(None) => break anyhow::anyhow!("the server closed the log stream"),
                        Err(e) => break anyhow::Error::new(e).context("the log stream broke"),
                    };
                    for event in parser.push(&bytes) {
                        match event.event.as_str() {
                            "log" => {
                                let chunk: Value = serde_json::from_str(&event.data)
                                    .context("the server sent a log event that is not JSON")?;
                                let position = chunk["position"].as_i64();
                                if let (Some(p), Some(l)) = (position, last) {
                                    if p <= l {
                                        continue; // printed before the connection dropped
                                    }
                                }
                                write!(out, "{}", log_line(&chunk))?;
                                last = position.or(last);
                                failures = 0;
                            }
                            "end" => {
                                out.flush()?;
                                if let Some(w) = steps.as_deref_mut() {
                                    w.poll(client, id, out).await?;
                                }
                                let end: Value = serde_json::from_str(&event.data)
                                    .context("the server sent an end event that is not JSON")?;
                                return Ok(end["status"].as_str().unwrap_or("unknown").to_owned());
                            }
                            _ => {}
                        }
                    }
                    out.flush()?;
                }
            }
            Ok(Err(refused)) => bail!("{}", refused.summary()),
            Err(e) => e,
        };
        failures += 1;
        if failures > RETRIES {
            return Err(dropped.context(format!(
                "lost the log stream of run {id} at {} and could not open it again",
                client.server()
            )));
        }
        let wait = Duration::from_millis(200 << failures.min(5)).min(LONGEST_WAIT);
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::cli::profile::Target;

    fn log(position: i64, text: &str) -> String {
        let data = serde_json::json!({"position": position, "step": "s", "stream": "stdout", "text": text});
        format!("event: log\nid: {position}\ndata: {data}\n\n")
    }

    /// A fake of the stream endpoint that plays one scripted response per connection, closing
    /// each after it, and records each request's `Last-Event-ID`. It stands in for the real server
    /// because the point is a connection dropped in the middle of an event.
    async fn fake_stream_server(
        responses: Vec<String>,
    ) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        tokio::spawn(async move {
            for body in responses {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut buf).await.unwrap();
                    request.extend_from_slice(&buf[..n]);
                }
                let request = String::from_utf8_lossy(&request).to_lowercase();
                let last = request
                    .lines()
                    .find_map(|l| l.strip_prefix("last-event-id: "))
                    .map(str::to_owned);
                record.lock().unwrap().push(last);
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
                socket.write_all(head.as_bytes()).await.unwrap();
                socket.write_all(body.as_bytes()).await.unwrap();
                socket.shutdown().await.unwrap();
            }
        });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn a_dropped_stream_resumes_after_the_last_printed_line() {
        let first = format!(
            "{}{}event: log\nid: 3\ndata: {{\"posit",
            log(1, "one\n"),
            log(2, "two\n")
        );
        // The server resends line 2 as well: it must not be printed twice.
        let second = format!(
            ": keep-alive\n\n{}{}event: end\ndata: {{\"status\":\"failed\"}}\n\n",
            log(2, "two\n"),
            log(3, "three\n")
        );
        let (server, seen) = fake_stream_server(vec![first, second]).await;
        let client = Client::to(Target {
            server,
            api_key: "gantry_test_key".into(),
        })
        .unwrap();
        let mut out = Vec::new();
        let status = follow(&client, "r1", &mut out, None).await.unwrap();
        assert_eq!(status, "failed");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "s │ one\ns │ two\ns │ three\n"
        );
        assert_eq!(*seen.lock().unwrap(), [None, Some("2".to_owned())]);
    }

    #[test]
    fn step_changes_are_printed_once() {
        let mut w = StepWatch::default();
        let run = |a: &str, b: &str| {
            serde_json::json!({"steps": [
                {"name": "a", "status": a, "reason": null},
                {"name": "b", "status": b, "reason": "waiting for approval"},
            ]})
        };
        assert_eq!(
            w.changes(&run("running", "pending")),
            ["a  running", "b  pending  (waiting for approval)"]
        );
        assert!(w.changes(&run("running", "pending")).is_empty());
        assert_eq!(w.changes(&run("succeeded", "pending")), ["a  succeeded"]);
    }
}
