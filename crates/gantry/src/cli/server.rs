//! `gantry server`: starts the control plane on an embedded data directory.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use gantry_server::server::{RuntimeChoice, Server, ServerConfig};
use gantry_server::triggers::container::TriggerContainerConfig;
use gantry_server::workers::WorkerConfig;

/// What `gantry server` was started with.
pub(crate) struct Options {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub database_url: Option<String>,
    pub runtime: RuntimeChoice,
    pub public_url: Option<String>,
    pub max_parallel_steps: Option<usize>,
    pub work_dir: Option<PathBuf>,
    pub trigger_idle_timeout: std::time::Duration,
    pub json_logs: bool,
    pub oidc_config: Option<PathBuf>,
}

pub(crate) fn run(options: Options) -> anyhow::Result<ExitCode> {
    let Options {
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
    } = options;
    let sso = match oidc_config {
        None => None,
        Some(path) => {
            let mut config = gantry_server::api::login::SsoConfig::load(&path)
                .map_err(|e| anyhow::anyhow!("--oidc-config {e}"))?;
            if let Ok(secret) = std::env::var("GANTRY_OIDC_CLIENT_SECRET") {
                config.client_secret = Some(secret);
            }
            Some(config)
        }
    };
    init_logs(json_logs);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    tokio.block_on(async move {
        let server = Server::bind(ServerConfig {
            data_dir: data_dir.clone(),
            listen,
            database_url,
            runtime,
            public_url,
            timer: None,
            workers: {
                let mut workers = WorkerConfig::default();
                if let Some(n) = max_parallel_steps {
                    workers.max_parallel_steps = n.max(1);
                }
                workers
            },
            work_dir,
            trigger_containers: TriggerContainerConfig {
                idle_timeout: trigger_idle_timeout,
                ..Default::default()
            },
            sso,
        })
        .await?;
        println!(
            "gantry server listening on http://{} (data directory {}, {} runtime)",
            server.local_addr(),
            data_dir.display(),
            server.runtime_name
        );
        if let Some(key) = &server.initial_admin_key {
            // Shown once: only its hash is kept.
            println!("admin API key (shown once, keep it safe): {key}");
        }
        server.serve(shutdown_signal()).await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Log records to stderr, filtered by `GANTRY_LOG` (default `info`), as JSON if asked.
pub(crate) fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json().init();
    } else {
        logs.init();
    }
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// `gantry admin create-key`: a new admin API key, straight into the server's store.
pub(crate) fn create_key(
    data_dir: PathBuf,
    database_url: Option<String>,
) -> anyhow::Result<ExitCode> {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    tokio.block_on(async move {
        let store = gantry_server::server::open_store(&data_dir, database_url.as_deref()).await?;
        let audit = gantry_store::Audit::system("gantry admin create-key", chrono::Utc::now());
        let key = gantry_server::server::issue_api_key(store.as_ref(), "admin", &audit).await?;
        println!("{key}");
        Ok(ExitCode::SUCCESS)
    })
}
