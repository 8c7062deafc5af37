//! Where a run reports what happens: state changes and log lines, in order.

use chrono::{DateTime, Utc};

use crate::runtime::LogStream;

/// The state of a step. `Waiting` is an approval step waiting for an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepState {
    Pending,
    Waiting,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Waiting => "waiting",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepState::Succeeded | StepState::Failed | StepState::Skipped | StepState::Cancelled
        )
    }
}

/// The state of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
    TimedOut,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::TimedOut => "timed_out",
        }
    }

    pub fn is_final(self) -> bool {
        self != RunState::Running
    }
}

/// Something that happened in a run.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    StepChanged {
        step: String,
        state: StepState,
        /// Why, in the user's words: "exit code 1", "when condition is false", "timed out after 30s".
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    RunChanged {
        state: RunState,
        reason: Option<String>,
        at: DateTime<Utc>,
    },
    Log {
        step: String,
        stream: LogStream,
        /// One line, without its newline, with secret values already masked.
        line: String,
        at: DateTime<Utc>,
    },
}

pub trait RunSink: Send + Sync {
    fn event(&self, event: RunEvent);
}
