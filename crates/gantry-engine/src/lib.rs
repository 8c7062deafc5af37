//! Gantry's run engine: the state machine of one workflow run, and the driver that connects it
//! to a step runtime.
//!
//! `run` is free of I/O: it is told what happened (a step exited, an approval was answered, time
//! passed) and answers with what to do next. `driver` runs that state machine on tokio against a
//! [`runtime::StepRuntime`], a [`clock::Clock`] and a [`secrets::SecretResolver`], and reports
//! every state change and log line to a [`sink::RunSink`]. The engine never imports a database,
//! HTTP or container crate: those live behind these traits.
//! [`driver::RunHandle`] is how the rest of Gantry reaches a live run: cancel, answer an
//! approval, read its [`run::RunRecord`], and serve the metadata API through
//! [`metadata::MetadataBackend`].
//!
//! Concurrency: a [`run::Run`] is a plain value; the driver keeps it behind one mutex that is
//! never held across an `.await`, so handles may be used from any thread.

pub mod clock;
pub mod driver;
pub mod metadata;
pub mod run;
pub mod runtime;
pub mod secrets;
pub mod sink;
