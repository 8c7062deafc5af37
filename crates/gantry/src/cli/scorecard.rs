//! `gantry scorecard`, `gantry initiative` and `gantry automation`: where entities stand, how
//! initiatives progress, what automations did, and `gantry scorecard check`, the CI gate that
//! evaluates definition files as they would be after a change and fails on a level drop.
//!
//! The texts are plain functions of the server's answers, tested here; the rest asks the
//! server through [`Client`].

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::{json, Value};

use super::action::{refusal, shown};
use super::catalog::{document_json, read_documents};
use super::client::{block_on, segment, Client, Connection};
use super::remote::items;
use super::render::table;
use super::Format;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum ScorecardCommand {
    /// List the scorecards with how many entities stand at each level.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show a scorecard: its levels and rules, entities per level and team, each rule's pass
    /// rate.
    Get {
        identifier: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// List where a scorecard's entities stand, by identifier.
    Entities {
        identifier: String,
        /// Only entities at this level.
        #[arg(long)]
        level: Option<String>,
        /// Only entities of this team.
        #[arg(long)]
        team: Option<String>,
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: usize,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show where one entity stands on every scorecard: level, score, each rule with the value
    /// it saw, and what to fix next.
    Entity {
        /// `BLUEPRINT/IDENTIFIER`
        #[arg(value_name = "BLUEPRINT/ID")]
        entity: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// A scorecard's level changes, newest first.
    History {
        identifier: String,
        /// Only this entity.
        #[arg(long, value_name = "BLUEPRINT/ID")]
        entity: Option<String>,
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Evaluate definition files as they would be after a change against the server's
    /// scorecards, and print every entity whose level would rise or drop with the rules behind
    /// it. Applies nothing.
    ///
    /// Exit codes: 0 no drop (or drops without `--fail-on-drop`); 1 a level would drop and
    /// `--fail-on-drop` is given, or the server refused the files; 2 the command could not do
    /// its job (unreadable files, the server unreachable).
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// Definition files or folders of them (`.yaml`, `.yml`, `.json`, searched recursively).
    #[arg(short = 'f', long = "file", required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Exit 1 when any entity's level would drop.
    #[arg(long)]
    fail_on_drop: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum InitiativeCommand {
    /// List the initiatives with their progress.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show an initiative's progress in all and per team.
    Get {
        identifier: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum AutomationCommand {
    /// List the automations.
    List {
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show an automation's definition.
    Get {
        identifier: String,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// What automations did, newest first.
    Firings {
        /// Only this automation's.
        #[arg(long)]
        automation: Option<String>,
        /// Only firings that ended so: started, written, failed, stopped.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50, value_name = "N")]
        limit: u32,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

pub(crate) fn scorecard(c: &Connection, command: ScorecardCommand) -> anyhow::Result<ExitCode> {
    if let ScorecardCommand::Check(args) = command {
        return check(c, &args);
    }
    let client = Client::new(c)?;
    let (path, format, text): (String, Format, fn(&Value) -> String) = match command {
        ScorecardCommand::List { format } => ("/scorecards".into(), format, scorecards_text),
        ScorecardCommand::Get { identifier, format } => (
            format!("/scorecards/{}", segment(&identifier)),
            format,
            scorecard_text,
        ),
        ScorecardCommand::Entities {
            identifier,
            level,
            team,
            limit,
            format,
        } => {
            let mut path = format!(
                "/scorecards/{}/entities?limit={limit}",
                segment(&identifier)
            );
            if let Some(l) = level {
                path.push_str(&format!("&level={}", segment(&l)));
            }
            if let Some(t) = team {
                path.push_str(&format!("&team={}", segment(&t)));
            }
            (path, format, standings_text)
        }
        ScorecardCommand::Entity { entity, format } => {
            let (bp, id) = entity
                .split_once('/')
                .context("an entity is BLUEPRINT/IDENTIFIER")?;
            (
                format!(
                    "/blueprints/{}/entities/{}/scorecards",
                    segment(bp),
                    segment(id)
                ),
                format,
                entity_text,
            )
        }
        ScorecardCommand::History {
            identifier,
            entity,
            limit,
            format,
        } => {
            let mut path = format!("/scorecards/{}/history?limit={limit}", segment(&identifier));
            if let Some(e) = entity {
                path.push_str(&format!("&entity={}", segment(&e)));
            }
            (path, format, history_text)
        }
        ScorecardCommand::Check(_) => unreachable!("handled above"),
    };
    shown_get(&client, &path, format, text)
}

pub(crate) fn initiative(c: &Connection, command: InitiativeCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(c)?;
    let (path, format, text): (String, Format, fn(&Value) -> String) = match command {
        InitiativeCommand::List { format } => ("/initiatives".into(), format, initiatives_text),
        InitiativeCommand::Get { identifier, format } => (
            format!("/initiatives/{}", segment(&identifier)),
            format,
            initiative_text,
        ),
    };
    shown_get(&client, &path, format, text)
}

pub(crate) fn automation(c: &Connection, command: AutomationCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(c)?;
    let (path, format, text): (String, Format, fn(&Value) -> String) = match command {
        AutomationCommand::List { format } => ("/automations".into(), format, automations_text),
        AutomationCommand::Get { identifier, format } => (
            format!("/automations/{}", segment(&identifier)),
            format,
            pretty,
        ),
        AutomationCommand::Firings {
            automation,
            status,
            limit,
            format,
        } => {
            let mut path = format!("/automation-firings?limit={limit}");
            if let Some(a) = automation {
                path.push_str(&format!("&automation={}", segment(&a)));
            }
            if let Some(s) = status {
                path.push_str(&format!("&status={}", segment(&s)));
            }
            (path, format, firings_text)
        }
    };
    shown_get(&client, &path, format, text)
}

/// GETs `path` and prints the answer with `text` (or as JSON).
fn shown_get(
    client: &Client,
    path: &str,
    format: Format,
    text: fn(&Value) -> String,
) -> anyhow::Result<ExitCode> {
    block_on(async move {
        let answer = client.send(Method::GET, path, None).await?;
        Ok(shown(&answer, format, text))
    })
}

fn check(c: &Connection, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let Some(documents) = read_documents(&args.paths, "nothing was checked")? else {
        return Ok(ExitCode::from(2));
    };
    let body = json!({ "documents": documents.iter().map(document_json).collect::<Vec<_>>() });
    let client = Client::new(c)?;
    block_on(async move {
        let answer = client
            .send_json(Method::POST, "/scorecards/check", &body)
            .await?;
        if !answer.ok() {
            eprint!("{}", refusal(&answer));
            for p in items(&answer.body["details"], "problems") {
                let doc = p["document"]
                    .as_u64()
                    .and_then(|i| documents.get(i as usize));
                if let Some(d) = doc {
                    eprintln!(
                        "{}: {}",
                        d.locate(p["path"].as_str().unwrap_or_default()),
                        p["message"].as_str().unwrap_or_default()
                    );
                }
            }
            return Ok(ExitCode::from(1));
        }
        match args.format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&answer.body).unwrap_or_default()
            ),
            Format::Human => print!("{}", check_text(&answer.body)),
        }
        let drops = answer.body["drops"].as_u64().unwrap_or(0);
        Ok(if args.fail_on_drop && drops > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// What `gantry scorecard check` prints: one line per level change, the rules behind it, and
/// a count.
pub(crate) fn check_text(v: &Value) -> String {
    let mut out = String::new();
    for c in items(v, "changes") {
        let sc = c["scorecard"].as_str().unwrap_or_default();
        let entity = c["entity"].as_str().unwrap_or_default();
        let level = |k: &str| c[k].as_str().map(str::to_owned);
        let line = match (level("from"), level("to")) {
            (Some(f), Some(t)) if c["direction"] == "drop" => format!("drops {f} → {t}"),
            (Some(f), Some(t)) => format!("rises {f} → {t}"),
            (None, Some(t)) => format!("enters at {t}"),
            (Some(f), None) => format!("leaves (was {f})"),
            (None, None) => continue,
        };
        let mark = match c["direction"].as_str() {
            Some("drop") => "▼",
            Some("rise") => "▲",
            Some("enter") => "+",
            _ => "-",
        };
        out.push_str(&format!("{mark} {entity} {line} on {sc}\n"));
        // An entity entering the scorecard lists every rule it fails or passes: none of them
        // changed, so "now" would be wrong.
        let labels = if c["from"].is_null() {
            [("newlyFailing", "failing"), ("newlyPassing", "passing")]
        } else {
            [
                ("newlyFailing", "now failing"),
                ("newlyPassing", "now passing"),
            ]
        };
        for (key, label) in labels {
            for r in items(c, key) {
                out.push_str(&format!(
                    "    {label}: {} ({}, {})\n",
                    r["identifier"].as_str().unwrap_or_default(),
                    r["title"].as_str().unwrap_or_default(),
                    r["level"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let mut summary = vec![
        plural(n("drops"), "drop", "drops"),
        plural(n("rises"), "rise", "rises"),
    ];
    for (key, what) in [("enters", "entering"), ("leaves", "leaving")] {
        if n(key) > 0 {
            summary.push(format!("{} {what}", n(key)));
        }
    }
    out.push_str(&summary.join(", "));
    out.push('\n');
    out
}

fn levels_cell(summary: &Value) -> String {
    items(summary, "byLevel")
        .iter()
        .map(|l| format!("{} {}", l["level"].as_str().unwrap_or_default(), l["count"]))
        .collect::<Vec<_>>()
        .join(", ")
}

fn scorecards_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "items")
        .iter()
        .map(|s| {
            vec![
                s["scorecard"]["identifier"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                s["scorecard"]["blueprint"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                s["summary"]["total"].to_string(),
                levels_cell(&s["summary"]),
            ]
        })
        .collect();
    table(&["IDENTIFIER", "BLUEPRINT", "ENTITIES", "LEVELS"], &rows)
}

fn scorecard_text(v: &Value) -> String {
    let sc = &v["scorecard"];
    let s = &v["summary"];
    let mut out = format!(
        "{} ({}) on {}: {} entities, average score {:.0}\n  levels: {}\n",
        sc["title"].as_str().unwrap_or_default(),
        sc["identifier"].as_str().unwrap_or_default(),
        sc["blueprint"].as_str().unwrap_or_default(),
        s["total"],
        s["averageScore"].as_f64().unwrap_or(0.0),
        levels_cell(s)
    );
    let rows: Vec<Vec<String>> = items(s, "rules")
        .iter()
        .map(|r| {
            vec![
                r["identifier"].as_str().unwrap_or_default().to_owned(),
                format!("{}/{}", r["passed"], r["total"]),
            ]
        })
        .collect();
    out.push_str(&table(&["RULE", "PASSED"], &rows));
    if let Some(teams) = s["byTeam"].as_object().filter(|t| !t.is_empty()) {
        // A heading, so the teams do not read as more rows of the rules' table.
        out.push_str("by team:\n");
        for (team, per) in teams {
            let cells: Vec<String> = per
                .as_object()
                .into_iter()
                .flatten()
                .map(|(l, n)| format!("{l} {n}"))
                .collect();
            let name = if team.is_empty() { "(no team)" } else { team };
            out.push_str(&format!("  {name}: {}\n", cells.join(", ")));
        }
    }
    out
}

fn standings_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "items")
        .iter()
        .map(|s| {
            vec![
                s["entity"].as_str().unwrap_or_default().to_owned(),
                s["level"].as_str().unwrap_or_default().to_owned(),
                format!("{:.0}", s["score"].as_f64().unwrap_or(0.0)),
                items(s, "toFixNext")
                    .iter()
                    .filter_map(|r| r["identifier"].as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    table(&["ENTITY", "LEVEL", "SCORE", "TO FIX NEXT"], &rows)
}

fn entity_text(v: &Value) -> String {
    let mut out = String::new();
    for s in items(v, "items") {
        out.push_str(&format!(
            "{}: {} (score {:.0})\n",
            s["scorecard"].as_str().unwrap_or_default(),
            s["level"].as_str().unwrap_or_default(),
            s["score"].as_f64().unwrap_or(0.0)
        ));
        for r in items(s, "rules") {
            // A missing value and a relation path that reached nothing read the same to a
            // person: "nothing", not `null` or `[]`.
            let seen = match &r["value"] {
                Value::Null => "nothing".to_owned(),
                Value::Array(a) if a.is_empty() => "nothing".to_owned(),
                v => v.to_string(),
            };
            out.push_str(&format!(
                "  {} {} [{}]: saw {seen}\n",
                if r["passed"] == true { "✓" } else { "✗" },
                r["identifier"].as_str().unwrap_or_default(),
                r["level"].as_str().unwrap_or_default(),
            ));
        }
        let next: Vec<&str> = items(s, "toFixNext")
            .iter()
            .filter_map(|r| r["identifier"].as_str())
            .collect();
        if let (Some(level), false) = (s["nextLevel"].as_str(), next.is_empty()) {
            out.push_str(&format!("  to reach {level}: fix {}\n", next.join(", ")));
        }
    }
    if out.is_empty() {
        out.push_str("no scorecard evaluates this entity\n");
    }
    out
}

fn history_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "items")
        .iter()
        .map(|h| {
            let level = |k: &str| h[k].as_str().unwrap_or("-").to_owned();
            vec![
                h["at"].as_str().unwrap_or_default().to_owned(),
                h["entity"].as_str().unwrap_or_default().to_owned(),
                level("from"),
                level("to"),
            ]
        })
        .collect();
    table(&["AT", "ENTITY", "FROM", "TO"], &rows)
}

fn share(p: &Value) -> String {
    format!(
        "{}/{} ({:.0}%)",
        p["atTarget"],
        p["total"],
        p["share"].as_f64().unwrap_or(0.0) * 100.0
    )
}

fn initiatives_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "items")
        .iter()
        .map(|i| {
            let d = &i["initiative"];
            vec![
                d["identifier"].as_str().unwrap_or_default().to_owned(),
                d["scorecard"].as_str().unwrap_or_default().to_owned(),
                d["targetLevel"].as_str().unwrap_or_default().to_owned(),
                d["deadline"].as_str().unwrap_or("-").to_owned(),
                share(&i["progress"]),
            ]
        })
        .collect();
    table(
        &["IDENTIFIER", "SCORECARD", "TARGET", "DEADLINE", "AT TARGET"],
        &rows,
    )
}

fn initiative_text(v: &Value) -> String {
    let d = &v["initiative"];
    let p = &v["progress"];
    let mut out = format!(
        "{} ({}): {} at {} or above by {}\n  all: {}\n",
        d["title"].as_str().unwrap_or_default(),
        d["identifier"].as_str().unwrap_or_default(),
        d["scorecard"].as_str().unwrap_or_default(),
        d["targetLevel"].as_str().unwrap_or_default(),
        d["deadline"].as_str().unwrap_or("no deadline"),
        share(p)
    );
    for (team, t) in p["byTeam"].as_object().into_iter().flatten() {
        let name = if team.is_empty() { "(no team)" } else { team };
        out.push_str(&format!("  {name}: {}\n", share(t)));
    }
    out
}

fn automations_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "items")
        .iter()
        .map(|a| {
            let effect = if a["effect"]["workflow"].is_object() {
                format!(
                    "workflow {}",
                    a["effect"]["workflow"]["name"].as_str().unwrap_or_default()
                )
            } else {
                format!(
                    "{} entity",
                    a["effect"]["entity"]["mode"].as_str().unwrap_or_default()
                )
            };
            vec![
                a["identifier"].as_str().unwrap_or_default().to_owned(),
                a["trigger"]["event"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                effect,
                if a["enabled"] == false { "no" } else { "yes" }.to_owned(),
            ]
        })
        .collect();
    table(&["IDENTIFIER", "EVENT", "EFFECT", "ENABLED"], &rows)
}

fn firings_text(v: &Value) -> String {
    let rows: Vec<Vec<String>> = items(v, "items")
        .iter()
        .map(|f| {
            let result = &f["detail"]["result"];
            let what = result["error"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| result["run"].as_str().map(|r| format!("run {r}")))
                .or_else(|| {
                    result["entity"]
                        .as_str()
                        .map(|e| format!("{e} {}", result["outcome"].as_str().unwrap_or_default()))
                })
                .unwrap_or_default();
            vec![
                f["at"].as_str().unwrap_or_default().to_owned(),
                f["automation"].as_str().unwrap_or_default().to_owned(),
                f["event"].as_str().unwrap_or_default().to_owned(),
                f["status"].as_str().unwrap_or_default().to_owned(),
                what,
            ]
        })
        .collect();
    table(&["AT", "AUTOMATION", "EVENT", "STATUS", "RESULT"], &rows)
}

/// A definition as indented JSON (what `get` prints for people too: definitions are data).
fn pretty(v: &Value) -> String {
    format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_text_names_each_change_and_its_rules() {
        let v = json!({
            "changes": [
                {"scorecard": "prod", "entity": "service/checkout", "from": "Gold", "to": "Silver",
                 "direction": "drop",
                 "newlyFailing": [{"identifier": "on-call", "title": "Has on-call", "level": "Gold"}],
                 "newlyPassing": []},
                {"scorecard": "prod", "entity": "service/new", "from": null, "to": "Bronze",
                 "direction": "enter",
                 "newlyFailing": [{"identifier": "on-call", "title": "Has on-call", "level": "Gold"}],
                 "newlyPassing": []},
                {"scorecard": "prod", "entity": "service/old", "from": "Gold", "to": null,
                 "direction": "leave", "newlyFailing": [], "newlyPassing": []},
            ],
            "drops": 1, "rises": 0, "enters": 1, "leaves": 1,
        });
        assert_eq!(
            check_text(&v),
            "▼ service/checkout drops Gold → Silver on prod\n    now failing: on-call (Has on-call, Gold)\n\
             + service/new enters at Bronze on prod\n    failing: on-call (Has on-call, Gold)\n\
             - service/old leaves (was Gold) on prod\n\
             1 drop, 0 rises, 1 entering, 1 leaving\n"
        );
        assert_eq!(
            check_text(&json!({"changes": [], "drops": 0, "rises": 0})),
            "0 drops, 0 rises\n"
        );
    }

    #[test]
    fn an_initiative_shows_its_share_per_team() {
        let v = json!({
            "initiative": {"identifier": "q4", "title": "Q4", "scorecard": "prod", "targetLevel": "Silver", "deadline": "2026-12-31"},
            "progress": {"total": 4, "atTarget": 1, "share": 0.25,
                         "byTeam": {"payments": {"total": 2, "atTarget": 1, "share": 0.5}}},
        });
        assert_eq!(
            initiative_text(&v),
            "Q4 (q4): prod at Silver or above by 2026-12-31\n  all: 1/4 (25%)\n  payments: 1/2 (50%)\n"
        );
    }
}
