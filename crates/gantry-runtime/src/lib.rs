//! Step execution backends behind `gantry_engine::runtime::StepRuntime`.
