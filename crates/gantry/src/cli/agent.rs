//! `gantry agent`: run steps for a server from inside this network, and `gantry agent token
//! create` to make the token it needs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use gantry_agent::protocol::AgentRef;
use gantry_engine::runtime::StepRuntime;
use tokio_util::sync::CancellationToken;

use super::access::AgentCommand;
use super::run::RuntimeKind;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct AgentArgs {
    #[command(subcommand)]
    pub(crate) command: Option<AgentCommand>,
    #[command(flatten)]
    pub(crate) run: RunAgent,
}

/// Poll a server for jobs of a pool and run them here.
#[derive(Debug, clap::Args)]
pub(crate) struct RunAgent {
    /// The server's URL, such as https://gantry.example.com.
    #[arg(long, env = "GANTRY_SERVER", value_name = "URL")]
    server: Option<String>,
    /// An agent token (`gantry agent token create --pool NAME`).
    #[arg(
        long,
        env = "GANTRY_AGENT_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// The pool to serve; it must be the token's (the token decides when omitted).
    #[arg(long, value_name = "NAME")]
    pool: Option<String>,
    /// What runs the steps.
    #[arg(long, value_enum, default_value_t = RuntimeKind::Docker)]
    runtime: RuntimeKind,
    /// Steps run at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    max_jobs: usize,
    /// How long the server holds a claim open when there is no work, in seconds (at most 60).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    wait: u64,
    /// This agent's id (default: the host name and the process id).
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// Where steps get their folders (default: a private temporary folder).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

pub(crate) fn agent(args: AgentArgs) -> anyhow::Result<ExitCode> {
    if let Some(command) = args.command {
        return super::access::agent(command);
    }
    let a = args.run;
    let server = a
        .server
        .context("name the server with --server URL (or GANTRY_SERVER)")?;
    let token = a
        .token
        .context("give an agent token with --token (or GANTRY_AGENT_TOKEN); make one with `gantry agent token create --pool NAME`")?;
    let hostname = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    super::server::init_logs(false);
    let id = a.id.unwrap_or_else(|| {
        let host = if hostname.is_empty() {
            "agent"
        } else {
            &hostname
        };
        format!("{host}-{}", std::process::id())
    });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async move {
            // Containers reach the steps' metadata API on the Docker bridge's gateway.
            let (runtime, bridge): (Arc<dyn StepRuntime>, _) = match a.runtime {
                RuntimeKind::Process => (Arc::new(gantry_runtime::ProcessRuntime::new()), None),
                RuntimeKind::Docker => {
                    let docker = gantry_runtime::DockerRuntime::connect()
                        .await
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "{e}\nstart the Docker engine, or use --runtime process"
                            )
                        })?;
                    let bridge = docker.bridge_gateway().await;
                    (Arc::new(docker), bridge)
                }
            };
            let temp;
            let work_dir = match a.work_dir {
                Some(d) => d,
                None => {
                    temp = tempfile::Builder::new()
                        .prefix("gantry-agent-")
                        .tempdir()
                        .context("cannot create the agent's work folder")?;
                    temp.path().to_path_buf()
                }
            };
            let shutdown = CancellationToken::new();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                super::server::shutdown_signal().await;
                eprintln!("stopping: no new jobs; waiting for the running steps to end");
                stop.cancel();
            });
            eprintln!("agent {id} polling {server} ({:?} runtime)", a.runtime);
            gantry_agent::run(
                gantry_agent::Agent {
                    server,
                    token,
                    me: AgentRef {
                        id,
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        hostname,
                        pool: a.pool,
                    },
                    runtime,
                    work_dir,
                    max_jobs: a.max_jobs,
                    wait: Duration::from_secs(a.wait.min(60)),
                    metadata_bridge: bridge,
                },
                shutdown,
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        })
}
