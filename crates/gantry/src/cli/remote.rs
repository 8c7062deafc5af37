//! Workflow commands that talk to `gantry server`: apply, list, get, versions, delete.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use reqwest::Method;
use serde_json::Value;

use super::client::{block_on, Client, Connection};

fn finish(
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
        let mut items: Vec<Value> = Vec::new();
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
            items.extend(answer.body["items"].as_array().cloned().unwrap_or_default());
            match answer.body["next"].as_str() {
                Some(n) => after = Some(n.to_owned()),
                None => break,
            }
        }
        if json {
            println!("{}", serde_json::to_string_pretty(&items)?);
            return Ok(ExitCode::SUCCESS);
        }
        let width = items
            .iter()
            .filter_map(|i| i["name"].as_str())
            .map(str::len)
            .max()
            .unwrap_or(4)
            .max(4);
        println!("{:<width$}  VERSION  UPDATED", "NAME");
        for i in &items {
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
            for v in b["items"].as_array().cloned().unwrap_or_default() {
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
