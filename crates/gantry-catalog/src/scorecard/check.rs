//! What makes a scorecard definition sound.

use std::collections::HashMap;

use super::{CompiledRule, ScoreRule, Scorecard};
use crate::model::Lookup;
use crate::query::Query;
use crate::schema::{check_identifier, problem, query_problem, suggestion, Problem};

const MAX_TITLE_CHARS: usize = 200;

/// Every problem of a scorecard definition, each with its JSON path (`rules[1].level`,
/// `rules[0].where`, `filter`); `lookup` finds the blueprint it rates.
///
/// Unknown fields are refused earlier, when the definition is read into a [`Scorecard`].
pub fn check_scorecard(s: &Scorecard, lookup: &dyn Lookup) -> Vec<Problem> {
    let mut out = Vec::new();
    check_head(s, &mut out);
    if !s.blueprint.is_empty() && lookup.blueprint(&s.blueprint).is_none() {
        out.push(problem(
            "blueprint",
            format!("there is no blueprint `{}`", s.blueprint),
        ));
    }
    check_body(s, &mut out);
    out
}

/// What compiling found: the filter and each rule, `None` where a problem was reported.
pub(super) struct Parts {
    pub(super) filter: Option<Query>,
    pub(super) rules: Vec<Option<CompiledRule>>,
}

/// The problems that do not need the catalog, and what compiled.
pub(super) fn check_structure(s: &Scorecard, out: &mut Vec<Problem>) -> Parts {
    check_head(s, out);
    check_body(s, out)
}

fn check_head(s: &Scorecard, out: &mut Vec<Problem>) {
    if let Err(e) = check_identifier(&s.identifier) {
        out.push(problem("identifier", e));
    }
    check_title(&s.title, "title", out);
    if s.blueprint.is_empty() {
        out.push(problem(
            "blueprint",
            "name the blueprint of the entities this scorecard rates",
        ));
    }
}

fn check_title(title: &str, path: &str, out: &mut Vec<Problem>) {
    if title.chars().count() > MAX_TITLE_CHARS {
        out.push(problem(
            path,
            format!("the title is longer than {MAX_TITLE_CHARS} characters"),
        ));
    }
}

fn check_body(s: &Scorecard, out: &mut Vec<Problem>) -> Parts {
    let filter = s.filter.as_ref().and_then(|f| {
        Query::from_value(f)
            .map_err(|e| out.push(query_problem("filter", &e)))
            .ok()
    });
    check_levels(s, out);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let rules = s
        .rules
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let path = format!("rules[{i}]");
            if let Err(e) = check_identifier(&rule.identifier) {
                out.push(problem(format!("{path}.identifier"), e));
            } else if let Some(first) = seen.get(rule.identifier.as_str()) {
                out.push(problem(
                    format!("{path}.identifier"),
                    format!(
                        "`{}` is the identifier of rules[{first}] too; rule identifiers are unique",
                        rule.identifier
                    ),
                ));
            } else {
                seen.insert(&rule.identifier, i);
            }
            check_title(&rule.title, &format!("{path}.title"), out);
            let level = rule_level(s, rule, &path, out);
            let weight = rule.weight();
            let weight_ok = weight.is_finite() && weight > 0.0;
            if !weight_ok {
                out.push(problem(
                    format!("{path}.weight"),
                    format!("`weight` is a number above 0, found {weight}"),
                ));
            }
            let query = rule_query(rule, &path, out);
            Some(CompiledRule {
                query: query?,
                level: level?,
                weight: weight_ok.then_some(weight)?,
            })
        })
        .collect();
    Parts { filter, rules }
}

fn check_levels(s: &Scorecard, out: &mut Vec<Problem>) {
    if s.levels.is_empty() {
        out.push(problem(
            "levels",
            "a scorecard has at least one level: the floor every entity starts at, then the \
             levels its rules raise entities to",
        ));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, level) in s.levels.iter().enumerate() {
        // A level written as a plain string is its title.
        let path = if level.color.is_some() {
            format!("levels[{i}].title")
        } else {
            format!("levels[{i}]")
        };
        if level.title.trim().is_empty() {
            out.push(problem(path, "a level needs a title"));
        } else if let Some(first) = seen.get(level.title.as_str()) {
            out.push(problem(
                path,
                format!(
                    "`{}` is the title of levels[{first}] too; level titles are unique",
                    level.title
                ),
            ));
        } else {
            seen.insert(&level.title, i);
        }
    }
}

/// The index of the rule's level, which must be declared and above the floor.
fn rule_level(
    s: &Scorecard,
    rule: &ScoreRule,
    path: &str,
    out: &mut Vec<Problem>,
) -> Option<usize> {
    let titles = || s.levels.iter().map(|l| l.title.as_str());
    match s.levels.iter().position(|l| l.title == rule.level) {
        None => {
            out.push(problem(
                format!("{path}.level"),
                format!(
                    "`{}` is not a level of this scorecard{}",
                    rule.level,
                    match suggestion(&rule.level, titles()) {
                        hint if hint.is_empty() => format!(
                            "; the levels are {}",
                            titles()
                                .map(|t| format!("`{t}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        hint => hint,
                    }
                ),
            ));
            None
        }
        Some(0) => {
            let above = match s.levels.get(1) {
                Some(l) => format!("put the rule at a level above it, such as `{}`", l.title),
                None => "declare a level above it for the rule".to_string(),
            };
            out.push(problem(
                format!("{path}.level"),
                format!(
                    "`{}` is the first level, the floor every entity starts at: it holds no \
                     rules; {above}",
                    rule.level
                ),
            ));
            None
        }
        Some(i) => Some(i),
    }
}

/// The rule's query, from exactly one of `query` and `where`.
fn rule_query(rule: &ScoreRule, path: &str, out: &mut Vec<Problem>) -> Option<Query> {
    let compiled = match (&rule.query, &rule.where_) {
        (Some(_), Some(_)) => {
            out.push(problem(
                path,
                "give either `query` (the JSON rule form) or `where` (the text form), not both",
            ));
            return None;
        }
        (None, None) => {
            out.push(problem(
                path,
                "say what the rule tests: a `query` (the JSON rule form) or `where` (the text \
                 form), such as `where: owner isNotEmpty`",
            ));
            return None;
        }
        (Some(q), None) => Query::from_value(q).map_err(|e| (format!("{path}.query"), e)),
        (None, Some(text)) => Query::parse(text).map_err(|e| (format!("{path}.where"), e)),
    };
    compiled
        .map_err(|(path, e)| out.push(query_problem(&path, &e)))
        .ok()
}
