//! Command-line definitions (clap) and dispatch. Help text and shell completions come from here.

mod render;
mod workflow;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// Gantry: workflow automation and an internal developer portal in one self-hosted server.
///
/// Gantry reads Relay's `apiVersion: v1` workflow files unchanged.
#[derive(Debug, Parser)]
#[command(name = "gantry", version, propagate_version = true)]
pub(crate) struct Cli {
    /// When to colour output.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check and inspect workflow files.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Print a shell completion script to standard output.
    ///
    /// For example: `gantry completions bash > /etc/bash_completion.d/gantry`.
    Completions {
        /// The shell to generate completions for.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum WorkflowCommand {
    /// Check workflow files and print every problem with its source line.
    ///
    /// Exits 0 when every file is valid (warnings allowed), 1 otherwise.
    Validate {
        /// Workflow files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show a workflow's parameters, triggers and steps in execution order.
    ///
    /// Steps are grouped in levels of the dependency graph: the steps of one level can run in
    /// parallel once every earlier level is done. Dependencies are listed as written
    /// (`dependsOn`) and as implied by references to other steps' outputs or status.
    Plan {
        /// The workflow file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    match cli.command {
        Command::Workflow(WorkflowCommand::Validate { files, format }) => {
            workflow::validate(&files, format == Format::Json, color)
        }
        Command::Workflow(WorkflowCommand::Plan { file, format }) => {
            workflow::plan(&file, format == Format::Json, color)
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "gantry", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
