//! The `gantry` command: parses arguments and hands each subcommand to its module in `cli`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

// A faster allocator than glibc's for the many small allocations of parsing and running
// workflows (the parse benchmark spends a third of its time in malloc and free otherwise).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
