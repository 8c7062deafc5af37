//! The messages between an agent and the server, as JSON over HTTPS. The agent always calls;
//! the server never calls an agent.
//!
//! | request | body | answer |
//! |---|---|---|
//! | `POST /api/v1/agent/jobs/claim` | [`ClaimRequest`] | [`ClaimAnswer`] (held open until a job comes or `waitSeconds` pass) |
//! | `POST /api/v1/agent/jobs/{id}/heartbeat` | [`AgentRef`] | [`HeartbeatAnswer`]; 409 when the lease is lost |
//! | `POST /api/v1/agent/jobs/{id}/logs` | [`LogsRequest`] | [`LogsAnswer`]: the next sequence number expected per stream |
//! | `POST /api/v1/agent/jobs/{id}/complete` | [`CompleteRequest`] | 204; 409 when the lease is lost |
//! | `POST /api/v1/agent/jobs/{id}/metadata` | [`MetadataRequest`] | [`MetadataAnswer`]: the metadata API's answer to the step; 409 when the lease is lost |
//!
//! Log lines carry a sequence number per stream, starting at 0. The server forwards a line only
//! when its number is the one it expects next, skips a number it has seen, and answers with
//! what it expects, so an agent that resends after a lost answer doubles nothing and an agent
//! that lost a request resends from there: no line is lost or doubled across reconnects.
//! The server answers only once the lines it acknowledges are stored, so a server that
//! restarts expects the same numbers the agent still holds lines from.
//!
//! A step on an agent reaches Relay's metadata API at the agent (`METADATA_API_URL`, with a
//! token of the agent's own for that step); the agent passes each request on as a
//! [`MetadataRequest`] and the server answers it as that step, from the step's run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Who is calling: the agent's own id (stable for the process), its version and host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRef {
    pub id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub hostname: String,
    /// The pool the agent means to serve; the server checks it against its token's pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimRequest {
    pub agent: AgentRef,
    /// At most this many jobs (1 to 64).
    pub max: u32,
    /// Hold the request open this long when there is no job (0 to 60).
    pub wait_seconds: u64,
    /// The jobs this agent is running, so the server can list them.
    #[serde(default)]
    pub running: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimAnswer {
    pub jobs: Vec<AgentJob>,
    /// How long the lease of each job lasts without a heartbeat.
    pub lease_seconds: u64,
}

/// A step to run, with everything it needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentJob {
    pub id: String,
    pub run_id: String,
    pub step: String,
    /// 1 for the first claim, one more for each claim after a lease lapsed.
    pub attempt: i64,
    pub image: Option<String>,
    pub program: AgentProgram,
    /// The step's environment: it may hold secrets, and the agent never logs it.
    pub env: BTreeMap<String, String>,
    /// The step's `spec.json`, written into its folder.
    pub spec: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AgentProgram {
    /// A script, shebang included or `#!/bin/sh` implied.
    Script(String),
    /// A script at an http(s) URL, fetched by the agent.
    InputUrl(String),
    /// A command and its arguments; no command is the image's own entrypoint.
    Command {
        command: Option<String>,
        args: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatAnswer {
    /// The run was cancelled: stop the step and complete it as cancelled.
    pub cancel: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLineWire {
    pub stream: Stream,
    pub seq: u64,
    pub line: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    pub agent: AgentRef,
    pub lines: Vec<LogLineWire>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsAnswer {
    /// The next sequence number the server expects on each stream.
    pub stdout: u64,
    pub stderr: u64,
}

/// How a step ended on the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Exited(i32),
    FailedToStart(String),
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteRequest {
    pub agent: AgentRef,
    pub outcome: Outcome,
    /// The files the step left in its `outputs/` folder: name → content.
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
}

/// A step's request to the metadata API, passed on by the agent that runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataRequest {
    pub agent: AgentRef,
    /// `GET`, `PUT` or `POST`.
    pub method: String,
    /// The path below `METADATA_API_URL`, with its query: `/spec?path=a.b`.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// The request's body (the metadata API speaks JSON and text).
    #[serde(default)]
    pub body: String,
}

/// The metadata API's answer, for the agent to hand to the step unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataAnswer {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub body: String,
}
