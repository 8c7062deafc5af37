//! Turning a step's [`Program`] into something a runtime can execute.
//!
//! Owns Relay's `input` and `inputFile` rules: the script lands in the step's folder as
//! [`INPUT_SCRIPT`] (mode 0755) and its shebang picks the interpreter, `#!/bin/sh` when it has
//! none. An `inputFile` is a path relative to the workflow file's folder or an `http(s)` URL,
//! fetched with a [`MAX_SCRIPT_BYTES`] limit and a [`FETCH_TIMEOUT`]. Both runtimes share this
//! module, so a step's script means the same thing in a container and in a local process.
//!
//! It must not start anything, and its errors must name the script's source (path or URL,
//! with any credentials in the URL removed) but never the step's environment.
//!
//! Concurrency model: plain async functions; each call touches only its own step folder.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gantry_engine::runtime::Program;

/// The script's file name inside the step's folder.
pub const INPUT_SCRIPT: &str = "input-script";

/// The largest script accepted from an `inputFile`.
pub const MAX_SCRIPT_BYTES: usize = 1024 * 1024;

/// How long fetching an `inputFile` URL may take, from connecting to the last byte.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

const DEFAULT_SHEBANG: &str = "#!/bin/sh\n";

/// What a step executes once its program is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Executable {
    /// The script at [`INPUT_SCRIPT`] in the step's folder, run by its shebang.
    Script,
    /// `command` with `args`, as written in the workflow. With no `command`, a container runs its
    /// image's own entrypoint; a local process cannot run at all.
    Command {
        command: Option<String>,
        args: Vec<String>,
    },
}

/// Why a step's program could not be made runnable. The message is the step's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("inputFile {reference} could not be read from {}: {reason}", path.display())]
    Unreadable {
        reference: String,
        path: PathBuf,
        reason: String,
    },
    #[error("inputFile {url} could not be fetched: {reason}")]
    Unfetchable { url: DisplayUrl, reason: String },
    #[error("the step's folder {} could not be created: {reason}", path.display())]
    NoStepDir { path: PathBuf, reason: String },
    #[error("the step's script could not be written to {}: {reason}", path.display())]
    Unwritable { path: PathBuf, reason: String },
}

/// A URL as shown in messages: any user name or password in it is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayUrl(String);

impl DisplayUrl {
    fn new(url: &str) -> Self {
        match reqwest::Url::parse(url) {
            Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
                // Both setters only fail for URLs that cannot have credentials at all.
                let _ = parsed.set_username("");
                let _ = parsed.set_password(None);
                Self(parsed.into())
            }
            _ => Self(url.to_owned()),
        }
    }
}

impl fmt::Display for DisplayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Resolves `program` for a step whose folder is `step_dir`, writing the script there when
/// there is one. The folder is created if it does not exist yet.
pub async fn prepare(program: &Program, step_dir: &Path) -> Result<Executable, ScriptError> {
    tokio::fs::create_dir_all(step_dir)
        .await
        .map_err(|err| ScriptError::NoStepDir {
            path: step_dir.to_owned(),
            reason: err.to_string(),
        })?;
    let text = match program {
        Program::Command { command, args } => {
            return Ok(Executable::Command {
                command: command.clone(),
                args: args.clone(),
            })
        }
        Program::Script(text) => text.clone().into_bytes(),
        Program::InputFile {
            reference,
            base_dir,
        } => load_input_file(reference, base_dir).await?,
    };
    write_script(step_dir, &text).await?;
    Ok(Executable::Script)
}

/// Reads an `inputFile`: a URL when it starts with `http://` or `https://`, a path otherwise.
pub async fn load_input_file(reference: &str, base_dir: &Path) -> Result<Vec<u8>, ScriptError> {
    if is_url(reference) {
        return fetch(reference)
            .await
            .map_err(|reason| ScriptError::Unfetchable {
                url: DisplayUrl::new(reference),
                reason,
            });
    }
    let path = base_dir.join(reference);
    let unreadable = |reason: String| ScriptError::Unreadable {
        reference: reference.to_owned(),
        path: path.clone(),
        reason,
    };
    let metadata = tokio::fs::metadata(&path)
        .await
        .map_err(|err| unreadable(err.to_string()))?;
    if metadata.len() > MAX_SCRIPT_BYTES as u64 {
        return Err(unreadable(too_large()));
    }
    tokio::fs::read(&path)
        .await
        .map_err(|err| unreadable(err.to_string()))
}

fn is_url(reference: &str) -> bool {
    let lower = reference.get(..8).unwrap_or(reference).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn too_large() -> String {
    format!("it is larger than {} MiB", MAX_SCRIPT_BYTES / (1024 * 1024))
}

async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .map_err(|err| format!("no HTTP client: {}", err.without_url()))?;
    let mut response = client.get(url).send().await.map_err(describe)?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|len| len > MAX_SCRIPT_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > MAX_SCRIPT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error without the URL (the caller names it once, without credentials).
fn describe(err: reqwest::Error) -> String {
    if err.is_timeout() {
        return format!("no answer within {} s", FETCH_TIMEOUT.as_secs());
    }
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Writes the script next to the step's files. It goes through a temporary name and a rename,
/// so a script that a retried step is still executing is never rewritten in place.
async fn write_script(step_dir: &Path, text: &[u8]) -> Result<(), ScriptError> {
    let path = step_dir.join(INPUT_SCRIPT);
    let unwritable = |err: std::io::Error| ScriptError::Unwritable {
        path: path.clone(),
        reason: err.to_string(),
    };
    let mut content = Vec::with_capacity(text.len() + DEFAULT_SHEBANG.len());
    if !text.starts_with(b"#!") {
        content.extend_from_slice(DEFAULT_SHEBANG.as_bytes());
    }
    content.extend_from_slice(text);
    // The usual case, a step's first attempt: create the file with its mode in one call. The
    // file is small, so a plain blocking write costs less than hops to a blocking thread.
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o755)
            .open(&path)
        {
            Ok(mut file) => return file.write_all(&content).map_err(unwritable),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(unwritable(err)),
        }
    }
    let temporary = step_dir.join(format!(".{INPUT_SCRIPT}.tmp"));
    tokio::fs::write(&temporary, &content)
        .await
        .map_err(unwritable)?;
    tokio::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755))
        .await
        .map_err(unwritable)?;
    tokio::fs::rename(&temporary, &path)
        .await
        .map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("https://example.invalid/x.sh"));
        assert!(is_url("HTTP://example.invalid/x.sh"));
        assert!(!is_url("scripts/http.sh"));
        assert!(!is_url("ht"));
    }

    #[test]
    fn credentials_never_show_in_a_url() {
        let url = DisplayUrl::new("https://me:hunter2@example.invalid/x.sh");
        assert_eq!(url.to_string(), "https://example.invalid/x.sh");
        let plain = DisplayUrl::new("http://127.0.0.1:8080/x.sh");
        assert_eq!(plain.to_string(), "http://127.0.0.1:8080/x.sh");
    }
}
