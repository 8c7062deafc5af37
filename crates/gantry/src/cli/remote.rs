//! Commands that talk to `gantry server`: workflows (apply, list, get, versions, delete), runs
//! (start, rerun, list, get, logs, approve, deny, cancel), secrets and connections.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use reqwest::Method;
use serde_json::Value;

use super::client::{block_on, segment, Client, Connection};
use super::follow::{follow, log_line, step_line, StepWatch};

pub(crate) fn finish(
    answer: &super::client::Answer,
    json: bool,
    human: impl FnOnce(&Value) -> String,
) -> ExitCode {
    if !answer.ok() {
        eprint!("{}", answer.error_text(None));
        return ExitCode::from(1);
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&answer.body).unwrap_or_default()
        );
    } else {
        print!("{}", human(&answer.body));
    }
    ExitCode::SUCCESS
}

/// `gantry workflow apply FILE [--name NAME]`: the name defaults to the file name without its
/// extension, as Relay's `workflow save NAME -f FILE` named it.
pub(crate) fn apply(
    c: &Connection,
    file: &Path,
    name: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let src =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = match name {
        Some(n) => n,
        None => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .context("give the workflow a name with --name")?,
    };
    let client = Client::new(c)?;
    block_on(async move {
        let answer = client
            .send(
                Method::PUT,
                &format!("/workflows/{name}"),
                Some(src.clone()),
            )
            .await?;
        if !answer.ok() {
            eprint!("{}", answer.error_text(Some((file, &src))));
            return Ok(ExitCode::from(1));
        }
        Ok(finish(&answer, json, |b| {
            format!(
                "workflow {} is at version {}\n",
                b["name"].as_str().unwrap_or_default(),
                b["version"]
            )
        }))
    })
}

pub(crate) fn list(c: &Connection, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::new(c)?;
    block_on(async move {
        let mut all: Vec<Value> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(a) => format!("/workflows?after={a}"),
                None => "/workflows".to_owned(),
            };
            let answer = client.send(Method::GET, &path, None).await?;
            if !answer.ok() {
                eprint!("{}", answer.error_text(None));
                return Ok(ExitCode::from(1));
            }
            all.extend(items(&answer.body, "items").iter().cloned());
            match answer.body["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => break,
            }
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&all)?);
            return Ok(ExitCode::SUCCESS);
        }
        let width = all
            .iter()
            .filter_map(|i| i["name"].as_str())
            .map(str::len)
            .max()
            .unwrap_or(4)
            .max(4);
        println!("{:<width$}  VERSION  UPDATED", "NAME");
        for i in &all {
            println!(
                "{:<width$}  {:>7}  {}",
                i["name"].as_str().unwrap_or_default(),
                i["version"],
                i["updatedAt"].as_str().unwrap_or_default()
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(crate) fn get(c: &Connection, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::new(c)?;
    block_on(async move {
        let answer = client
            .send(Method::GET, &format!("/workflows/{name}"), None)
            .await?;
        Ok(finish(&answer, json, |b| {
            b["yaml"].as_str().unwrap_or_default().to_owned()
        }))
    })
}

pub(crate) fn versions(c: &Connection, name: &str, json: bool) -> anyhow::Result<ExitCode> {
    let client = Client::new(c)?;
    block_on(async move {
        let answer = client
            .send(Method::GET, &format!("/workflows/{name}/versions"), None)
            .await?;
        Ok(finish(&answer, json, |b| {
            let mut out = String::from("VERSION  CREATED\n");
            for v in items(b, "items") {
                out.push_str(&format!(
                    "{:>7}  {}\n",
                    v["version"],
                    v["createdAt"].as_str().unwrap_or_default()
                ));
            }
            out
        }))
    })
}

pub(crate) fn delete(c: &Connection, name: &str) -> anyhow::Result<ExitCode> {
    let client = Client::new(c)?;
    block_on(async move {
        let answer = client
            .send(Method::DELETE, &format!("/workflows/{name}"), None)
            .await?;
        Ok(finish(&answer, false, |_| {
            format!("workflow {name} deleted\n")
        }))
    })
}

fn parse_params(params: &[String]) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            anyhow::bail!("--param `{p}` must be written name=value");
        };
        out.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Ok(out)
}

/// The elements of the list `v[key]` (none when it is not a list).
pub(crate) fn items<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// What `run start` and `run rerun` print once the server made the run, then the run followed to
/// its end with `--follow` (exit 0 only when it succeeded).
async fn started(
    client: &Client,
    answer: &super::client::Answer,
    following: bool,
    rerun_of: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if !answer.ok() {
        eprint!("{}", answer.error_text(None));
        return Ok(ExitCode::from(1));
    }
    let id = answer.body["id"].as_str().unwrap_or_default().to_owned();
    let workflow = answer.body["workflow"].as_str().unwrap_or_default();
    match rerun_of {
        Some(old) => println!("run {id} of {workflow} started (a rerun of {old})"),
        None => println!("run {id} of {workflow} started"),
    }
    if !following {
        return Ok(ExitCode::SUCCESS);
    }
    let mut steps = StepWatch::default();
    let status = follow(client, &id, &mut std::io::stdout(), Some(&mut steps)).await?;
    println!("run {status}");
    Ok(exit_for(&status))
}

fn exit_for(status: &str) -> ExitCode {
    if status == "succeeded" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub(crate) fn run_action(action: super::RunAction) -> anyhow::Result<ExitCode> {
    use super::RunAction as A;
    match action {
        A::Start {
            workflow,
            params,
            follow: following,
            connection,
        } => {
            let client = Client::new(&connection)?;
            let body = serde_json::json!({"parameters": parse_params(&params)?}).to_string();
            block_on(async move {
                let answer = client
                    .send(
                        Method::POST,
                        &format!("/workflows/{}/runs", segment(&workflow)),
                        Some(body),
                    )
                    .await?;
                started(&client, &answer, following, None).await
            })
        }
        A::Rerun {
            id,
            follow: following,
            connection,
        } => {
            let client = Client::new(&connection)?;
            block_on(async move {
                let answer = client
                    .send(Method::POST, &format!("/runs/{}/rerun", segment(&id)), None)
                    .await?;
                started(&client, &answer, following, Some(&id)).await
            })
        }
        A::List {
            workflow,
            status,
            format,
            connection,
        } => {
            let client = Client::new(&connection)?;
            let mut query = vec![];
            if let Some(w) = workflow {
                query.push(format!("workflow={w}"));
            }
            if let Some(s) = status {
                query.push(format!("status={s}"));
            }
            let path = format!("/runs?{}", query.join("&"));
            block_on(async move {
                let answer = client.send(Method::GET, &path, None).await?;
                Ok(finish(&answer, format == super::Format::Json, |b| {
                    let mut out =
                        String::from("ID                                WORKFLOW  STATUS\n");
                    for r in items(b, "items") {
                        out.push_str(&format!(
                            "{}  {}  {}\n",
                            r["id"].as_str().unwrap_or_default(),
                            r["workflow"].as_str().unwrap_or_default(),
                            r["status"].as_str().unwrap_or_default()
                        ));
                    }
                    out
                }))
            })
        }
        A::Get {
            id,
            format,
            connection,
        } => {
            let client = Client::new(&connection)?;
            block_on(async move {
                let answer = client
                    .send(Method::GET, &format!("/runs/{id}"), None)
                    .await?;
                Ok(finish(&answer, format == super::Format::Json, |b| {
                    let mut out = format!(
                        "run {} of {}: {}\n",
                        b["id"].as_str().unwrap_or_default(),
                        b["workflow"].as_str().unwrap_or_default(),
                        b["status"].as_str().unwrap_or_default()
                    );
                    for s in items(b, "steps") {
                        out.push_str(&format!("  {}\n", step_line(s)));
                    }
                    out
                }))
            })
        }
        A::Logs {
            id,
            follow: following,
            connection,
        } => {
            let client = Client::new(&connection)?;
            block_on(async move {
                if following {
                    let status = follow(&client, &id, &mut std::io::stdout(), None).await?;
                    // Standard output holds only log lines, so a pipe gets nothing else.
                    if status != "succeeded" {
                        eprintln!("run {id} {status}");
                    }
                    return Ok(exit_for(&status));
                }
                // Page by page: the server sends at most 1000 lines an answer.
                let mut after: Option<i64> = None;
                loop {
                    let path = match after {
                        Some(p) => format!("/runs/{}/logs?after={p}", segment(&id)),
                        None => format!("/runs/{}/logs", segment(&id)),
                    };
                    let answer = client.send(Method::GET, &path, None).await?;
                    let lines = items(&answer.body, "items");
                    if !answer.ok() || lines.is_empty() {
                        return Ok(finish(&answer, false, |_| String::new()));
                    }
                    print!("{}", lines.iter().map(log_line).collect::<String>());
                    after = answer.body["next"].as_i64();
                    if after.is_none() {
                        return Ok(ExitCode::SUCCESS);
                    }
                }
            })
        }
        A::Approve {
            id,
            step,
            connection,
        } => simple(
            &connection,
            Method::POST,
            format!("/runs/{id}/steps/{step}/approve"),
            None,
            format!("step {step} of run {id} approved\n"),
        ),
        A::Deny {
            id,
            step,
            reason,
            connection,
        } => simple(
            &connection,
            Method::POST,
            format!("/runs/{id}/steps/{step}/deny"),
            Some(serde_json::json!({"reason": reason}).to_string()),
            format!("step {step} of run {id} denied\n"),
        ),
        A::Cancel { id, connection } => simple(
            &connection,
            Method::POST,
            format!("/runs/{id}/cancel"),
            None,
            format!("run {id} is being cancelled\n"),
        ),
    }
}

pub(crate) fn simple(
    connection: &Connection,
    method: Method,
    path: String,
    body: Option<String>,
    done: String,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    block_on(async move {
        let answer = client.send(method, &path, body).await?;
        Ok(finish(&answer, false, |_| done))
    })
}

pub(crate) fn secret(command: super::SecretCommand) -> anyhow::Result<ExitCode> {
    use super::SecretCommand as S;
    match command {
        S::Set {
            name,
            workflow,
            connection,
        } => {
            let mut value = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut value)
                .context("cannot read the secret from standard input")?;
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            simple(
                &connection,
                Method::PUT,
                format!("/workflows/{workflow}/secrets/{name}"),
                Some(value),
                format!("secret {name} of {workflow} set\n"),
            )
        }
        S::List {
            workflow,
            connection,
        } => {
            let client = Client::new(&connection)?;
            block_on(async move {
                let answer = client
                    .send(Method::GET, &format!("/workflows/{workflow}/secrets"), None)
                    .await?;
                Ok(finish(&answer, false, |b| {
                    items(b, "items")
                        .iter()
                        .map(|n| format!("{}\n", n.as_str().unwrap_or_default()))
                        .collect()
                }))
            })
        }
        S::Delete {
            name,
            workflow,
            connection,
        } => simple(
            &connection,
            Method::DELETE,
            format!("/workflows/{workflow}/secrets/{name}"),
            None,
            format!("secret {name} of {workflow} deleted\n"),
        ),
    }
}

pub(crate) fn connection(command: super::ConnectionCommand) -> anyhow::Result<ExitCode> {
    use super::ConnectionCommand as C;
    match command {
        C::Set {
            type_,
            name,
            file,
            connection,
        } => {
            let src = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let fields = gantry_workflow::parse_data(&src)
                .map_err(|_| anyhow::anyhow!("{} is not valid YAML or JSON", file.display()))?;
            simple(
                &connection,
                Method::PUT,
                format!("/connections/{type_}/{name}"),
                Some(fields.to_string()),
                format!("connection {type_}/{name} set\n"),
            )
        }
        C::List { connection } => {
            let client = Client::new(&connection)?;
            block_on(async move {
                let answer = client.send(Method::GET, "/connections", None).await?;
                Ok(finish(&answer, false, |b| {
                    items(b, "items")
                        .iter()
                        .map(|c| {
                            format!(
                                "{}/{}\n",
                                c["type"].as_str().unwrap_or_default(),
                                c["name"].as_str().unwrap_or_default()
                            )
                        })
                        .collect()
                }))
            })
        }
        C::Delete {
            type_,
            name,
            connection,
        } => simple(
            &connection,
            Method::DELETE,
            format!("/connections/{type_}/{name}"),
            None,
            format!("connection {type_}/{name} deleted\n"),
        ),
    }
}
