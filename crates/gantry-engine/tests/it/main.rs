//! The engine's one integration-test binary: the state machine driven by hand (`run`), and the
//! driver against a scripted runtime on tokio's paused clock (`driver`).

mod driver;
mod run;
mod support;
