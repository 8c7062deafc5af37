//! The integration tests of `gantry-runtime`, one binary (see STYLE.md).
//!
//! `conformance` holds the behaviour every backend must share and runs each case against
//! `ProcessRuntime` and `DockerRuntime`; `docker` and `process` hold what only one of them does.
//! The Docker cases use the real local engine and the local image `gantry-test/busybox:latest`
//! that `.ci/run` builds; they fail, not skip, when the engine is not running. Each case gets its
//! own run id and folder, so all of them run in parallel. `services` runs the long-lived
//! services (webhook trigger containers) of both backends.

mod conformance;
mod docker;
mod process;
mod services;
mod support;
