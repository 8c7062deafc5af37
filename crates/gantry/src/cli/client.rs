//! The CLI as a client of `gantry server`: `--server URL` and `--api-key KEY` (or
//! `GANTRY_SERVER`, `GANTRY_API_KEY`), JSON over HTTP, errors shown as the server states them.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use serde_json::Value;

use super::render::diagnostics_text;

pub(crate) const DEFAULT_SERVER: &str = "http://127.0.0.1:7700";

/// Where the server is and how to authenticate, from flags or the environment.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Connection {
    /// The server's URL.
    #[arg(long, env = "GANTRY_SERVER", default_value = DEFAULT_SERVER, global = true)]
    server: String,
    /// An API key (`gantry server` prints one on its first start).
    #[arg(long, env = "GANTRY_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,
}

pub(crate) struct Client {
    base: String,
    key: String,
    http: reqwest::Client,
}

/// What the server answered.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

impl Client {
    pub(crate) fn new(c: &Connection) -> anyhow::Result<Client> {
        let Some(key) = c.api_key.clone() else {
            bail!("an API key is needed: pass --api-key or set GANTRY_API_KEY");
        };
        let http = reqwest::Client::builder()
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client {
            base: c.server.trim_end_matches('/').to_owned(),
            key,
            http,
        })
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/yaml")
                .body(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the Gantry server at {}", self.base))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, body })
    }
}

impl Answer {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The server's error, as one line (and the diagnostics of an invalid workflow, rendered
    /// against `source` when given).
    pub(crate) fn error_text(&self, source: Option<(&Path, &str)>) -> String {
        let message = self.body["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the server answered {}", self.status));
        let code = self.body["code"].as_str().unwrap_or("error");
        let mut out = format!("error: {message} [{code}]\n");
        if let (Some((path, src)), Some(diags)) =
            (source, self.body["details"]["diagnostics"].as_array())
        {
            // The server's diagnostics carry lines and columns; show them against the file.
            let parsed = gantry_workflow::parse(src);
            if parsed.diagnostics.len() == diags.len() {
                out =
                    diagnostics_text(&path.display().to_string(), src, &parsed.diagnostics, false)
                        + &out;
            } else {
                for d in diags {
                    out.push_str(&format!(
                        "{}:{}:{}: {} [{}]\n",
                        path.display(),
                        d["line"],
                        d["column"],
                        d["message"].as_str().unwrap_or_default(),
                        d["code"].as_str().unwrap_or_default()
                    ));
                }
            }
        }
        out
    }
}

pub(crate) fn block_on<F: std::future::Future<Output = anyhow::Result<ExitCode>>>(
    f: F,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}
