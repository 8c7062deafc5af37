//! Step execution backends behind [`gantry_engine::runtime::StepRuntime`].
//!
//! This crate owns how one step is executed: turning its `input`, `inputFile` or `command` into
//! something runnable ([`script`]), giving it its folder and environment, streaming its output
//! line by line, and making sure nothing of it is left running after its outcome is reported.
//! Two backends implement the contract: [`DockerRuntime`] (a container per step, through the
//! Docker Engine API) and [`ProcessRuntime`] (a local child process in its own process group).
//! One conformance suite in `tests/it` runs against both.
//! Both also run long-lived services ([`service`]): a webhook trigger's container or process,
//! listening on `$PORT` until the server stops it.
//!
//! It must not decide run order, retries or timeouts: the engine does, and tells a runtime to
//! stop a step by firing its cancellation token.
//!
//! Concurrency model: each [`StepRuntime::run`] call is one independent future on the caller's
//! tokio runtime. A runtime value holds no per-step state, so it is shared by every step of every
//! run; the output of a step is read by small tasks owned by (and aborted with) that future.

use std::collections::BTreeMap;

use gantry_engine::runtime::{MetadataEndpoint, StepRuntime};

pub mod docker;
mod lines;
pub mod process;
pub mod script;
pub mod service;

pub use docker::DockerRuntime;
pub use process::ProcessRuntime;
pub use service::{Service, ServiceError, ServiceJob, ServiceRuntime};

/// The runtimes Gantry knows by name, as written in configuration (`--runtime docker`).
pub const RUNTIME_NAMES: [&str; 2] = ["docker", "process"];

/// Why a runtime could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A runtime name that is not one of [`RUNTIME_NAMES`].
    #[error("unknown step runtime `{name}`: expected one of {}", RUNTIME_NAMES.join(", "))]
    UnknownRuntime { name: String },
    /// The Docker Engine did not answer on its local socket.
    #[error("Docker is not reachable on its local socket: {reason}")]
    DockerUnreachable { reason: String },
}

/// Builds the runtime configured by name: `docker` connects to the local Docker Engine (and
/// fails when it does not answer), `process` runs steps as local processes.
pub async fn runtime_by_name(name: &str) -> Result<Box<dyn StepRuntime>, RuntimeError> {
    match name {
        "docker" => Ok(Box::new(DockerRuntime::connect().await?)),
        "process" => Ok(Box::new(ProcessRuntime::new())),
        other => Err(RuntimeError::UnknownRuntime {
            name: other.to_owned(),
        }),
    }
}

/// `METADATA_API_URL` as Relay hands it to a step: the step's token is the userinfo's password.
pub(crate) fn metadata_api_url(host: &str, endpoint: &MetadataEndpoint) -> String {
    format!("http://:{}@{host}:{}", endpoint.token, endpoint.port)
}

/// Refuses an environment that a process or container cannot be given. The message names the
/// variable, never its value: values may be secrets, and Docker's own error would quote them.
pub(crate) fn check_environment(env: &BTreeMap<String, String>) -> Result<(), String> {
    for (name, value) in env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(format!(
                "the step's environment has an invalid variable name {name:?}"
            ));
        }
        if value.contains('\0') {
            return Err(format!(
                "the value of the step's environment variable `{name}` contains a NUL byte"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_environment_is_named_without_its_values() {
        let env = |name: &str, value: &str| BTreeMap::from([(name.to_owned(), value.to_owned())]);
        assert_eq!(check_environment(&env("TOKEN", "s3cret")), Ok(()));
        let message = check_environment(&env("", "s3cret")).unwrap_err();
        assert_eq!(
            message,
            "the step's environment has an invalid variable name \"\""
        );
        let message = check_environment(&env("A=B", "s3cret")).unwrap_err();
        assert!(!message.contains("s3cret"), "{message}");
        let message = check_environment(&env("TOKEN", "s3\0cret")).unwrap_err();
        assert!(!message.contains("s3"), "{message}");
    }
}
