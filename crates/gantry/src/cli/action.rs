//! `gantry action`: self-service actions from the command line. List them, ask for a run (and
//! follow it to its end), approve, deny, cancel and rerun runs, list and show runs.
//!
//! The pure parts are plain functions tested here: reading `--input NAME=VALUE`, what a change
//! of a run prints, a run as text, and the exit code of an end. The rest asks the server through
//! [`Client`] and prints what it answers; a refusal is printed with the field it is about.
//!
//! `--follow` is one task that polls: the run every second, then the log lines written since
//! the last poll (the workflow run's, read by position, and the run's own, read by number), so
//! each line is printed once and every line written before the run ended is printed before its
//! outcome. An action run has no event stream of its own, and its workflow run may not exist
//! yet when following starts, so polling is the one way that covers every kind of run.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::client::{block_on, segment, Answer, Client, Connection};
use super::follow::log_line;
use super::remote::items;
use super::render::table;
use super::Format;

/// How often `--follow` asks for the run.
const POLL: Duration = Duration::from_secs(1);
/// How many polls in a row may fail to reach the server before `--follow` gives up.
const UNREACHABLE_POLLS: u32 = 10;

/// The statuses of an action run, in the order a run moves through them.
const STATUSES: [&str; 6] = [
    "waiting_for_approval",
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
];

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ActionCommand {
    /// List the actions on the server.
    List {
        /// Only the actions of this blueprint.
        #[arg(long, value_name = "BLUEPRINT")]
        blueprint: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Ask for a run of an action; prints its id and status.
    ///
    /// A run that needs approval waits for it (`gantry action approve RUN_ID`). With `--follow`,
    /// prints each change of the run, the log lines of its workflow run and its own, then its
    /// links, summary and entities, until it ends.
    ///
    /// Exit codes with `--follow`: 0 the run succeeded; 1 it failed, or the server refused the
    /// request; 2 the command could not do its job (bad arguments, the server unreachable);
    /// 3 the run was cancelled or denied. Without `--follow`, 0 once the server made the run.
    Run {
        /// The action's identifier.
        identifier: String,
        /// The entity a day-2 or delete action acts on.
        #[arg(long, value_name = "BLUEPRINT/ID")]
        entity: Option<String>,
        /// An input, `NAME=VALUE` (repeatable). VALUE is read as JSON when it is JSON (`3`,
        /// `true`, `["a","b"]`, `{"k":1}`, `"1.10"`), else as a string; `NAME=@FILE` reads
        /// the value from a file the same way.
        #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// Print the run's changes and log lines until it ends; exit 0 only if it succeeded.
        #[arg(long)]
        follow: bool,
        /// `json`: the run as JSON on standard output (at its end with `--follow`, whose
        /// progress then goes to standard error).
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// List action runs, newest first.
    Runs {
        /// Only runs of this action.
        #[arg(long, value_name = "ACTION")]
        action: Option<String>,
        /// Only runs on this entity.
        #[arg(long, value_name = "BLUEPRINT/ID")]
        entity: Option<String>,
        /// Only runs asked for by this user (an email) or service account (its name).
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
        /// Only runs in this status.
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show an action run: status, inputs, approvals, links, summary, entities, error.
    Get {
        /// The run's id.
        id: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Approve a run waiting for approval (the action's `approve` rule says who may; nobody
    /// approves their own run).
    Approve {
        /// The run's id.
        id: String,
        /// Why, kept with the approval and in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Deny a run waiting for approval; it is cancelled.
    Deny {
        /// The run's id.
        id: String,
        /// Why (required), kept with the run and in the audit log.
        #[arg(long, value_name = "TEXT")]
        reason: String,
    },
    /// Cancel a run that has not ended (its requester, or an operator or higher).
    Cancel {
        /// The run's id.
        id: String,
    },
    /// Ask for a new run with the same entity and inputs as run ID, as yourself.
    ///
    /// Exit codes as for `gantry action run`.
    Rerun {
        /// The run's id.
        id: String,
        /// Print the new run's changes and log lines until it ends; exit 0 only if it
        /// succeeded.
        #[arg(long)]
        follow: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

pub(crate) fn action(c: &Connection, command: ActionCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(c)?;
    match command {
        ActionCommand::List { blueprint, format } => {
            let path = match blueprint {
                Some(b) => format!("/actions?blueprint={}", segment(&b)),
                None => "/actions".to_owned(),
            };
            block_on(async move {
                let answer = client.send(Method::GET, &path, None).await?;
                Ok(shown(&answer, format, actions_text))
            })
        }
        ActionCommand::Run {
            identifier,
            entity,
            inputs,
            follow,
            format,
        } => {
            let mut body = json!({ "inputs": parse_inputs(&inputs)? });
            if let Some(e) = entity {
                body["entity"] = json!(e);
            }
            block_on(async move {
                let answer = client
                    .send_json(
                        Method::POST,
                        &format!("/actions/{}/runs", segment(&identifier)),
                        &body,
                    )
                    .await?;
                started(&client, &answer, follow, format).await
            })
        }
        ActionCommand::Rerun { id, follow, format } => block_on(async move {
            let answer = client
                .send(
                    Method::POST,
                    &format!("/action-runs/{}/rerun", segment(&id)),
                    None,
                )
                .await?;
            started(&client, &answer, follow, format).await
        }),
        ActionCommand::Runs {
            action,
            entity,
            user,
            status,
            limit,
            format,
        } => {
            let mut query = Vec::new();
            for (name, value) in [
                ("action", action),
                ("entity", entity),
                ("user", user),
                ("status", status),
            ] {
                if let Some(v) = value {
                    query.push(format!("{name}={}", segment(&v)));
                }
            }
            block_on(async move { runs(&client, query, limit.max(1), format).await })
        }
        ActionCommand::Get { id, format } => block_on(async move {
            let answer = client
                .send(Method::GET, &format!("/action-runs/{}", segment(&id)), None)
                .await?;
            Ok(shown(&answer, format, run_text))
        }),
        ActionCommand::Approve { id, reason } => block_on(async move {
            let answer = client
                .send_json(
                    Method::POST,
                    &format!("/action-runs/{}/approve", segment(&id)),
                    &json!({ "reason": reason }),
                )
                .await?;
            Ok(shown(&answer, Format::Human, |run| {
                decided_text(run, "approved")
            }))
        }),
        ActionCommand::Deny { id, reason } => block_on(async move {
            let answer = client
                .send_json(
                    Method::POST,
                    &format!("/action-runs/{}/deny", segment(&id)),
                    &json!({ "reason": reason }),
                )
                .await?;
            Ok(shown(&answer, Format::Human, |run| {
                decided_text(run, "denied")
            }))
        }),
        ActionCommand::Cancel { id } => block_on(async move {
            let answer = client
                .send(
                    Method::POST,
                    &format!("/action-runs/{}/cancel", segment(&id)),
                    None,
                )
                .await?;
            Ok(shown(&answer, Format::Human, cancelled_text))
        }),
    }
}

/// The server's answer on standard output (as JSON, or as `human` makes it), or its refusal
/// on standard error with exit code 1.
pub(crate) fn shown(
    answer: &Answer,
    format: Format,
    human: impl FnOnce(&Value) -> String,
) -> ExitCode {
    if !answer.ok() {
        eprint!("{}", refusal(answer));
        return ExitCode::from(1);
    }
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&answer.body).unwrap_or_default()
        ),
        Format::Human => print!("{}", human(&answer.body)),
    }
    ExitCode::SUCCESS
}

/// A refusal as the CLI prints API errors (`error: message [code]`), then the field it is
/// about, or each problem with its path (an action's form reports every bad input).
pub(crate) fn refusal(answer: &Answer) -> String {
    let mut out = answer.error_text(None);
    let problems = items(&answer.body["details"], "problems");
    if problems.is_empty() {
        if let Some(path) = answer.body["path"].as_str().filter(|p| !p.is_empty()) {
            out.push_str(&format!("  at {path}\n"));
        }
    }
    for p in problems {
        let message = p["message"].as_str().unwrap_or_default();
        match p["path"].as_str().filter(|p| !p.is_empty()) {
            Some(path) => out.push_str(&format!("  {path}: {message}\n")),
            None => out.push_str(&format!("  {message}\n")),
        }
    }
    out
}

/// `--input NAME=VALUE` (and `NAME=@FILE`) as the `inputs` object of a run.
fn parse_inputs(given: &[String]) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for g in given {
        let Some((name, value)) = g.split_once('=') else {
            anyhow::bail!("--input `{g}` must be written NAME=VALUE (or NAME=@FILE)");
        };
        if name.is_empty() {
            anyhow::bail!("--input `{g}` has no name before `=`");
        }
        let value = match value.strip_prefix('@') {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {file} (from --input {name}=@{file})"))?;
                input_value(text.strip_suffix('\n').unwrap_or(&text))
            }
            None => input_value(value),
        };
        if out.insert(name.to_owned(), value).is_some() {
            anyhow::bail!("--input {name} is given twice");
        }
    }
    Ok(out)
}

/// A value as JSON when it is JSON, else the text as a string: `3` is a number, `no` a string,
/// `"3"` the string `3`.
fn input_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn str_of<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key].as_str().unwrap_or_default()
}

/// `BLUEPRINT/ID` of a run's entity, or empty.
fn entity_of(run: &Value) -> String {
    let e = &run["entity"];
    if e.is_null() {
        return String::new();
    }
    format!("{}/{}", str_of(e, "blueprint"), str_of(e, "identifier"))
}

/// A run's status, with what it waits for while it waits.
fn status_text(run: &Value) -> String {
    let status = str_of(run, "status");
    let waiting: Vec<&str> = items(run, "waitingFor")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if status == "waiting_for_approval" && !waiting.is_empty() {
        format!("{status} ({})", waiting.join("; "))
    } else {
        status.to_owned()
    }
}

fn actions_text(body: &Value) -> String {
    let rows: Vec<Vec<String>> = items(body, "items")
        .iter()
        .map(|a| {
            let invocation = &a["invocation"];
            let starts = match (invocation["workflow"].as_str(), &invocation["webhook"]) {
                (Some(w), _) => format!("workflow {w}"),
                (None, Value::Object(h)) => format!(
                    "webhook {}",
                    h.get("url").and_then(Value::as_str).unwrap_or_default()
                ),
                _ => String::new(),
            };
            vec![
                str_of(a, "identifier").to_owned(),
                str_of(a, "title").to_owned(),
                str_of(a, "blueprint").to_owned(),
                str_of(a, "operation").to_owned(),
                if a["approval"]["required"] == true {
                    "required"
                } else {
                    "no"
                }
                .to_owned(),
                starts,
            ]
        })
        .collect();
    table(
        &[
            "IDENTIFIER",
            "TITLE",
            "BLUEPRINT",
            "OPERATION",
            "APPROVAL",
            "STARTS",
        ],
        &rows,
    )
}

fn runs_text(runs: &[Value]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                str_of(r, "id").to_owned(),
                str_of(r, "action").to_owned(),
                entity_of(r),
                str_of(r, "status").to_owned(),
                str_of(&r["requestedBy"], "name").to_owned(),
                str_of(r, "createdAt").to_owned(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "ACTION",
            "ENTITY",
            "STATUS",
            "REQUESTED BY",
            "CREATED",
        ],
        &rows,
    )
}

/// What a run reported: its links, summary, entities and error, one per line.
fn outcome_text(run: &Value) -> String {
    let mut out = String::new();
    for l in items(run, "links") {
        out.push_str(&format!(
            "link: {}  {}\n",
            str_of(l, "title"),
            str_of(l, "url")
        ));
    }
    if let Some(s) = run["summary"].as_str() {
        out.push_str(&format!("summary: {s}\n"));
    }
    for e in items(run, "entities") {
        out.push_str(&format!(
            "entity {}/{}: {}\n",
            str_of(e, "blueprint"),
            str_of(e, "identifier"),
            str_of(e, "change")
        ));
    }
    if let Some(e) = run["error"].as_str() {
        out.push_str(&format!("error: {e}\n"));
    }
    out
}

/// A run as `gantry action get` shows it.
fn run_text(run: &Value) -> String {
    let mut out = format!(
        "action run {} of {}: {}\n",
        str_of(run, "id"),
        str_of(run, "action"),
        status_text(run)
    );
    let mut field = |name: &str, value: String| {
        if !value.is_empty() {
            out.push_str(&format!("  {name:<13} {value}\n"));
        }
    };
    field("entity:", entity_of(run));
    field(
        "requested by:",
        format!(
            "{} at {}",
            str_of(&run["requestedBy"], "name"),
            str_of(run, "createdAt")
        ),
    );
    let inputs: Vec<String> = run["inputs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    field("inputs:", inputs.join(" "));
    for d in items(run, "decisions") {
        let reason = d["reason"]
            .as_str()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        field(
            "decision:",
            format!(
                "{} by {} at {}{reason}",
                str_of(d, "decision"),
                str_of(d, "by"),
                str_of(d, "at")
            ),
        );
    }
    field("workflow run:", str_of(run, "workflowRun").to_owned());
    field("rerun of:", str_of(run, "rerunOf").to_owned());
    field("started:", str_of(run, "startedAt").to_owned());
    field("finished:", str_of(run, "finishedAt").to_owned());
    for line in outcome_text(run).lines() {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

fn decided_text(run: &Value, verb: &str) -> String {
    format!(
        "action run {} {verb}; it is {}\n",
        str_of(run, "id"),
        status_text(run)
    )
}

fn cancelled_text(run: &Value) -> String {
    let id = str_of(run, "id");
    match str_of(run, "status") {
        "cancelled" => format!("action run {id} cancelled\n"),
        // A running workflow run is stopped first; its end ends the action run.
        _ => format!(
            "action run {id} is being cancelled (workflow run {} is stopping)\n",
            str_of(run, "workflowRun")
        ),
    }
}

/// The exit code of a run's end: 0 succeeded, 1 failed, 3 cancelled (or denied).
fn exit_for(status: &str) -> ExitCode {
    match status {
        "succeeded" => ExitCode::SUCCESS,
        "cancelled" => ExitCode::from(3),
        _ => ExitCode::from(1),
    }
}

fn is_final(status: &str) -> bool {
    matches!(status, "succeeded" | "failed" | "cancelled")
}

/// What `action run` and `action rerun` print once the server made the run, then the run
/// followed to its end with `--follow`.
async fn started(
    client: &Client,
    answer: &Answer,
    following: bool,
    format: Format,
) -> anyhow::Result<ExitCode> {
    if !answer.ok() {
        eprint!("{}", refusal(answer));
        return Ok(ExitCode::from(1));
    }
    let run = &answer.body;
    if !following {
        return Ok(shown(answer, format, |run| {
            let rerun = run["rerunOf"]
                .as_str()
                .map(|r| format!(" (a rerun of {r})"))
                .unwrap_or_default();
            format!(
                "action run {} of {}{rerun}: {}\n",
                str_of(run, "id"),
                str_of(run, "action"),
                status_text(run)
            )
        }));
    }
    // With JSON on standard output, the progress goes to standard error.
    let mut progress: Box<dyn Write> = match format {
        Format::Json => Box::new(std::io::stderr()),
        Format::Human => Box::new(std::io::stdout()),
    };
    writeln!(
        progress,
        "action run {} of {}",
        str_of(run, "id"),
        str_of(run, "action")
    )?;
    let end = follow(client, str_of(run, "id"), &mut *progress).await?;
    let status = str_of(&end, "status").to_owned();
    write!(progress, "{}", outcome_text(&end))?;
    writeln!(progress, "action run {} {status}", str_of(&end, "id"))?;
    progress.flush()?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&end)?);
    }
    Ok(exit_for(&status))
}

/// What a follower has printed of a run: its last status and workflow run, and how far it
/// read each log.
#[derive(Debug, Default)]
struct Watch {
    status: Option<String>,
    workflow_run: Option<String>,
    /// The position of the last workflow-run line printed.
    workflow_after: Option<i64>,
    /// The number of the last line of the run's own log printed.
    own_after: Option<i64>,
}

impl Watch {
    /// The lines for what changed in `run` since the last call: its status (with what it
    /// waits for) and its workflow run once it has one.
    fn changes(&mut self, run: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let status = status_text(run);
        if self.status.as_deref() != Some(&status) {
            out.push(format!("status: {status}"));
            self.status = Some(status);
        }
        if let (None, Some(w)) = (&self.workflow_run, run["workflowRun"].as_str()) {
            out.push(format!("workflow run {w} started"));
            self.workflow_run = Some(w.to_owned());
        }
        out
    }
}

/// Prints the changes and log lines of run `id` until it ends; returns the run as it ended.
async fn follow(client: &Client, id: &str, out: &mut dyn Write) -> anyhow::Result<Value> {
    let mut watch = Watch::default();
    let mut unreachable = 0u32;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let answer = match client
            .send(Method::GET, &format!("/action-runs/{}", segment(id)), None)
            .await
        {
            Ok(a) => a,
            Err(e) if unreachable < UNREACHABLE_POLLS => {
                unreachable += 1;
                writeln!(out, "({e:#}; trying again)")?;
                continue;
            }
            Err(e) => return Err(e.context(format!("lost action run {id}"))),
        };
        unreachable = 0;
        if !answer.ok() {
            anyhow::bail!("{}", answer.summary());
        }
        let run = answer.body;
        for line in watch.changes(&run) {
            writeln!(out, "{line}")?;
        }
        // Read after the run, so a run read as ended has written all its lines.
        if let Some(w) = watch.workflow_run.clone() {
            workflow_lines(client, &w, &mut watch, out).await?;
        }
        own_lines(client, id, &mut watch, out).await?;
        out.flush()?;
        if is_final(str_of(&run, "status")) {
            return Ok(run);
        }
    }
}

/// Prints the lines of workflow run `w` after the last one printed, page by page.
async fn workflow_lines(
    client: &Client,
    w: &str,
    watch: &mut Watch,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    loop {
        let path = match watch.workflow_after {
            Some(p) => format!("/runs/{}/logs?after={p}", segment(w)),
            None => format!("/runs/{}/logs", segment(w)),
        };
        let answer = client.send(Method::GET, &path, None).await?;
        if !answer.ok() {
            anyhow::bail!("{}", answer.summary());
        }
        let lines = items(&answer.body, "items");
        if lines.is_empty() {
            return Ok(());
        }
        for l in lines {
            write!(out, "{}", log_line(l))?;
            watch.workflow_after = l["position"].as_i64().or(watch.workflow_after);
        }
    }
}

/// Prints the run's own log lines (a webhook receiver's reports) after the last one printed.
async fn own_lines(
    client: &Client,
    id: &str,
    watch: &mut Watch,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    loop {
        let path = match watch.own_after {
            Some(n) => format!("/action-runs/{}/logs?after={n}", segment(id)),
            None => format!("/action-runs/{}/logs", segment(id)),
        };
        let answer = client.send(Method::GET, &path, None).await?;
        if !answer.ok() {
            anyhow::bail!("{}", answer.summary());
        }
        let lines = items(&answer.body, "lines");
        if lines.is_empty() {
            return Ok(());
        }
        for l in lines {
            writeln!(out, "report │ {}", str_of(l, "line"))?;
            watch.own_after = l["seq"].as_i64().or(watch.own_after);
        }
    }
}

/// `action runs`: pages until `limit` runs or the last page.
async fn runs(
    client: &Client,
    query: Vec<String>,
    limit: u32,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let mut all: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = query.clone();
        q.push(format!("limit={}", (limit as usize - all.len()).min(500)));
        if let Some(a) = &after {
            q.push(format!("after={}", segment(a)));
        }
        let answer = client
            .send(Method::GET, &format!("/action-runs?{}", q.join("&")), None)
            .await?;
        if !answer.ok() {
            eprint!("{}", refusal(&answer));
            return Ok(ExitCode::from(1));
        }
        all.extend(items(&answer.body, "items").iter().cloned());
        after = answer.body["next"].as_str().map(str::to_owned);
        if after.is_none() || all.len() >= limit as usize {
            break;
        }
    }
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"items": all, "next": after}))?
        ),
        Format::Human => print!("{}", runs_text(&all)),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_json_when_they_read_as_json_else_strings() {
        let given: Vec<String> = [
            "reason=no",
            "replicas=3",
            "dry=true",
            "tags=[\"a\",\"b\"]",
            "limits={\"cpu\":1}",
            "version=\"1.10\"",
            "empty=",
            "eq=a=b",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let inputs = parse_inputs(&given).unwrap();
        assert_eq!(
            Value::Object(inputs),
            json!({
                "reason": "no",
                "replicas": 3,
                "dry": true,
                "tags": ["a", "b"],
                "limits": {"cpu": 1},
                "version": "1.10",
                "empty": "",
                "eq": "a=b",
            })
        );
    }

    #[test]
    fn inputs_from_files_and_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, "two\nlines\n").unwrap();
        let given = vec![format!("notes=@{}", file.display())];
        assert_eq!(parse_inputs(&given).unwrap()["notes"], json!("two\nlines"));
        let err = |g: &[&str]| {
            let g: Vec<String> = g.iter().map(|s| (*s).to_owned()).collect();
            parse_inputs(&g).unwrap_err().to_string()
        };
        assert_eq!(
            err(&["reason"]),
            "--input `reason` must be written NAME=VALUE (or NAME=@FILE)"
        );
        assert_eq!(err(&["=x"]), "--input `=x` has no name before `=`");
        assert_eq!(err(&["a=1", "a=2"]), "--input a is given twice");
        assert!(err(&["a=@/no/such/file"]).starts_with("cannot read /no/such/file"));
    }

    #[test]
    fn a_refusal_names_its_fields() {
        let answer = Answer {
            status: 422,
            body: json!({
                "code": "invalid_action",
                "message": "the run's input has 2 problems; the first: inputs.reason: too short",
                "path": "inputs.reason",
                "details": {"problems": [
                    {"path": "inputs.reason", "message": "too short"},
                    {"path": "inputs.count", "message": "`count` is required"},
                ]},
            }),
        };
        insta::assert_snapshot!(refusal(&answer), @r"
        error: the run's input has 2 problems; the first: inputs.reason: too short [invalid_action]
          inputs.reason: too short
          inputs.count: `count` is required
        ");
        let answer = Answer {
            status: 422,
            body: json!({"code": "invalid_request", "message": "name the entity", "path": "entity"}),
        };
        insta::assert_snapshot!(refusal(&answer), @r"
        error: name the entity [invalid_request]
          at entity
        ");
    }

    fn ended_run() -> Value {
        json!({
            "id": "r1",
            "action": "restart",
            "status": "succeeded",
            "entity": {"blueprint": "service", "identifier": "checkout"},
            "requestedBy": {"id": "user:1", "name": "ann@example.com"},
            "inputs": {"reason": "stuck", "token": "***"},
            "decisions": [{"by": "bob@example.com", "decision": "approved", "reason": "ok", "at": "T2"}],
            "waitingFor": [],
            "workflowRun": "w1",
            "links": [{"title": "Pull request", "url": "https://example.com/pr/1"}],
            "summary": "restarted",
            "entities": [{"blueprint": "service", "identifier": "checkout-2", "change": "created"}],
            "error": null,
            "rerunOf": null,
            "createdAt": "T1",
            "startedAt": "T3",
            "finishedAt": "T4",
        })
    }

    #[test]
    fn a_run_as_text() {
        insta::assert_snapshot!(run_text(&ended_run()), @r#"
        action run r1 of restart: succeeded
          entity:       service/checkout
          requested by: ann@example.com at T1
          inputs:       reason="stuck" token="***"
          decision:     approved by bob@example.com at T2: ok
          workflow run: w1
          started:      T3
          finished:     T4
          link: Pull request  https://example.com/pr/1
          summary: restarted
          entity service/checkout-2: created
        "#);
        insta::assert_snapshot!(runs_text(&[ended_run()]), @r"
        ID  ACTION   ENTITY            STATUS     REQUESTED BY     CREATED
        r1  restart  service/checkout  succeeded  ann@example.com  T1
        ");
    }

    #[test]
    fn a_follower_prints_each_change_once() {
        let mut w = Watch::default();
        let mut run = json!({"status": "waiting_for_approval", "waitingFor": ["an approval from bob@example.com"]});
        assert_eq!(
            w.changes(&run),
            ["status: waiting_for_approval (an approval from bob@example.com)"]
        );
        assert!(w.changes(&run).is_empty());
        run = json!({"status": "running", "workflowRun": null});
        assert_eq!(w.changes(&run), ["status: running"]);
        run["workflowRun"] = json!("w1");
        assert_eq!(w.changes(&run), ["workflow run w1 started"]);
        run["status"] = json!("succeeded");
        assert_eq!(w.changes(&run), ["status: succeeded"]);
    }

    #[test]
    fn exit_codes_of_ends() {
        assert_eq!(exit_for("succeeded"), ExitCode::SUCCESS);
        assert_eq!(exit_for("failed"), ExitCode::from(1));
        assert_eq!(exit_for("cancelled"), ExitCode::from(3));
    }
}
