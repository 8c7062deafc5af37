//! Scorecards: how far each entity of a blueprint is along a ladder of levels (Bronze, Silver,
//! Gold), from rules written in the catalog query language; and initiatives, which ask every
//! entity of a scorecard to reach one level by a date.
//!
//! A scorecard is a definition like a blueprint ([`Scorecard`], `kind: Scorecard` in definition
//! files). Using one goes through the pure steps of this module, in order:
//!
//! 1. [`check_scorecard`]: every problem of the definition, with its JSON path;
//! 2. [`CompiledScorecard::compile`]: its queries compiled once (refused with the same
//!    problems, minus those that need the catalog);
//! 3. [`CompiledScorecard::prepare`]: its `relatedTo` sets resolved against one state of the
//!    catalog, like [`Query::prepare`];
//! 4. [`PreparedScorecard::evaluate`]: one entity's level, score and each rule's outcome with
//!    the value it looked at;
//! 5. [`summarize`], [`initiative::progress`], [`compare_levels`] and
//!    [`CompiledScorecard::next_to_fix`] over evaluations.
//!
//! # Levels
//!
//! The first level is the floor: every entity in scope starts there, and it holds no rules. An
//! entity reaches level N only if every rule of levels 1 to N passes, so a failing Bronze rule
//! keeps an entity at the floor even when all its Silver and Gold rules pass. A level without
//! rules is passed through.
//!
//! Architecture invariant: a [`CompiledScorecard`] is sound (its rules name declared levels
//! above the floor, its queries compile), so evaluation never fails; an entity is only ever out
//! of scope (`None`).
//!
//! No I/O and no clock: the catalog is reached through [`Lookup`], deadlines are compared by
//! the caller. Plain functions over data, safe from any thread.

mod check;
pub mod initiative;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::model::{Indexed, Lookup};
use crate::query::{field_value, Prepared, Query};
use crate::schema::Problem;

pub use check::check_scorecard;
pub use initiative::{check_initiative, progress, Initiative, Progress, TeamProgress};

/// A scorecard: rules over the entities of one blueprint, each rule raising them one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scorecard {
    pub identifier: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The blueprint of the entities rated.
    pub blueprint: String,
    /// A catalog query (text form or JSON rule form) the entities rated must match; the
    /// others are out of scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Value>,
    /// From the floor up; Bronze, Silver, Gold when left out.
    #[serde(default = "default_levels")]
    pub levels: Vec<Level>,
    #[serde(default)]
    pub rules: Vec<ScoreRule>,
}

fn default_levels() -> Vec<Level> {
    ["Bronze", "Silver", "Gold"]
        .into_iter()
        .map(Level::named)
        .collect()
}

/// One level of a scorecard: written as its title, or `{title, color}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    pub title: String,
    /// A color name or `#rrggbb` for the web app; left to the app to interpret.
    pub color: Option<String>,
}

impl Level {
    /// A level with no color.
    pub fn named(title: impl Into<String>) -> Level {
        Level {
            title: title.into(),
            color: None,
        }
    }
}

/// The object form of a level.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LevelObject {
    title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    color: Option<String>,
}

/// A plain string when there is no color, so a definition reads back as written.
impl Serialize for Level {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.color {
            None => s.serialize_str(&self.title),
            Some(color) => LevelObject {
                title: self.title.clone(),
                color: Some(color.clone()),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Level {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LevelVisitor;

        impl<'de> Visitor<'de> for LevelVisitor {
            type Value = Level;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a level's title, or {title, color}")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Level, E> {
                Ok(Level::named(s))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Level, A::Error> {
                // Through serde's own derive, so an unknown key is reported at its path.
                let o = LevelObject::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Level {
                    title: o.title,
                    color: o.color,
                })
            }
        }

        d.deserialize_any(LevelVisitor)
    }
}

/// One rule of a scorecard: a query the entity must match to pass, at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScoreRule {
    pub identifier: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The title of the level this rule belongs to (never the first level).
    pub level: String,
    /// The rule's share of the score; 1 when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<f64>,
    /// The JSON rule form (or the text form as a string); exactly one of `query` and `where`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Value>,
    /// The text form.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
}

impl ScoreRule {
    /// The rule's weight: the one written, else 1.
    pub fn weight(&self) -> f64 {
        self.weight.unwrap_or(1.0)
    }
}

/// A rule ready to test.
#[derive(Debug, Clone)]
struct CompiledRule {
    query: Query,
    /// Its level's index, at least 1.
    level: usize,
    weight: f64,
}

/// A sound scorecard with its queries compiled, read by any number of threads.
#[derive(Debug, Clone)]
pub struct CompiledScorecard {
    scorecard: Scorecard,
    /// [`Query::all`] when the scorecard has no filter.
    filter: Query,
    /// In the order of `scorecard.rules`.
    rules: Vec<CompiledRule>,
}

impl CompiledScorecard {
    /// Compiles a scorecard; refused with every problem [`check_scorecard`] finds that does not
    /// need the catalog (whether its blueprint exists is for the caller to check).
    pub fn compile(s: Scorecard) -> Result<CompiledScorecard, Vec<Problem>> {
        let mut problems = Vec::new();
        let parts = check::check_structure(&s, &mut problems);
        // A rule is left out only with a problem saying why.
        let rules: Option<Vec<CompiledRule>> = parts.rules.into_iter().collect();
        match rules {
            Some(rules) if problems.is_empty() => Ok(CompiledScorecard {
                filter: parts.filter.unwrap_or_else(Query::all),
                scorecard: s,
                rules,
            }),
            _ => Err(problems),
        }
    }

    pub fn scorecard(&self) -> &Scorecard {
        &self.scorecard
    }

    /// The level titles, from the floor up.
    pub fn levels(&self) -> Vec<&str> {
        self.scorecard
            .levels
            .iter()
            .map(|l| l.title.as_str())
            .collect()
    }

    /// The title of level `i`; `None` past the top.
    pub fn level_name(&self, i: usize) -> Option<&str> {
        self.scorecard.levels.get(i).map(|l| l.title.as_str())
    }

    /// The index of the level titled `title`.
    pub fn level_index(&self, title: &str) -> Option<usize> {
        self.scorecard.levels.iter().position(|l| l.title == title)
    }

    /// The index of the top level.
    pub fn top_level(&self) -> usize {
        self.scorecard.levels.len().saturating_sub(1)
    }

    /// The longest chain of relations the filter or any rule follows (see
    /// [`Query::relation_depth`]): an entity's evaluation can change when an entity this many
    /// hops away changes.
    pub fn relation_depth(&self) -> usize {
        self.queries().map(Query::relation_depth).max().unwrap_or(0)
    }

    /// Whether the filter or a rule uses `relatedTo`, so any relation change within its depth
    /// may change an evaluation.
    pub fn uses_related_to(&self) -> bool {
        self.queries().any(Query::uses_related_to)
    }

    fn queries(&self) -> impl Iterator<Item = &Query> {
        std::iter::once(&self.filter).chain(self.rules.iter().map(|r| &r.query))
    }

    /// Resolves every query's `relatedTo` sets once against `lookup`, for evaluating many
    /// entities of the same catalog state.
    pub fn prepare<'a>(&'a self, lookup: &dyn Lookup) -> PreparedScorecard<'a> {
        PreparedScorecard {
            compiled: self,
            filter: self.filter.prepare(lookup),
            rules: self
                .rules
                .iter()
                .map(|r| PreparedRule {
                    query: r.query.prepare(lookup),
                    fields: r.query.fields(),
                })
                .collect(),
        }
    }

    /// The rules to fix first: the failing rules of the level above `ev.level` (and, should any
    /// fail, of the levels below it). Empty at the top level.
    pub fn next_to_fix(&self, ev: &Evaluation) -> Vec<usize> {
        if ev.level >= self.top_level() {
            return Vec::new();
        }
        self.rules
            .iter()
            .enumerate()
            .filter(|(i, r)| r.level <= ev.level + 1 && ev.rules.get(*i).is_some_and(|o| !o.passed))
            .map(|(i, _)| i)
            .collect()
    }

    /// The level an entity reaches with these rule outcomes (in the order of the rules).
    fn level_of(&self, passed: &[bool]) -> usize {
        let mut level = 0;
        for n in 1..self.scorecard.levels.len() {
            let all_pass = self
                .rules
                .iter()
                .zip(passed)
                .filter(|(r, _)| r.level == n)
                .all(|(_, p)| *p);
            if !all_pass {
                break;
            }
            level = n;
        }
        level
    }

    /// The weighted share of passing rules, 0 to 100; 100 when there are no rules.
    fn score_of(&self, passed: &[bool]) -> f64 {
        let total: f64 = self.rules.iter().map(|r| r.weight).sum();
        if self.rules.is_empty() || total <= 0.0 {
            return 100.0;
        }
        let got: f64 = self
            .rules
            .iter()
            .zip(passed)
            .filter(|(_, p)| **p)
            .map(|(r, _)| r.weight)
            .sum();
        got / total * 100.0
    }
}

#[derive(Debug)]
struct PreparedRule<'a> {
    query: Prepared<'a>,
    /// The fields the rule tests, for the value it shows; none for a rule of `relatedTo`
    /// only, whose value is its outcome.
    fields: Vec<&'a str>,
}

/// A scorecard with its queries prepared against one state of the catalog.
#[derive(Debug)]
pub struct PreparedScorecard<'a> {
    compiled: &'a CompiledScorecard,
    filter: Prepared<'a>,
    rules: Vec<PreparedRule<'a>>,
}

/// One entity's place on a scorecard.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// An index into the scorecard's levels; 0 is the floor.
    pub level: usize,
    /// The weighted share of passing rules, 0 to 100; 100 when there are no rules.
    pub score: f64,
    /// In the order of the scorecard's rules.
    pub rules: Vec<RuleOutcome>,
}

/// One rule tested on one entity.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleOutcome {
    pub passed: bool,
    /// What the rule looked at: the value of the one field it tests (see
    /// [`crate::query::field_value`]), an object of field → value when it tests several, or
    /// whether it passed when it tests no field (a rule of `relatedTo` only).
    pub value: Value,
}

impl PreparedScorecard<'_> {
    pub fn compiled(&self) -> &CompiledScorecard {
        self.compiled
    }

    /// `e`'s level, score and rule outcomes; `None` when `e` is not of the scorecard's blueprint
    /// or does not match its filter. `lookup` must be the catalog the scorecard was prepared
    /// with.
    pub fn evaluate(&self, e: &Indexed, lookup: &dyn Lookup) -> Option<Evaluation> {
        let mut ev = self.passes(e, lookup)?;
        for (r, o) in self.rules.iter().zip(ev.rules.iter_mut()) {
            o.value = rule_value(&r.fields, o.passed, e, lookup);
        }
        Some(ev)
    }

    /// What [`PreparedScorecard::evaluate`] gives without the values seen (every `value` is
    /// `null`): what keeping levels current needs, at a fraction of the cost. The values are
    /// [`CompiledScorecard::values`] of the entity as it is.
    pub fn passes(&self, e: &Indexed, lookup: &dyn Lookup) -> Option<Evaluation> {
        if e.record.entity.blueprint != self.compiled.scorecard.blueprint
            || !self.filter.matches(e, lookup)
        {
            return None;
        }
        let passed: Vec<bool> = self
            .rules
            .iter()
            .map(|r| r.query.matches(e, lookup))
            .collect();
        Some(Evaluation {
            level: self.compiled.level_of(&passed),
            score: self.compiled.score_of(&passed),
            rules: passed
                .into_iter()
                .map(|passed| RuleOutcome {
                    passed,
                    value: Value::Null,
                })
                .collect(),
        })
    }
}

/// The value a rule shows: the one field it tests, an object of the fields it tests, or its
/// outcome for a rule of `relatedTo` only.
fn rule_value(fields: &[&str], passed: bool, e: &Indexed, lookup: &dyn Lookup) -> Value {
    match fields {
        [] => Value::Bool(passed),
        [one] => field_value(e, one, lookup),
        many => Value::Object(
            many.iter()
                .map(|f| (f.to_string(), field_value(e, f, lookup)))
                .collect(),
        ),
    }
}

impl CompiledScorecard {
    /// The value each rule sees in `e` as it is, in rule order, given the outcomes of an
    /// evaluation of it (`passes`).
    pub fn values(&self, ev: &Evaluation, e: &Indexed, lookup: &dyn Lookup) -> Vec<Value> {
        self.rules
            .iter()
            .zip(&ev.rules)
            .map(|(r, o)| rule_value(&r.query.fields(), o.passed, e, lookup))
            .collect()
    }
}

/// How the entities of a scorecard stand.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Entities evaluated.
    pub total: usize,
    /// Each level's title with how many entities are at it (not at or above), floor first.
    pub by_level: Vec<(String, usize)>,
    /// Team → how many of its entities are at each level, floor first. An entity counts for
    /// each of its teams; entities with no team count under the team `""`.
    pub by_team: BTreeMap<String, Vec<usize>>,
    /// In the order of the scorecard's rules.
    pub rules: Vec<RuleSummary>,
    /// The mean of the entities' scores; 0 when there are none.
    pub average_score: f64,
}

/// How many entities pass one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSummary {
    pub identifier: String,
    pub passed: usize,
    pub total: usize,
}

/// The team entities with no team count under.
pub const NO_TEAM: &str = "";

/// Counts evaluations of `sc` by level, by team and by rule: `items` are each entity's
/// evaluation with the entity's teams.
pub fn summarize<'a>(
    sc: &CompiledScorecard,
    items: impl IntoIterator<Item = (&'a Evaluation, &'a [String])>,
) -> Summary {
    let levels = sc.scorecard.levels.len();
    let mut summary = Summary {
        total: 0,
        by_level: sc
            .scorecard
            .levels
            .iter()
            .map(|l| (l.title.clone(), 0))
            .collect(),
        by_team: BTreeMap::new(),
        rules: sc
            .scorecard
            .rules
            .iter()
            .map(|r| RuleSummary {
                identifier: r.identifier.clone(),
                passed: 0,
                total: 0,
            })
            .collect(),
        average_score: 0.0,
    };
    let mut score_sum = 0.0;
    for (ev, teams) in items {
        summary.total += 1;
        score_sum += ev.score;
        // An evaluation past the top (of an older version of the scorecard) counts at the top.
        let level = ev.level.min(levels.saturating_sub(1));
        if let Some((_, n)) = summary.by_level.get_mut(level) {
            *n += 1;
        }
        let no_team = [NO_TEAM.to_string()];
        let teams = if teams.is_empty() {
            &no_team[..]
        } else {
            teams
        };
        for team in teams {
            let counts = summary
                .by_team
                .entry(team.clone())
                .or_insert_with(|| vec![0; levels]);
            if let Some(n) = counts.get_mut(level) {
                *n += 1;
            }
        }
        for (rule, outcome) in summary.rules.iter_mut().zip(&ev.rules) {
            rule.total += 1;
            rule.passed += usize::from(outcome.passed);
        }
    }
    if summary.total > 0 {
        summary.average_score = score_sum / summary.total as f64;
    }
    summary
}

/// An entity's level moved between two evaluations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelChange {
    /// `None`: the entity was out of the scorecard's scope before.
    pub from: Option<usize>,
    /// `None`: the entity is out of scope after (deleted, filtered out).
    pub to: Option<usize>,
    /// Rules failing after that did not fail before (all failing rules when the entity was out
    /// of scope before).
    pub rules_newly_failing: Vec<usize>,
    /// Rules passing after that did not pass before (all passing rules when the entity was
    /// out of scope before).
    pub rules_newly_passing: Vec<usize>,
}

impl LevelChange {
    /// Whether the entity went down a level. Leaving the scorecard's scope is not a drop.
    pub fn is_drop(&self) -> bool {
        matches!((self.from, self.to), (Some(from), Some(to)) if to < from)
    }
}

/// What changed between an entity's evaluation `before` and `after` (`None`: out of scope);
/// `None` when its level did not change.
pub fn compare_levels(
    sc: &CompiledScorecard,
    before: Option<&Evaluation>,
    after: Option<&Evaluation>,
) -> Option<LevelChange> {
    let from = before.map(|e| e.level);
    let to = after.map(|e| e.level);
    if from == to {
        return None;
    }
    let outcome =
        |ev: Option<&Evaluation>, i: usize| ev.and_then(|e| e.rules.get(i)).map(|o| o.passed);
    let mut change = LevelChange {
        from,
        to,
        rules_newly_failing: Vec::new(),
        rules_newly_passing: Vec::new(),
    };
    for i in 0..sc.scorecard.rules.len() {
        match (outcome(before, i), outcome(after, i)) {
            (Some(true) | None, Some(false)) => change.rules_newly_failing.push(i),
            (Some(false) | None, Some(true)) => change.rules_newly_passing.push(i),
            _ => {}
        }
    }
    Some(change)
}
