//! Initiatives: every entity of a scorecard at one level by a date ("everything
//! production-ready by Q4"), and how far along the entities and their teams are.
//!
//! Pure: the deadline is read here and compared with the clock by the caller.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{CompiledScorecard, Evaluation, Scorecard, NO_TEAM};
use crate::model::Format;
use crate::schema::{check_format, check_identifier, problem, suggestion, Problem};

/// An initiative: the entities of a scorecard are asked to reach `target_level`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Initiative {
    pub identifier: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The scorecard's identifier.
    pub scorecard: String,
    /// The title of one of the scorecard's levels.
    pub target_level: String,
    /// A date (`2026-12-31`) or an RFC 3339 time; see [`Initiative::deadline_time`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// Team names or user emails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
}

impl Initiative {
    /// The moment the deadline passes: the time written, or the end of the date written (the
    /// next midnight, UTC). `None` without a deadline or when it does not parse.
    pub fn deadline_time(&self) -> Option<DateTime<Utc>> {
        parse_deadline(self.deadline.as_deref()?).ok()
    }
}

fn parse_deadline(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.checked_add_days(Days::new(1)))
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            format!("\"{s}\" is not a date (2026-12-31) or an RFC 3339 time (2026-12-31T17:00:00Z)")
        })
}

/// Every problem of an initiative, each with its JSON path; `scorecard` is the scorecard it
/// names, `None` when there is none of that identifier.
pub fn check_initiative(i: &Initiative, scorecard: Option<&Scorecard>) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Err(e) = check_identifier(&i.identifier) {
        out.push(problem("identifier", e));
    }
    match scorecard {
        None => out.push(problem(
            "scorecard",
            format!("there is no scorecard `{}`", i.scorecard),
        )),
        Some(sc) if !sc.levels.iter().any(|l| l.title == i.target_level) => {
            let titles = || sc.levels.iter().map(|l| l.title.as_str());
            let hint = match suggestion(&i.target_level, titles()) {
                hint if hint.is_empty() => format!(
                    "; its levels are {}",
                    titles()
                        .map(|t| format!("`{t}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                hint => hint,
            };
            out.push(problem(
                "targetLevel",
                format!(
                    "`{}` is not a level of scorecard `{}`{hint}",
                    i.target_level, sc.identifier
                ),
            ));
        }
        Some(_) => {}
    }
    if let Some(deadline) = &i.deadline {
        if let Err(e) = parse_deadline(deadline) {
            out.push(problem("deadline", e));
        }
    }
    for (n, owner) in i.owners.iter().enumerate() {
        let checked = if owner.contains('@') {
            check_format(Format::Email, owner)
        } else {
            check_identifier(owner).map_err(|e| format!("not a team name or an email: {e}"))
        };
        if let Err(e) = checked {
            out.push(problem(format!("owners[{n}]"), e));
        }
    }
    out
}

/// How far the entities of an initiative's scorecard are.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Entities evaluated.
    pub total: usize,
    /// Entities at the target level or above.
    pub at_target: usize,
    /// `at_target / total`, 0 to 1; 1 when there are no entities.
    pub share: f64,
    /// Per team; an entity counts for each of its teams, one with no team under `""`.
    pub by_team: BTreeMap<String, TeamProgress>,
}

/// One team's part of a [`Progress`].
#[derive(Debug, Clone, PartialEq)]
pub struct TeamProgress {
    pub total: usize,
    pub at_target: usize,
    /// `at_target / total`, 0 to 1.
    pub share: f64,
}

fn share(at_target: usize, total: usize) -> f64 {
    if total == 0 {
        1.0
    } else {
        at_target as f64 / total as f64
    }
}

/// How many entities are at level `target` (an index into `sc`'s levels) or above, overall and
/// per team: `items` are each entity's evaluation with the entity's teams.
pub fn progress<'a>(
    sc: &CompiledScorecard,
    target: usize,
    items: impl IntoIterator<Item = (&'a Evaluation, &'a [String])>,
) -> Progress {
    // A target past the top is read as the top, which is what reaching it would mean.
    let target = target.min(sc.top_level());
    let mut total = 0;
    let mut at_target = 0;
    let mut by_team: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let no_team = [NO_TEAM.to_string()];
    for (ev, teams) in items {
        let reached = usize::from(ev.level >= target);
        total += 1;
        at_target += reached;
        let teams = if teams.is_empty() {
            &no_team[..]
        } else {
            teams
        };
        for team in teams {
            let t = by_team.entry(team.clone()).or_default();
            t.0 += 1;
            t.1 += reached;
        }
    }
    Progress {
        total,
        at_target,
        share: share(at_target, total),
        by_team: by_team
            .into_iter()
            .map(|(team, (total, at_target))| {
                (
                    team,
                    TeamProgress {
                        total,
                        at_target,
                        share: share(at_target, total),
                    },
                )
            })
            .collect(),
    }
}
