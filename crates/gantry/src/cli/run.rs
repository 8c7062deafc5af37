//! `gantry run FILE`: runs a workflow on this machine with the same engine the server uses.
//!
//! The run's steps execute in Docker containers or as local processes; Relay's metadata API is
//! served on loopback (and on the Docker bridge, for containers) for the run's duration.
//! Progress goes to standard output (to standard error with `--format json`, where standard
//! output carries only the final run record). Ctrl-C cancels the run cleanly.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use chrono::{DateTime, Local, Utc};
use gantry_engine::clock::SystemClock;
use gantry_engine::driver::{DriverConfig, RunDriver, RunHandle};
use gantry_engine::run::{Run, RunConfig, RunOptions, RunRecord};
use gantry_engine::runtime::StepRuntime;
use gantry_engine::secrets::SecretResolver;
use gantry_engine::sink::{RunEvent, RunSink, RunState, StepState};
use serde_json::{json, Map, Value};
use tokio::sync::mpsc;

use super::render::diagnostics_text;

/// Everything `gantry run` was asked for.
pub(crate) struct RunArgs {
    pub(crate) file: PathBuf,
    pub(crate) params: Vec<String>,
    pub(crate) params_file: Option<PathBuf>,
    pub(crate) secrets_file: Option<PathBuf>,
    pub(crate) connections_file: Option<PathBuf>,
    pub(crate) runtime: RuntimeKind,
    pub(crate) approve: bool,
    pub(crate) deny: bool,
    pub(crate) max_parallel: usize,
    pub(crate) step_timeout: Option<Duration>,
    pub(crate) json: bool,
    pub(crate) color: bool,
    pub(crate) keep_work_dir: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RuntimeKind {
    Docker,
    Process,
}

/// Secrets and connections from the files given on the command line.
struct FileSecrets {
    secrets: BTreeMap<String, String>,
    connections: BTreeMap<(String, String), Value>,
}

impl SecretResolver for FileSecrets {
    fn secret(&self, name: &str) -> Option<String> {
        self.secrets.get(name).cloned()
    }

    fn connection(&self, type_: &str, name: &str) -> Option<Value> {
        self.connections
            .get(&(type_.to_owned(), name.to_owned()))
            .cloned()
    }
}

fn read_data(path: &Path) -> anyhow::Result<Value> {
    let src =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    gantry_workflow::parse_data(&src).map_err(|diags| {
        anyhow::anyhow!(
            "{} is not valid YAML or JSON:\n{}",
            path.display(),
            diagnostics_text(&path.display().to_string(), &src, &diags, false)
        )
    })
}

fn parameters(args: &RunArgs) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    if let Some(path) = &args.params_file {
        match read_data(path)? {
            Value::Object(m) => out.extend(m),
            Value::Null => {}
            _ => bail!(
                "{}: parameters must be a mapping of name to value",
                path.display()
            ),
        }
    }
    for p in &args.params {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--param `{p}` must be written name=value");
        };
        out.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Ok(out)
}

fn secrets(args: &RunArgs) -> anyhow::Result<FileSecrets> {
    let mut secrets = BTreeMap::new();
    if let Some(path) = &args.secrets_file {
        match read_data(path)? {
            Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        Value::String(s) => {
                            secrets.insert(k, s);
                        }
                        // Never echo the value: it is a secret.
                        _ => bail!("{}: secret `{k}` must be a string", path.display()),
                    }
                }
            }
            Value::Null => {}
            _ => bail!(
                "{}: secrets must be a mapping of name to string",
                path.display()
            ),
        }
    }
    let mut connections = BTreeMap::new();
    if let Some(path) = &args.connections_file {
        let Value::Object(m) = read_data(path)? else {
            bail!(
                "{}: connections must be a mapping: type → name → fields (or \"type/name\" → fields)",
                path.display()
            );
        };
        for (k, v) in m {
            // Relay's local mock file writes `type/name: {fields}`.
            if let Some((t, n)) = k.split_once('/') {
                connections.insert((t.to_owned(), n.to_owned()), v);
                continue;
            }
            let Value::Object(named) = v else {
                bail!(
                    "{}: connection type `{k}` must map names to fields",
                    path.display()
                );
            };
            for (name, fields) in named {
                connections.insert((k.clone(), name), fields);
            }
        }
    }
    Ok(FileSecrets {
        secrets,
        connections,
    })
}

/// Prints progress as the run goes, and hands approval requests to the main task.
struct Printer {
    color: bool,
    to_stderr: bool,
    width: usize,
    approvals: mpsc::UnboundedSender<String>,
    out: Mutex<()>,
}

impl Printer {
    fn paint(&self, text: &str, state: &str) -> String {
        if !self.color {
            return text.to_owned();
        }
        let code = match state {
            "succeeded" => "32",
            "failed" | "timed_out" => "31",
            "skipped" | "waiting" | "cancelled" => "33",
            "running" => "36",
            _ => "2",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    fn write(&self, line: &str) {
        let _guard = self.out.lock();
        if self.to_stderr {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        } else {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

fn clock_time(at: &DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%H:%M:%S").to_string()
}

impl RunSink for Printer {
    fn event(&self, event: RunEvent) {
        match event {
            RunEvent::StepChanged {
                step,
                state,
                reason,
                at,
            } => {
                if state == StepState::Waiting {
                    let _ = self.approvals.send(step.clone());
                }
                let reason = reason.map(|r| format!("  ({r})")).unwrap_or_default();
                let state_text = self.paint(state.as_str(), state.as_str());
                self.write(&format!(
                    "{}  {:<w$}  {state_text}{reason}",
                    clock_time(&at),
                    step,
                    w = self.width
                ));
            }
            RunEvent::RunChanged { state, reason, at } => {
                if state == RunState::Running {
                    return;
                }
                let reason = reason.map(|r| format!("  ({r})")).unwrap_or_default();
                let text = self.paint(&format!("run {}", state.as_str()), state.as_str());
                self.write(&format!("{}  {text}{reason}", clock_time(&at)));
            }
            RunEvent::Log { step, line, .. } => {
                let prefix = self.paint(&format!("{step:>w$} │", w = self.width), "");
                self.write(&format!("{prefix} {line}"));
            }
        }
    }
}

pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    tokio.block_on(run_async(args))
}

async fn run_async(args: RunArgs) -> anyhow::Result<ExitCode> {
    let file_name = args.file.display().to_string();
    let src =
        std::fs::read_to_string(&args.file).with_context(|| format!("cannot read {file_name}"))?;
    let parsed = gantry_workflow::parse(&src);
    let warnings_and_errors = diagnostics_text(&file_name, &src, &parsed.diagnostics, args.color);
    let Some(plan) = parsed.plan.clone() else {
        eprint!("{warnings_and_errors}");
        eprintln!("{file_name}: invalid, not run");
        return Ok(ExitCode::from(1));
    };
    if !warnings_and_errors.is_empty() {
        eprint!("{warnings_and_errors}");
    }
    let workflow = Arc::new(parsed.workflow);
    let workflow_name = workflow.name.as_ref().map_or_else(
        || {
            args.file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "workflow".into())
        },
        |n| n.value.clone(),
    );
    let run_id = new_run_id();
    let secrets = Arc::new(secrets(&args)?);
    let run = Run::new(RunConfig {
        run_id: run_id.clone(),
        workflow_name: workflow_name.clone(),
        workflow: workflow.clone(),
        plan,
        parameters: parameters(&args)?,
        secrets,
        options: RunOptions {
            max_parallel: args.max_parallel,
            step_timeout: args.step_timeout,
            ..RunOptions::default()
        },
    })
    .map_err(|e| anyhow::anyhow!("{file_name}: {e}"))?;

    let (runtime, bridge): (Arc<dyn StepRuntime>, Option<std::net::IpAddr>) = match args.runtime {
        RuntimeKind::Process => (Arc::new(gantry_runtime::ProcessRuntime::new()), None),
        RuntimeKind::Docker => {
            let docker = gantry_runtime::DockerRuntime::connect()
                .await
                .map_err(|e| {
                    anyhow::anyhow!("{e}\nstart the Docker engine, or use --runtime process")
                })?;
            // Docker's default bridge gateway, should the engine not say.
            let gateway = docker
                .bridge_gateway()
                .await
                .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::new(172, 17, 0, 1)));
            (Arc::new(docker), Some(gateway))
        }
    };
    let work = tempfile::Builder::new()
        .prefix("gantry-run-")
        .tempdir()
        .context("cannot create the run's work folder")?;
    // spec.json files hold secret values: keep the folder private.
    restrict(work.path())?;
    let workflow_dir = args
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let workflow_dir = if workflow_dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        workflow_dir
    };

    let (approvals_tx, approvals_rx) = mpsc::unbounded_channel();
    let width = workflow
        .steps
        .iter()
        .map(|s| s.name.value.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 32);
    let printer = Arc::new(Printer {
        color: args.color,
        to_stderr: args.json,
        width,
        approvals: approvals_tx,
        out: Mutex::new(()),
    });
    let metadata = gantry_server::metadata::listen::Listener::bind(bridge)
        .await
        .context("cannot serve the metadata API")?;
    let (driver, handle) = RunDriver::new(DriverConfig {
        run,
        runtime: runtime.clone(),
        clock: Arc::new(SystemClock),
        sink: printer.clone(),
        work_dir: work.path().to_path_buf(),
        workflow_dir,
        metadata_port: Some(metadata.port()),
    });
    let server = metadata.serve(Arc::new(handle.clone()));
    let count = workflow.steps.len();
    printer.write(&format!(
        "run {run_id} of {workflow_name}: {count} step{}, {} runtime",
        if count == 1 { "" } else { "s" },
        runtime.name()
    ));
    let driving = tokio::spawn(driver.run());
    let answers = tokio::spawn(answer_approvals(
        handle.clone(),
        workflow.clone(),
        (args.approve, args.deny),
        printer.clone(),
        approvals_rx,
    ));
    let cancel_handle = handle.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel_handle.cancel();
        }
    });
    let record = match driving.await {
        Ok(record) => record,
        Err(e) => bail!("the run stopped unexpectedly: {e}"),
    };
    ctrl_c.abort();
    answers.abort();
    server.abort();
    // A cancelled or crashed step must leave nothing behind.
    let _ = runtime.clean_up(Some(&run_id)).await;
    if args.keep_work_dir {
        let kept = work.keep();
        printer.write(&format!("work folder kept at {}", kept.display()));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&record_json(&record))?);
    } else {
        print!("{}", summary(&record, args.color));
    }
    Ok(if record.state == RunState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Answers approval steps as they start waiting: from `--approve`/`--deny`, or by asking on
/// the terminal. Without either and without a terminal, the approval is denied at once rather
/// than left to wait for its expiry.
async fn answer_approvals(
    handle: RunHandle,
    workflow: Arc<gantry_workflow::Workflow>,
    (approve, deny): (bool, bool),
    printer: Arc<Printer>,
    mut waiting: mpsc::UnboundedReceiver<String>,
) {
    let interactive = std::io::stdin().is_terminal();
    while let Some(step) = waiting.recv().await {
        let (approved, by) = if approve {
            (true, "gantry run --approve".to_owned())
        } else if deny {
            (false, "gantry run --deny".to_owned())
        } else if interactive {
            let question = workflow
                .step(&step)
                .and_then(|s| s.description.as_ref())
                .map(|d| d.value.clone())
                .unwrap_or_else(|| format!("Approve step `{step}`?"));
            let asked = question.clone();
            let answer = tokio::task::spawn_blocking(move || {
                let _ = write!(std::io::stderr(), "{asked} [y/N] ");
                let _ = std::io::stderr().flush();
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
            })
            .await
            .unwrap_or(false);
            (answer, whoami())
        } else {
            printer.write(&format!(
                "approval step `{step}` needs an answer: pass --approve or --deny (no terminal to ask on)"
            ));
            (
                false,
                "nobody (no terminal; pass --approve or --deny)".to_owned(),
            )
        };
        if let Err(e) = handle.answer(&step, approved, Some(by)) {
            printer.write(&format!("cannot answer `{step}`: {e}"));
        }
    }
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "the terminal user".into())
}

#[cfg(unix)]
fn restrict(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", path.display()))
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

fn new_run_id() -> String {
    let mut bytes = [0u8; 6];
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
        bytes.copy_from_slice(&nanos.to_le_bytes()[..6]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn time_json(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        json!(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    })
}

fn duration_text(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => {
            let ms = (e - s).num_milliseconds().max(0);
            if ms < 1000 {
                format!("{ms}ms")
            } else {
                format!("{:.1}s", ms as f64 / 1000.0)
            }
        }
        _ => "-".into(),
    }
}

/// The run record as `--format json` prints it. Sensitive outputs are already masked.
fn record_json(r: &RunRecord) -> Value {
    json!({
        "runId": r.run_id,
        "workflow": r.workflow,
        "status": r.state.as_str(),
        "reason": r.reason,
        "startedAt": time_json(r.started_at),
        "endedAt": time_json(r.ended_at),
        "steps": r.steps.iter().map(|s| json!({
            "name": s.name,
            "status": s.state.as_str(),
            "reason": s.reason,
            "startedAt": time_json(s.started_at),
            "endedAt": time_json(s.ended_at),
            "exitCode": s.exit_code,
            "outputs": s.outputs.iter().map(|o| json!({
                "name": o.name,
                "sensitive": o.sensitive,
                "value": o.value,
            })).collect::<Vec<_>>(),
            "decorators": s.decorators.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn summary(r: &RunRecord, color: bool) -> String {
    use std::fmt::Write as _;
    let width = r
        .steps
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let paint = |text: String, state: &str| -> String {
        if !color {
            return text;
        }
        let code = match state {
            "succeeded" => "32",
            "failed" | "timed_out" => "31",
            "skipped" | "cancelled" | "waiting" | "pending" => "33",
            _ => "0",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    };
    let mut s = String::new();
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<width$}  {:<10}  {:>8}  DETAIL",
        "STEP", "STATUS", "TIME"
    );
    for step in &r.steps {
        let status = paint(format!("{:<10}", step.state.as_str()), step.state.as_str());
        let detail = step.reason.clone().unwrap_or_default();
        let line = format!(
            "{:<width$}  {status}  {:>8}  {detail}",
            step.name,
            duration_text(step.started_at, step.ended_at)
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    let reason = r
        .reason
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "\n{} in {}{reason}",
        paint(format!("run {}", r.state.as_str()), r.state.as_str()),
        duration_text(r.started_at, r.ended_at)
    );
    s
}
