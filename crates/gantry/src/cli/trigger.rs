//! `gantry trigger …`: a workflow's triggers on the server and the tokens of its push triggers.
//!
//! A push token is printed once, when it is made, and never again: listings show ids and times
//! only, even if a server sent more. Choosing the push trigger when none is named and rendering
//! are plain functions over the server's JSON; the rest is one request each.

use std::process::ExitCode;

use anyhow::bail;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{block_on, segment, Answer, Client, Connection};
use super::render::table;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TriggerCommand {
    /// List a workflow's triggers: webhook URLs, push endpoints with their token counts,
    /// schedules with their next fire time.
    List {
        workflow: String,
        #[arg(long, value_enum, default_value_t = super::Format::Human)]
        format: super::Format,
        #[command(flatten)]
        connection: Connection,
    },
    /// Make a new token for a push trigger and print it (shown this once only).
    ///
    /// Standard output gets the token alone, so `TOKEN=$(gantry trigger token W)` works.
    Token {
        workflow: String,
        /// The push trigger; may be left out when the workflow has exactly one.
        #[arg(long, value_name = "NAME")]
        trigger: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// List a push trigger's tokens: ids and times, never the tokens themselves.
    Tokens {
        workflow: String,
        /// The push trigger; may be left out when the workflow has exactly one.
        #[arg(long, value_name = "NAME")]
        trigger: Option<String>,
        #[arg(long, value_enum, default_value_t = super::Format::Human)]
        format: super::Format,
        #[command(flatten)]
        connection: Connection,
    },
    /// Revoke a push trigger's token; events signed with it are refused from then on.
    Revoke {
        workflow: String,
        /// The token's id (from `gantry trigger tokens`).
        token_id: String,
        /// The push trigger; may be left out when the workflow has exactly one.
        #[arg(long, value_name = "NAME")]
        trigger: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
}

fn list_of(body: &Value) -> &[Value] {
    body["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn text<'v>(v: &'v Value, key: &str) -> &'v str {
    v[key].as_str().unwrap_or_default()
}

/// The one push trigger of `workflow`, from its trigger list.
fn only_push_trigger(workflow: &str, triggers: &[Value]) -> anyhow::Result<String> {
    let push: Vec<&str> = triggers
        .iter()
        .filter(|t| t["type"] == "push")
        .map(|t| text(t, "name"))
        .collect();
    match push.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => bail!("workflow {workflow} has no push trigger"),
        many => bail!(
            "workflow {workflow} has {} push triggers ({}): name one with --trigger",
            many.len(),
            many.join(", ")
        ),
    }
}

/// `name  type  URL, endpoint or schedule  next fire or tokens`.
fn triggers_table(triggers: &[Value]) -> String {
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    let rows: Vec<Vec<String>> = triggers
        .iter()
        .map(|t| {
            let kind = text(t, "type");
            let (target, next) = match kind {
                "webhook" => (text(t, "url").to_owned(), "-".to_owned()),
                "push" => {
                    let tokens = t["tokens"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    let active = tokens.iter().filter(|k| k["revokedAt"].is_null()).count();
                    let revoked = tokens.len() - active;
                    let mut count = format!(
                        "{active} active token{}",
                        if active == 1 { "" } else { "s" }
                    );
                    if revoked > 0 {
                        count.push_str(&format!(", {revoked} revoked"));
                    }
                    (text(t, "endpoint").to_owned(), count)
                }
                "schedule" => (
                    text(t, "schedule").to_owned(),
                    or_dash(text(t, "nextFireAt")),
                ),
                _ => (String::new(), String::new()),
            };
            vec![
                text(t, "name").to_owned(),
                kind.to_owned(),
                or_dash(&target),
                or_dash(&next),
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "TYPE",
            "URL / ENDPOINT / SCHEDULE",
            "NEXT FIRE / TOKENS",
        ],
        &rows,
    )
}

/// Token records as they may be shown: id and times, whatever else the server sent.
fn tokens_shown(tokens: &[Value]) -> Vec<Value> {
    tokens
        .iter()
        .map(|t| json!({"id": t["id"], "createdAt": t["createdAt"], "revokedAt": t["revokedAt"]}))
        .collect()
}

fn tokens_table(tokens: &[Value]) -> String {
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                text(t, "id").to_owned(),
                text(t, "createdAt").to_owned(),
                t["revokedAt"].as_str().unwrap_or("-").to_owned(),
            ]
        })
        .collect();
    table(&["ID", "CREATED", "REVOKED"], &rows)
}

fn refused(answer: &Answer) -> ExitCode {
    eprint!("{}", answer.error_text(None));
    ExitCode::from(1)
}

/// The push trigger named, or the workflow's only one.
async fn push_trigger(
    client: &Client,
    workflow: &str,
    named: Option<String>,
) -> anyhow::Result<Result<String, Answer>> {
    if let Some(t) = named {
        return Ok(Ok(t));
    }
    let answer = client
        .send(
            Method::GET,
            &format!("/workflows/{}/triggers", segment(workflow)),
            None,
        )
        .await?;
    if !answer.ok() {
        return Ok(Err(answer));
    }
    Ok(Ok(only_push_trigger(workflow, list_of(&answer.body))?))
}

fn tokens_path(workflow: &str, trigger: &str) -> String {
    format!(
        "/workflows/{}/triggers/{}/tokens",
        segment(workflow),
        segment(trigger)
    )
}

pub(crate) fn trigger(command: TriggerCommand) -> anyhow::Result<ExitCode> {
    use TriggerCommand as T;
    match command {
        T::List {
            workflow,
            format,
            connection,
        } => {
            let client = Client::new(&connection)?;
            block_on(async move {
                let answer = client
                    .send(
                        Method::GET,
                        &format!("/workflows/{}/triggers", segment(&workflow)),
                        None,
                    )
                    .await?;
                if !answer.ok() {
                    return Ok(refused(&answer));
                }
                let triggers = list_of(&answer.body);
                if format == super::Format::Json {
                    println!("{}", serde_json::to_string_pretty(triggers)?);
                } else {
                    print!("{}", triggers_table(triggers));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        T::Token {
            workflow,
            trigger,
            connection,
        } => {
            let client = Client::new(&connection)?;
            block_on(async move {
                let trigger = match push_trigger(&client, &workflow, trigger).await? {
                    Ok(t) => t,
                    Err(answer) => return Ok(refused(&answer)),
                };
                let answer = client
                    .send(Method::POST, &tokens_path(&workflow, &trigger), None)
                    .await?;
                if !answer.ok() {
                    return Ok(refused(&answer));
                }
                let Some(token) = answer.body["token"].as_str() else {
                    bail!("the server's answer has no token");
                };
                println!("{token}");
                eprintln!(
                    "token {} for push trigger {trigger} of {workflow}: it is shown this once only",
                    text(&answer.body, "id")
                );
                Ok(ExitCode::SUCCESS)
            })
        }
        T::Tokens {
            workflow,
            trigger,
            format,
            connection,
        } => {
            let client = Client::new(&connection)?;
            block_on(async move {
                let trigger = match push_trigger(&client, &workflow, trigger).await? {
                    Ok(t) => t,
                    Err(answer) => return Ok(refused(&answer)),
                };
                let answer = client
                    .send(Method::GET, &tokens_path(&workflow, &trigger), None)
                    .await?;
                if !answer.ok() {
                    return Ok(refused(&answer));
                }
                let tokens = list_of(&answer.body);
                if format == super::Format::Json {
                    println!("{}", serde_json::to_string_pretty(&tokens_shown(tokens))?);
                } else {
                    print!("{}", tokens_table(tokens));
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        T::Revoke {
            workflow,
            token_id,
            trigger,
            connection,
        } => {
            let client = Client::new(&connection)?;
            block_on(async move {
                let trigger = match push_trigger(&client, &workflow, trigger).await? {
                    Ok(t) => t,
                    Err(answer) => return Ok(refused(&answer)),
                };
                let path = format!(
                    "{}/{}",
                    tokens_path(&workflow, &trigger),
                    segment(&token_id)
                );
                let answer = client.send(Method::DELETE, &path, None).await?;
                if !answer.ok() {
                    return Ok(refused(&answer));
                }
                println!("token {token_id} of push trigger {trigger} of {workflow} revoked");
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triggers() -> Vec<Value> {
        serde_json::from_str(
            r#"[
              {"name": "on-hook", "type": "webhook", "url": "https://g.example/hooks/h1", "image": null},
              {"name": "nightly", "type": "schedule", "schedule": "0 3 * * *",
               "nextFireAt": "2026-05-02T03:00:00.000Z", "lastFireAt": null},
              {"name": "paused", "type": "schedule", "schedule": "@every 1h",
               "nextFireAt": null, "lastFireAt": "2026-05-01T10:00:00.000Z"},
              {"name": "deploys", "type": "push", "endpoint": "https://g.example/api/events",
               "tokens": [
                 {"id": "t1", "createdAt": "2026-05-01T10:00:00.000Z", "revokedAt": null},
                 {"id": "t2", "createdAt": "2026-05-01T11:00:00.000Z",
                  "revokedAt": "2026-05-01T12:00:00.000Z"}
               ]}
            ]"#,
        )
        .unwrap()
    }

    #[test]
    fn trigger_table() {
        insta::assert_snapshot!(triggers_table(&triggers()), @r"
        NAME     TYPE      URL / ENDPOINT / SCHEDULE     NEXT FIRE / TOKENS
        on-hook  webhook   https://g.example/hooks/h1    -
        nightly  schedule  0 3 * * *                     2026-05-02T03:00:00.000Z
        paused   schedule  @every 1h                     -
        deploys  push      https://g.example/api/events  1 active token, 1 revoked
        ");
        let one = json!({"name": "p", "type": "push", "endpoint": "e", "tokens": []});
        assert!(triggers_table(&[one])
            .ends_with("p     push  e                          0 active tokens\n"));
    }

    #[test]
    fn the_only_push_trigger_is_chosen() {
        assert_eq!(only_push_trigger("w", &triggers()).unwrap(), "deploys");
        let e = only_push_trigger("w", &triggers()[..3]).unwrap_err();
        assert_eq!(e.to_string(), "workflow w has no push trigger");
        let mut two = triggers();
        two.push(json!({"name": "releases", "type": "push"}));
        let e = only_push_trigger("w", &two).unwrap_err();
        assert_eq!(
            e.to_string(),
            "workflow w has 2 push triggers (deploys, releases): name one with --trigger"
        );
    }

    #[test]
    fn token_listings_never_show_a_token() {
        let tokens = vec![json!({
            "id": "t1", "token": "eyJ.secret.sig",
            "createdAt": "2026-05-01T10:00:00.000Z", "revokedAt": null
        })];
        let shown = serde_json::to_string(&tokens_shown(&tokens)).unwrap();
        assert_eq!(
            shown,
            r#"[{"id":"t1","createdAt":"2026-05-01T10:00:00.000Z","revokedAt":null}]"#
        );
        insta::assert_snapshot!(tokens_table(&tokens), @r"
        ID  CREATED                   REVOKED
        t1  2026-05-01T10:00:00.000Z  -
        ");
    }
}
