//! Command-line definitions (clap) and dispatch. Help text and shell completions come from here.

mod access;
mod action;
mod agent;
mod catalog;
mod client;
mod follow;
mod profile;
mod remote;
mod render;
mod run;
mod scorecard;
mod server;
mod sse;
mod trigger;
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
    /// Run a workflow file on this machine, or manage runs on a server (`gantry run start …`).
    ///
    /// `gantry run FILE`: steps run in Docker containers (or as local processes with
    /// `--runtime process`) with the same engine the server uses; Relay's metadata API is
    /// served to them for the run. Prints each state change and every log line as it comes,
    /// then a summary. Exits 0 only when the run succeeded. Ctrl-C cancels the run and removes
    /// its containers.
    Run(RunCommand),
    /// Manage a workflow's secrets on the server.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Manage connections on the server.
    #[command(subcommand)]
    Connection(ConnectionCommand),
    /// Show a workflow's triggers on the server; make, list and revoke push trigger tokens.
    #[command(subcommand)]
    Trigger(trigger::TriggerCommand),
    /// Manage users on the server (an admin's key): create with a role, list.
    #[command(subcommand)]
    User(access::UserCommand),
    /// Manage teams on the server: create, add and remove members and maintainers, list.
    #[command(subcommand)]
    Team(access::TeamCommand),
    /// Manage service accounts (principals for automation) on the server.
    #[command(subcommand)]
    ServiceAccount(access::ServiceAccountCommand),
    /// Make, list and revoke API keys of users and service accounts.
    #[command(subcommand)]
    Apikey(access::ApiKeyCommand),
    /// Read the audit log (an admin's key): who changed what, when, from where; newest first.
    Audit(access::AuditArgs),
    /// Apply definition files (blueprints, entities and actions) to the server, all or nothing.
    ///
    /// Every error of every file is printed as `file:line:col: message` before anything is
    /// written. Applying the same files again changes nothing. `--dry-run` prints the diff it
    /// would make; `--prune` deletes what this source declared before and the files no longer
    /// declare. This is what a CI job in a repository of definition files runs.
    Apply {
        #[command(flatten)]
        args: catalog::ApplyArgs,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Query the software catalog on the server.
    Catalog {
        #[command(subcommand)]
        command: catalog::CatalogCommand,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Self-service actions: list them, run one (`--follow` to its end), approve, deny, cancel
    /// and rerun runs, list and show runs.
    ///
    /// Actions are defined in definition files (`kind: Action`, applied with `gantry apply`).
    Action {
        #[command(subcommand)]
        command: action::ActionCommand,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Scorecards: where entities stand, what to fix next, level history, and `check`, which
    /// evaluates definition files before they merge and fails on a level drop.
    ///
    /// Scorecards are defined in definition files (`kind: Scorecard`, applied with
    /// `gantry apply`) or through the API.
    Scorecard {
        #[command(subcommand)]
        command: scorecard::ScorecardCommand,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Initiatives: a scorecard's target level by a deadline, and how far each team is.
    Initiative {
        #[command(subcommand)]
        command: scorecard::InitiativeCommand,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Automations: catalog and run events that start workflows or write entities, and what
    /// each one did.
    Automation {
        #[command(subcommand)]
        command: scorecard::AutomationCommand,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Import another portal's catalog into the server's (Backstage `catalog-info.yaml`).
    Import {
        #[command(subcommand)]
        command: catalog::ImportCommand,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Run steps for a server from this network (`gantry agent --server URL --token T`), or
    /// make an agent token (an admin's key): `gantry agent token create --pool NAME`.
    Agent(agent::AgentArgs),
    /// Save a server and an API key as a profile, after checking the key with the server.
    ///
    /// Client commands then use it without `--server` and `--api-key`. For each of the server and
    /// the key, the order is: the flag, `GANTRY_SERVER`/`GANTRY_API_KEY`, the profile named by
    /// `--profile` or `GANTRY_PROFILE`, the `default` profile. Profiles live in `$GANTRY_CONFIG`,
    /// else `$XDG_CONFIG_HOME/gantry/config.toml`, else `~/.config/gantry/config.toml`, written
    /// with mode 0600. A key the server refuses is not saved.
    Login {
        /// The server's URL, e.g. `https://gantry.example.com`.
        #[arg(long, value_name = "URL")]
        server: String,
        /// The API key; read from standard input when left out (so it stays out of the shell's
        /// history).
        #[arg(long, value_name = "KEY")]
        api_key: Option<String>,
        /// The profile's name.
        #[arg(long, default_value = profile::DEFAULT_PROFILE, value_name = "NAME")]
        profile: String,
    },
    /// Remove a saved profile (the key stays valid on the server until revoked there).
    Logout {
        /// The profile's name.
        #[arg(long, default_value = profile::DEFAULT_PROFILE, value_name = "NAME")]
        profile: String,
    },
    /// Start the Gantry server (on an embedded data directory; no other setup).
    ///
    /// Prints the address it listens on. Serves `/healthz` and `/readyz`. Stops gracefully on
    /// Ctrl-C or SIGTERM. Logs go to standard error (`GANTRY_LOG` filters them, e.g. `debug`).
    Server {
        /// Where Gantry keeps its data (created if missing).
        #[arg(long, default_value = "./gantry-data", value_name = "DIR")]
        data_dir: PathBuf,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:7700", value_name = "ADDR")]
        listen: std::net::SocketAddr,
        /// `postgres://user:password@host/db` to keep data in PostgreSQL instead of SQLite.
        #[arg(
            long,
            env = "GANTRY_DATABASE_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        database_url: Option<String>,
        /// Where run steps execute: `auto` uses Docker when its engine answers.
        #[arg(long, value_enum, default_value_t = ServerRuntime::Auto)]
        runtime: ServerRuntime,
        /// The base URL callers reach this server at; webhook URLs and the push endpoint are
        /// built on it (default: `http://` and the listen address).
        #[arg(long, env = "GANTRY_PUBLIC_URL", value_name = "URL")]
        public_url: Option<String>,
        /// How many steps may execute at once; more wait for a slot (default: 32 per core).
        #[arg(long, env = "GANTRY_MAX_PARALLEL_STEPS", value_name = "N")]
        max_parallel_steps: Option<usize>,
        /// Where runs' scratch folders go (removed when each run ends); default: a folder on
        /// `/dev/shm` when it allows executing files, else `runs/` in the data directory.
        #[arg(long, env = "GANTRY_WORK_DIR", value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// How long a webhook trigger's container runs without a request before it is stopped
        /// (it starts again at the next one).
        #[arg(
            long,
            env = "GANTRY_TRIGGER_IDLE_TIMEOUT",
            default_value = "5m",
            value_name = "DURATION",
            value_parser = parse_duration
        )]
        trigger_idle_timeout: std::time::Duration,
        /// Write logs as JSON lines.
        #[arg(long)]
        json_logs: bool,
        /// Single sign-on with an OpenID Connect provider, configured by a JSON file:
        /// `{"issuer", "clientId", "clientSecret", "scopes", "groupsClaim", "defaultRole",
        /// "groups": {"<group>": {"team": "<team>", "role": "<role>"}}}`. The secret may come
        /// from `GANTRY_OIDC_CLIENT_SECRET` instead. The provider's callback is
        /// `<public URL>/auth/oidc/callback`.
        #[arg(long, env = "GANTRY_OIDC_CONFIG", value_name = "FILE")]
        oidc_config: Option<PathBuf>,
    },
    /// Administer a server's data directly (on its machine).
    #[command(subcommand)]
    Admin(AdminCommand),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServerRuntime {
    Auto,
    Docker,
    Process,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Create an admin API key and print it (once).
    CreateKey {
        /// The server's data directory.
        #[arg(long, default_value = "./gantry-data", value_name = "DIR")]
        data_dir: PathBuf,
        /// The server's PostgreSQL database, when it uses one.
        #[arg(
            long,
            env = "GANTRY_DATABASE_URL",
            hide_env_values = true,
            value_name = "URL"
        )]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum WorkflowCommand {
    /// Create or replace a workflow on the server from a YAML file (validated first).
    Apply {
        /// The workflow file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The workflow's name; defaults to the file name without its extension.
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// List the server's workflows.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Print a workflow's current YAML.
    Get {
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// List a workflow's versions.
    Versions {
        name: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Delete a workflow (its versions stay in run history).
    Delete {
        name: String,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Set the team that owns a workflow on the server (its maintainers may change it).
    Owner {
        name: String,
        /// The owning team.
        #[arg(required_unless_present = "none")]
        team: Option<String>,
        /// Clear the owner instead.
        #[arg(long, conflicts_with = "team")]
        none: bool,
        #[command(flatten)]
        connection: client::Connection,
    },
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

#[derive(Debug, Subcommand)]
enum RunAction {
    /// Start a run of a workflow on the server.
    Start {
        /// The workflow's name.
        workflow: String,
        /// A parameter value, `name=value` (repeatable).
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Print the run's log lines and state until it ends; exit 0 only if it succeeded.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Start run ID again, as a new run.
    Rerun {
        id: String,
        /// Print the new run's log lines and state until it ends; exit 0 only if it succeeded.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// List runs on the server, newest first.
    List {
        #[arg(long)]
        workflow: Option<String>,
        /// queued, running, succeeded, failed, cancelled or timed_out.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Show a run with its steps and outputs.
    Get {
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Print a run's log lines (`--follow`: as they are written, until it ends).
    Logs {
        id: String,
        /// Stream the lines live until the run ends; exit 0 only if it succeeded.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Approve a waiting approval step.
    Approve {
        id: String,
        step: String,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Deny a waiting approval step.
    Deny {
        id: String,
        step: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Cancel a run.
    Cancel {
        id: String,
        #[command(flatten)]
        connection: client::Connection,
    },
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Set a secret; the value is read from standard input (one trailing newline dropped).
    Set {
        name: String,
        #[arg(long)]
        workflow: String,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// List a workflow's secret names.
    List {
        #[arg(long)]
        workflow: String,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Delete a secret.
    Delete {
        name: String,
        #[arg(long)]
        workflow: String,
        #[command(flatten)]
        connection: client::Connection,
    },
}

#[derive(Debug, Subcommand)]
enum ConnectionCommand {
    /// Set a connection from a YAML or JSON file of fields.
    Set {
        #[arg(value_name = "TYPE")]
        type_: String,
        name: String,
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        connection: client::Connection,
    },
    /// List connections (types and names).
    List {
        #[command(flatten)]
        connection: client::Connection,
    },
    /// Delete a connection.
    Delete {
        #[arg(value_name = "TYPE")]
        type_: String,
        name: String,
        #[command(flatten)]
        connection: client::Connection,
    },
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct RunCommand {
    #[command(subcommand)]
    action: Option<RunAction>,
    /// The workflow file to run on this machine.
    #[arg(value_name = "FILE", required = true)]
    file: Option<PathBuf>,
    /// A parameter value, `name=value` (repeatable). Values are strings, as in Relay.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Parameters from a YAML or JSON mapping (values of any type); `--param` wins.
    #[arg(long, value_name = "FILE")]
    params_file: Option<PathBuf>,
    /// Secrets from a YAML or JSON mapping of name to string.
    #[arg(long, value_name = "FILE")]
    secrets_file: Option<PathBuf>,
    /// Connections from a YAML or JSON mapping: type → name → fields (or `type/name` → fields).
    #[arg(long, value_name = "FILE")]
    connections_file: Option<PathBuf>,
    /// Where steps run.
    #[arg(long, value_enum, default_value_t = run::RuntimeKind::Docker)]
    runtime: run::RuntimeKind,
    /// Approve every approval step without asking.
    #[arg(long, conflicts_with = "deny")]
    approve: bool,
    /// Deny every approval step without asking.
    #[arg(long)]
    deny: bool,
    /// How many steps may run at once (0: no limit).
    #[arg(long, default_value_t = 4, value_name = "N")]
    max_parallel: usize,
    /// The longest a step may run when it sets no `timeout` (e.g. `30m`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    step_timeout: Option<std::time::Duration>,
    /// Output format: `json` prints the run record on standard output at the end.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Keep the run's work folder (step specs and outputs) instead of removing it.
    #[arg(long)]
    keep_work_dir: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    gantry_workflow::duration::parse(s)
        .ok_or_else(|| format!("`{s}` is not a duration such as `90s`, `15m` or `1h30m`"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
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
        Command::Server {
            data_dir,
            listen,
            database_url,
            runtime,
            public_url,
            max_parallel_steps,
            work_dir,
            trigger_idle_timeout,
            json_logs,
            oidc_config,
        } => server::run(server::Options {
            data_dir,
            listen,
            database_url,
            runtime: match runtime {
                ServerRuntime::Auto => gantry_server::server::RuntimeChoice::Auto,
                ServerRuntime::Docker => gantry_server::server::RuntimeChoice::Docker,
                ServerRuntime::Process => gantry_server::server::RuntimeChoice::Process,
            },
            public_url,
            max_parallel_steps,
            work_dir,
            trigger_idle_timeout,
            json_logs,
            oidc_config,
        }),
        Command::Admin(AdminCommand::CreateKey {
            data_dir,
            database_url,
        }) => server::create_key(data_dir, database_url),
        Command::Workflow(WorkflowCommand::Apply {
            file,
            name,
            format,
            connection,
        }) => remote::apply(&connection, &file, name, format == Format::Json),
        Command::Workflow(WorkflowCommand::List { format, connection }) => {
            remote::list(&connection, format == Format::Json)
        }
        Command::Workflow(WorkflowCommand::Get {
            name,
            format,
            connection,
        }) => remote::get(&connection, &name, format == Format::Json),
        Command::Workflow(WorkflowCommand::Versions {
            name,
            format,
            connection,
        }) => remote::versions(&connection, &name, format == Format::Json),
        Command::Workflow(WorkflowCommand::Delete { name, connection }) => {
            remote::delete(&connection, &name)
        }
        Command::Run(RunCommand {
            action: Some(action),
            ..
        }) => remote::run_action(action),
        Command::Secret(c) => remote::secret(c),
        Command::Connection(c) => remote::connection(c),
        Command::Trigger(c) => trigger::trigger(c),
        Command::User(c) => access::user(c),
        Command::Team(c) => access::team(c),
        Command::ServiceAccount(c) => access::service_account(c),
        Command::Apikey(c) => access::api_key(c),
        Command::Audit(a) => access::audit(&a),
        Command::Agent(a) => agent::agent(a),
        Command::Apply { args, connection } => catalog::apply(&connection, args),
        Command::Catalog {
            command,
            connection,
        } => catalog::catalog(&connection, command),
        Command::Import {
            command,
            connection,
        } => catalog::import(&connection, command),
        Command::Scorecard {
            command,
            connection,
        } => scorecard::scorecard(&connection, command),
        Command::Initiative {
            command,
            connection,
        } => scorecard::initiative(&connection, command),
        Command::Automation {
            command,
            connection,
        } => scorecard::automation(&connection, command),
        Command::Action {
            command,
            connection,
        } => action::action(&connection, command),
        Command::Workflow(WorkflowCommand::Owner {
            name,
            team,
            none: _,
            connection,
        }) => access::workflow_owner(&connection, &name, team.as_deref()),
        Command::Login {
            server,
            api_key,
            profile: name,
        } => profile::login(&server, api_key, &name),
        Command::Logout { profile: name } => profile::logout(&name),
        Command::Run(r) => run::run(run::RunArgs {
            file: r.file.unwrap_or_default(),
            params: r.params,
            params_file: r.params_file,
            secrets_file: r.secrets_file,
            connections_file: r.connections_file,
            runtime: r.runtime,
            approve: r.approve,
            deny: r.deny,
            max_parallel: r.max_parallel,
            step_timeout: r.step_timeout,
            json: r.format == Format::Json,
            color,
            keep_work_dir: r.keep_work_dir,
        }),
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
