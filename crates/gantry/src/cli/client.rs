//! The CLI as a client of `gantry server`: where to connect comes from `--server`/`--api-key`
//! (or `GANTRY_SERVER`, `GANTRY_API_KEY`) and saved profiles ([`super::profile`]); JSON over
//! HTTP; errors shown as the server states them. No message here contains the API key.

use std::path::Path;

use anyhow::Context;
use serde_json::Value;

use super::profile::{self, Profiles, Target};
use super::render::diagnostics_text;

/// Where the server is and how to authenticate: flags, the environment, or a saved profile.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Connection {
    /// The server's URL [default: the profile's server, else http://127.0.0.1:7700].
    #[arg(long, env = "GANTRY_SERVER", global = true, value_name = "URL")]
    server: Option<String>,
    /// An API key (`gantry server` prints one on its first start) [default: the profile's key].
    #[arg(
        long,
        env = "GANTRY_API_KEY",
        hide_env_values = true,
        global = true,
        value_name = "KEY"
    )]
    api_key: Option<String>,
    /// The saved profile to use (`gantry login`) [default: `default`].
    #[arg(long, env = "GANTRY_PROFILE", global = true, value_name = "NAME")]
    profile: Option<String>,
}

impl Connection {
    /// The server and key to use, in this order: flags, environment, the named profile, the
    /// `default` profile. The profiles file is read only when flags and environment fall short.
    pub(crate) fn resolve(&self) -> anyhow::Result<Target> {
        let given = profile::Given {
            server: self.server.as_deref(),
            api_key: self.api_key.as_deref(),
            profile: self.profile.as_deref(),
        };
        let path = profile::this_config_path();
        let shown = path.as_ref().map_or_else(
            |_| "the profiles file".to_owned(),
            |p| p.display().to_string(),
        );
        profile::resolve(
            &given,
            |name| {
                let path = match &path {
                    Ok(p) => p,
                    // No file can be found, so there are no profiles.
                    Err(_) => return Ok(None),
                };
                Profiles::load(path)?.get(name)
            },
            Path::new(&shown),
        )
    }
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
        Client::to(c.resolve()?)
    }

    pub(crate) fn to(target: Target) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client {
            base: target.server.trim_end_matches('/').to_owned(),
            key: target.api_key,
            http,
        })
    }

    /// The server's URL, as shown in messages.
    pub(crate) fn server(&self) -> &str {
        &self.base
    }

    /// Opens `GET path` as a server-sent event stream, from after `last_event_id` when given.
    /// `Ok(Err(answer))` is the server refusing (no point in trying again); `Err` is the server
    /// not answering.
    pub(crate) async fn open_stream(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> anyhow::Result<Result<reqwest::Response, Answer>> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self
            .http
            .get(&url)
            .bearer_auth(&self.key)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the Gantry server at {}", self.base))?;
        if response.status().is_success() {
            return Ok(Ok(response));
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok(Err(Answer::from_text(status, text)))
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> anyhow::Result<Answer> {
        self.send_as(method, path, body, "application/yaml").await
    }

    /// Sends a JSON body (`application/json`).
    pub(crate) async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<Answer> {
        self.send_as(method, path, Some(body.to_string()), "application/json")
            .await
    }

    async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
        content_type: &str,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the Gantry server at {}", self.base))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok(Answer::from_text(status, text))
    }
}

/// A path segment with everything but unreserved characters percent-encoded, so a name cannot
/// change which route a request reaches.
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Answer {
    fn from_text(status: u16, text: String) -> Answer {
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer { status, body }
    }

    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The server's error as `message [code]`.
    pub(crate) fn summary(&self) -> String {
        let message = self.body["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("the server answered {}", self.status));
        let code = self.body["code"].as_str().unwrap_or("error");
        format!("{message} [{code}]")
    }

    /// The server's error, as one line (and the diagnostics of an invalid workflow, rendered
    /// against `source` when given).
    pub(crate) fn error_text(&self, source: Option<(&Path, &str)>) -> String {
        let mut out = format!("error: {}\n", self.summary());
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

pub(crate) fn block_on<T, F: std::future::Future<Output = anyhow::Result<T>>>(
    f: F,
) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_leave_their_place_in_the_path() {
        assert_eq!(segment("deploy-prod_1.x~"), "deploy-prod_1.x~");
        assert_eq!(segment("../a b/?#"), "..%2Fa%20b%2F%3F%23");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
