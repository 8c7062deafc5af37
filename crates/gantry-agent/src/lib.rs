//! Gantry's agent: runs steps inside the user's own network. It long-polls the server for jobs
//! of its pool, holds each job's lease by heartbeats, streams the step's log lines in numbered
//! batches, and reports how the step ended with the files it left in `outputs/`. The server
//! never calls it, so it needs no inbound access.
//!
//! What executes a step is any [`gantry_engine::runtime::StepRuntime`] (Docker or local
//! processes, chosen by the `gantry agent` command). Network errors are retried with
//! exponential backoff and jitter, forever: a server that restarts finds the agent polling
//! again, and the log lines it had not acknowledged are sent again from where it stopped.
//! A shutdown stops claiming and lets the running steps finish.
//!
//! Steps reach Relay's metadata API at the agent (`METADATA_API_URL`), which passes their
//! requests on to the server: the server answers as the step, from its run.
//!
//! Does not reach the database; knows the server only through [`protocol`].

mod metadata;
pub mod protocol;
mod runner;

pub use runner::{run, Agent, AgentError};
