//! `gantry user …`, `gantry team …`, `gantry service-account …`, `gantry apikey …`: who may use
//! a server, through its API (an admin's key). A new API key is printed once, alone on standard
//! output, so `KEY=$(gantry apikey create --user ann@example.com)` works; listings never show a
//! key.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{json, Value};

use super::client::{block_on, segment, Client, Connection};
use super::remote::{finish, items, simple};
use super::render::table;
use super::Format;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RoleArg {
    Viewer,
    Operator,
    Approver,
    Admin,
}

impl RoleArg {
    fn as_str(self) -> &'static str {
        match self {
            RoleArg::Viewer => "viewer",
            RoleArg::Operator => "operator",
            RoleArg::Approver => "approver",
            RoleArg::Admin => "admin",
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum UserCommand {
    /// Create a user with a role, optionally adding them to a team.
    Create {
        email: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Their display name (default: the email).
        #[arg(long)]
        name: Option<String>,
        /// A team to add them to.
        #[arg(long, value_name = "TEAM")]
        team: Option<String>,
        /// Make them a maintainer of `--team` (they may change what it owns).
        #[arg(long, requires = "team")]
        maintainer: bool,
        /// Read a password (at least 12 characters) from the first line of standard input;
        /// without it the user signs in through single sign-on only.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// List users with their roles and teams.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TeamCommand {
    /// Create a team.
    Create {
        name: String,
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Add a user to a team, or change whether they maintain it.
    Add {
        team: String,
        email: String,
        /// They may change what the team owns.
        #[arg(long)]
        maintainer: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Remove a user from a team.
    Remove {
        team: String,
        email: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// List teams and their members.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ServiceAccountCommand {
    /// Create a service account (a principal for automation) with a role.
    Create {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The team it acts for: it may change what that team owns.
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// List service accounts.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ApiKeyCommand {
    /// Make an API key for a user or a service account and print it (shown this once only).
    Create {
        /// The user's email.
        #[arg(
            long,
            value_name = "EMAIL",
            required_unless_present = "service_account"
        )]
        user: Option<String>,
        /// The service account's name.
        #[arg(long, value_name = "NAME", conflicts_with = "user")]
        service_account: Option<String>,
        /// When it stops working: `30d`, `12h`, `90m`, `2w` from now (default: never).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// List API keys: ids, prefixes, principals and times, never the keys.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: Connection,
    },
    /// Revoke an API key; it is refused from the next request on.
    Revoke {
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One request whose answer is `done` when it succeeds.
fn send(
    connection: &Connection,
    method: Method,
    path: String,
    body: Option<Value>,
    done: String,
) -> anyhow::Result<ExitCode> {
    simple(connection, method, path, body.map(|b| b.to_string()), done)
}

fn list(
    connection: &Connection,
    path: &str,
    format: Format,
    render: impl FnOnce(&Value) -> String,
) -> anyhow::Result<ExitCode> {
    let client = Client::new(connection)?;
    block_on(async move {
        let answer = client.send(Method::GET, path, None).await?;
        Ok(finish(&answer, format == Format::Json, render))
    })
}

pub(crate) fn user(command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Create {
            email,
            role,
            name,
            team,
            maintainer,
            password_stdin,
            connection,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| anyhow::anyhow!("cannot read the password: {e}"))?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            let client = Client::new(&connection)?;
            block_on(async move {
                let body = json!({
                    "email": email,
                    "role": role.as_str(),
                    "name": name,
                    "password": password,
                });
                let answer = client
                    .send(Method::POST, "/users", Some(body.to_string()))
                    .await?;
                if !answer.ok() {
                    return Ok(finish(&answer, false, |_| String::new()));
                }
                let email = text(&answer.body["email"]);
                if let Some(team) = &team {
                    let path = format!("/teams/{}/members/{}", segment(team), segment(&email));
                    let body = json!({ "maintainer": maintainer }).to_string();
                    let joined = client.send(Method::PUT, &path, Some(body)).await?;
                    if !joined.ok() {
                        eprint!("{}", joined.error_text(None));
                        eprintln!("user {email} was created, but not added to team {team}");
                        return Ok(ExitCode::from(1));
                    }
                }
                let role = text(&answer.body["role"]);
                match team {
                    Some(team) => println!("user {email} created ({role}, in team {team})"),
                    None => println!("user {email} created ({role})"),
                }
                Ok(ExitCode::SUCCESS)
            })
        }
        UserCommand::List { format, connection } => list(&connection, "/users", format, |b| {
            let rows: Vec<Vec<String>> = items(b, "items")
                .iter()
                .map(|u| {
                    let teams: Vec<String> = u["teams"]
                        .as_array()
                        .map_or(&[][..], Vec::as_slice)
                        .iter()
                        .map(|t| {
                            let star = if t["maintainer"] == true { "*" } else { "" };
                            format!("{}{star}", text(&t["team"]))
                        })
                        .collect();
                    vec![
                        text(&u["email"]),
                        text(&u["role"]),
                        if teams.is_empty() {
                            "-".to_owned()
                        } else {
                            teams.join(",")
                        },
                    ]
                })
                .collect();
            table(&["EMAIL", "ROLE", "TEAMS (* maintainer)"], &rows)
        }),
    }
}

pub(crate) fn team(command: TeamCommand) -> anyhow::Result<ExitCode> {
    match command {
        TeamCommand::Create {
            name,
            title,
            connection,
        } => send(
            &connection,
            Method::POST,
            "/teams".to_owned(),
            Some(json!({"name": name, "title": title})),
            format!("team {name} created\n"),
        ),
        TeamCommand::Add {
            team,
            email,
            maintainer,
            connection,
        } => send(
            &connection,
            Method::PUT,
            format!("/teams/{}/members/{}", segment(&team), segment(&email)),
            Some(json!({ "maintainer": maintainer })),
            format!(
                "{email} is {} of team {team}\n",
                if maintainer {
                    "a maintainer"
                } else {
                    "a member"
                }
            ),
        ),
        TeamCommand::Remove {
            team,
            email,
            connection,
        } => send(
            &connection,
            Method::DELETE,
            format!("/teams/{}/members/{}", segment(&team), segment(&email)),
            None,
            format!("{email} removed from team {team}\n"),
        ),
        TeamCommand::List { format, connection } => list(&connection, "/teams", format, |b| {
            let rows: Vec<Vec<String>> = items(b, "items")
                .iter()
                .map(|t| {
                    let members = t["members"].as_array().map_or(0, Vec::len);
                    vec![text(&t["name"]), text(&t["title"]), members.to_string()]
                })
                .collect();
            table(&["NAME", "TITLE", "MEMBERS"], &rows)
        }),
    }
}

pub(crate) fn service_account(command: ServiceAccountCommand) -> anyhow::Result<ExitCode> {
    match command {
        ServiceAccountCommand::Create {
            name,
            role,
            team,
            connection,
        } => send(
            &connection,
            Method::POST,
            "/service-accounts".to_owned(),
            Some(json!({"name": name, "role": role.as_str(), "team": team})),
            format!("service account {name} created ({})\n", role.as_str()),
        ),
        ServiceAccountCommand::List { format, connection } => {
            list(&connection, "/service-accounts", format, |b| {
                let rows: Vec<Vec<String>> = items(b, "items")
                    .iter()
                    .map(|a| vec![text(&a["name"]), text(&a["role"]), text(&a["team"])])
                    .collect();
                table(&["NAME", "ROLE", "TEAM"], &rows)
            })
        }
    }
}

pub(crate) fn api_key(command: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        ApiKeyCommand::Create {
            user,
            service_account,
            expires,
            connection,
        } => {
            let client = Client::new(&connection)?;
            block_on(async move {
                let body = json!({
                    "user": user,
                    "serviceAccount": service_account,
                    "expiresIn": expires,
                });
                let answer = client
                    .send(Method::POST, "/api-keys", Some(body.to_string()))
                    .await?;
                if !answer.ok() {
                    return Ok(finish(&answer, false, |_| String::new()));
                }
                // The key alone on standard output; what it is on standard error.
                println!("{}", text(&answer.body["key"]));
                eprintln!(
                    "API key {} for {} (expires: {}); it is shown this once",
                    text(&answer.body["id"]),
                    text(&answer.body["principal"]),
                    text(&answer.body["expiresAt"]),
                );
                Ok(ExitCode::SUCCESS)
            })
        }
        ApiKeyCommand::List { format, connection } => list(&connection, "/api-keys", format, |b| {
            let rows: Vec<Vec<String>> = items(b, "items")
                .iter()
                .map(|k| {
                    vec![
                        text(&k["id"]),
                        text(&k["prefix"]),
                        text(&k["principal"]),
                        text(&k["lastUsedAt"]),
                        text(&k["expiresAt"]),
                        text(&k["revokedAt"]),
                    ]
                })
                .collect();
            table(
                &[
                    "ID",
                    "PREFIX",
                    "PRINCIPAL",
                    "LAST USED",
                    "EXPIRES",
                    "REVOKED",
                ],
                &rows,
            )
        }),
        ApiKeyCommand::Revoke { id, connection } => send(
            &connection,
            Method::DELETE,
            format!("/api-keys/{}", segment(&id)),
            None,
            format!("API key {id} revoked\n"),
        ),
    }
}

/// `gantry workflow owner NAME (TEAM | --none)`.
pub(crate) fn workflow_owner(
    connection: &Connection,
    workflow: &str,
    team: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let done = match team {
        Some(team) => format!("workflow {workflow} is owned by team {team}\n"),
        None => format!("workflow {workflow} is owned by no team\n"),
    };
    send(
        connection,
        Method::PUT,
        format!("/workflows/{}/owner", segment(workflow)),
        Some(json!({ "team": team })),
        done,
    )
}

/// `gantry audit`: what changed, who changed it, when; newest first.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// A resource and everything under it, e.g. `workflow/deploy` (its secrets and tokens too),
    /// `user/ann@example.com`, `run/<id>`.
    #[arg(long, value_name = "RESOURCE")]
    resource: Option<String>,
    /// An actor: an email, a service account's name, or an id such as `user:<id>`.
    #[arg(long, value_name = "ACTOR")]
    actor: Option<String>,
    /// An action (`workflow.put`) or every action of a kind (`workflow`).
    #[arg(long, value_name = "ACTION")]
    action: Option<String>,
    /// Only events at or after this time: RFC 3339 (`2026-11-01T00:00:00Z`) or an age (`24h`,
    /// `7d`).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events before this time, written like `--since`.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    #[command(flatten)]
    connection: Connection,
}

/// An RFC 3339 time as given, or an age (`24h`, `7d`, `2w`) as the time that long ago.
fn instant(flag: &str, given: &str) -> anyhow::Result<String> {
    if chrono::DateTime::parse_from_rfc3339(given).is_ok() {
        return Ok(given.to_owned());
    }
    let age = gantry_server::api::parse_age(given).ok_or_else(|| {
        anyhow::anyhow!(
            "--{flag} `{given}` is neither an RFC 3339 time (2026-11-01T00:00:00Z) nor an age \
             such as 90m, 24h, 7d or 2w"
        )
    })?;
    let at = chrono::Utc::now() - age;
    Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

pub(crate) fn audit(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let mut query = Vec::new();
    for (name, value) in [
        ("resource", args.resource.clone()),
        ("actor", args.actor.clone()),
        ("action", args.action.clone()),
    ] {
        if let Some(v) = value {
            query.push(format!("{name}={}", segment(&v)));
        }
    }
    for (name, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(v) = value {
            query.push(format!("{name}={}", segment(&instant(name, v)?)));
        }
    }
    let client = Client::new(&args.connection)?;
    let (limit, format) = (args.limit.max(1), args.format);
    block_on(async move {
        // Pages of up to 1000 until `--limit` events or the end of the log.
        let mut events: Vec<Value> = Vec::new();
        let mut after: Option<String> = None;
        let next = loop {
            let want = (limit as usize - events.len()).min(1000);
            let mut q = query.clone();
            q.push(format!("limit={want}"));
            if let Some(a) = &after {
                q.push(format!("after={}", segment(a)));
            }
            let answer = client
                .send(Method::GET, &format!("/audit?{}", q.join("&")), None)
                .await?;
            if !answer.ok() {
                return Ok(finish(&answer, format == Format::Json, |_| String::new()));
            }
            events.extend(items(&answer.body, "items").iter().cloned());
            after = answer.body["next"].as_str().map(str::to_owned);
            if after.is_none() || events.len() >= limit as usize {
                break after;
            }
        };
        let page = json!({"items": events, "next": next});
        if format == Format::Json {
            println!("{}", serde_json::to_string_pretty(&page)?);
            return Ok(ExitCode::SUCCESS);
        }
        let rows: Vec<Vec<String>> = items(&page, "items")
            .iter()
            .map(|e| {
                vec![
                    text(&e["at"]),
                    text(&e["actor"]["name"]),
                    text(&e["action"]),
                    text(&e["resource"]),
                    text(&e["source"]),
                ]
            })
            .collect();
        print!(
            "{}",
            table(&["TIME", "ACTOR", "ACTION", "RESOURCE", "SOURCE"], &rows)
        );
        Ok(ExitCode::SUCCESS)
    })
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum AgentCommand {
    /// Agent tokens: what an agent presents when it polls the server for work.
    #[command(subcommand)]
    Token(AgentTokenCommand),
    /// The agents any server sharing the database has seen: pool, id, version, host, last
    /// contact and the jobs they run.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum AgentTokenCommand {
    /// Make a token for an agent of `--pool` and print it (shown this once only). It opens the
    /// agent endpoints only; list and revoke it with `gantry apikey`.
    Create {
        #[arg(long, value_name = "NAME")]
        pool: String,
        /// When it stops working: `30d`, `12h`, `90m`, `2w` from now (default: never).
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
}

pub(crate) fn agent(command: AgentCommand) -> anyhow::Result<ExitCode> {
    let (pool, expires, connection) = match command {
        AgentCommand::Token(AgentTokenCommand::Create {
            pool,
            expires,
            connection,
        }) => (pool, expires, connection),
        AgentCommand::List { format, connection } => {
            return list(&connection, "/agents", format, |b| {
                let rows: Vec<Vec<String>> = items(b, "items")
                    .iter()
                    .map(|a| {
                        let jobs = a["jobs"].as_array().map_or(0, Vec::len);
                        vec![
                            text(&a["pool"]),
                            text(&a["id"]),
                            text(&a["version"]),
                            text(&a["hostname"]),
                            text(&a["lastSeen"]),
                            jobs.to_string(),
                        ]
                    })
                    .collect();
                table(
                    &["POOL", "ID", "VERSION", "HOST", "LAST SEEN", "JOBS"],
                    &rows,
                )
            })
        }
    };
    let client = Client::new(&connection)?;
    block_on(async move {
        let body = json!({"pool": pool, "expiresIn": expires});
        let answer = client
            .send(Method::POST, "/agent-tokens", Some(body.to_string()))
            .await?;
        if !answer.ok() {
            return Ok(finish(&answer, false, |_| String::new()));
        }
        println!("{}", text(&answer.body["key"]));
        eprintln!(
            "agent token {} for pool {pool} (expires: {}); it is shown this once",
            text(&answer.body["id"]),
            text(&answer.body["expiresAt"]),
        );
        Ok(ExitCode::SUCCESS)
    })
}
