//! The catalog query language: which entities a search, a scorecard filter, an aggregation or
//! an action condition is about, plus sorting, full-text search and facets.
//!
//! A query is written in one of two forms that compile to the same [`Query`]:
//!
//! - the **JSON rule form**, for the API, the web app's query builder and definition files:
//!   `{"combinator": "and", "rules": [{"property": "language", "operator": "=", "value": "rust"}]}`;
//! - the **text form**, for people: `blueprint = service and language = rust`.
//!
//! [`Query::to_json`] writes the canonical JSON form; `Display` writes the text form.
//!
//! # Rules
//!
//! A rule tests a FIELD: anything [`Indexed::field`] reads (`identifier`, `$team`,
//! `language`, `properties.x`, a relation's name), or a path through relations
//! (`owner.team`, `service.owner.title`) where every segment but the last names a relation
//! followed to its target. A path through a `many` relation gives the values of all targets.
//! When nothing can be reached, the field is missing.
//!
//! | operator | value | matches when |
//! |---|---|---|
//! | `=` / `!=` | any | a value equals it (`1` equals `1.0`; a list field equals a non-list value it contains; `= null` also matches a missing field) / no value does |
//! | `<` `<=` `>` `>=` | number or string | a number compares so with a number, or a string (dates too) lexically with a string; never when missing |
//! | `in` / `notIn` | list | a value equals an item / none does |
//! | `contains` | any | a string field contains it as a substring, or a list field has it as an item |
//! | `containsAny` | list | a list field shares an item with it, or a string field contains one of its strings |
//! | `beginsWith` / `endsWith` | string | a string field (or a string item of a list field) starts / ends with it |
//! | `isEmpty` / `isNotEmpty` | none | every value is missing, null, `""`, `[]` or `{}` / some value is not |
//! | `between` | `[low, high]` | `low <= value <= high`, both numbers or both strings |
//! | `relatedTo` | `BLUEPRINT/IDENTIFIER` | the entity is within `depth` hops of that entity |
//!
//! Comparisons are case-sensitive. Positive operators match when *any* value matches; `!=`,
//! `notIn` and `isEmpty` match when *no* value matches the positive one.
//!
//! `relatedTo` takes `direction`: `downstream` (the entities the given one reaches by following
//! its relations outward: what it depends on), `upstream` (the entities that reach it: what
//! depends on it) or `any` (either; the default), and `depth` (hops, 1 to 10, default 1). Its
//! `property`, when given, is the one relation name followed. The given entity itself is never
//! related to itself. The sets are computed once per query by [`Query::prepare`].
//!
//! [`field_value`] gives what a rule reads on an entity, to show it beside the outcome;
//! [`Query::fields`], [`Query::relation_depth`] and [`Query::uses_related_to`] say what a query
//! depends on, so a caller knows which changes can change its matches.
//!
//! # The text form
//!
//! ```text
//! query     = [ or ]                      (blank text matches everything)
//! or        = and { "or" and }
//! and       = unary { "and" unary }       (`and` binds tighter than `or`)
//! unary     = "not" "(" or ")" | "(" [ or ] ")" | rule
//! rule      = field ( "isEmpty" | "isNotEmpty" )
//!           | field "between" value "and" value
//!           | field op value
//!           | [ field ] "relatedTo" target { direction | "depth" integer }
//! op        = "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "notIn"
//!           | "contains" | "containsAny" | "beginsWith" | "endsWith"
//! direction = "upstream" | "downstream" | "any"
//! target    = BLUEPRINT "/" IDENTIFIER    (a word or a quoted string)
//! field     = word | string
//! value     = word | string | "[" [ value { "," value } [ "," ] ] "]" | JSON object
//! ```
//!
//! A word is a run of characters other than spaces and `( ) [ ] , " ' = ! < > { }`. A word
//! value is a number if it is a JSON number, `true`, `false` or `null` as in JSON, and a string
//! otherwise (after `beginsWith`/`endsWith`, always a string). Strings are double-quoted with
//! `\"`, `\\`, `\n` and `\t` escapes. `and`, `or` and `not` are case-insensitive; `not` is a
//! keyword only before `(`; an `and` or `or` meant as a field or value must be quoted, as must
//! a field named `relatedTo`. Operators are case-sensitive. Examples:
//!
//! ```text
//! blueprint = service and language = "rust" and owner.team = payments
//! tier in [1, 2] or (lifecycle != deprecated and not (owner isEmpty))
//! cost between 10 and 20
//! blueprint = service and relatedTo team/payments upstream depth 2
//! dependsOn relatedTo service/checkout downstream depth 3
//! ```
//!
//! # Limits
//!
//! Groups nest at most 32 deep, a query holds at most 1000 rules and a field path at most 16
//! names, so neither form can make evaluation recurse deeply or run long. A path through
//! relations visits at most 10,000 entities per entity tested; past that, the rest count as
//! unreachable.
//!
//! No I/O and no interior mutability: a [`Query`] is compiled once and read by any number of
//! threads; a [`Prepared`] query borrows it for one request.

mod ast;
mod error;
mod eval;
mod json;
mod scan;
mod search;
mod sort;
mod text;

use std::fmt;

use serde_json::Value;

pub use error::QueryError;
pub use search::{count_facet, facet_values, TextSearch};
pub use sort::{compare, compare_keys, compare_to_key, is_sort_key, sort_key, Sort};

pub(crate) use eval::{read, Items, V};
pub(crate) use scan::{count_facets, RowKeys};
pub(crate) use sort::by_field;

use crate::model::{Indexed, Lookup};
use crate::table::{Slot, Table};
use ast::{normalize_root, Combinator, Node, Op};

/// A compiled query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Normalized: always a group at the top (see [`ast::normalize_root`]).
    root: Node,
}

impl Query {
    /// The query that matches every entity.
    pub fn all() -> Query {
        Query {
            root: Node::Group(Combinator::And, Vec::new()),
        }
    }

    fn new(root: Node) -> Query {
        Query {
            root: normalize_root(root),
        }
    }

    /// Reads the JSON rule form: a group `{"combinator", "rules"}` or a single rule.
    pub fn from_json(v: &Value) -> Result<Query, QueryError> {
        json::compile(v).map(Query::new)
    }

    /// Reads the text form; blank text matches everything.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        text::parse(text).map(Query::new)
    }

    /// Reads either form: a string is the text form, an object the JSON rule form.
    pub fn from_value(v: &Value) -> Result<Query, QueryError> {
        match v {
            Value::String(s) => Query::parse(s),
            Value::Object(_) => Query::from_json(v),
            other => Err(QueryError::json(
                "",
                format!(
                    "a query is a string (the text form) or an object (the JSON rule form), not {}",
                    ast::kind(other)
                ),
            )),
        }
    }

    /// Entities matching both queries.
    #[must_use]
    pub fn and(self, other: Query) -> Query {
        Query::new(Node::Group(Combinator::And, vec![self.root, other.root]))
    }

    /// Whether this query matches every entity without testing anything.
    pub fn is_all(&self) -> bool {
        matches!(&self.root, Node::Group(Combinator::And, rules) if rules.is_empty())
    }

    /// The canonical JSON rule form; [`Query::from_json`] reads it back to an equal query.
    pub fn to_json(&self) -> Value {
        json::write(&self.root)
    }

    /// The blueprint this query is limited to, when its top level is an `and` holding
    /// `blueprint = X` (or is that rule), so a caller may scan that blueprint's entities only.
    pub fn blueprint(&self) -> Option<&str> {
        let Node::Group(Combinator::And, rules) = &self.root else {
            return None;
        };
        rules.iter().find_map(|r| match r {
            Node::Test(t) if matches!(t.field.as_str(), "blueprint" | "$blueprint") => {
                match &t.op {
                    Op::Eq(Value::String(s)) => Some(s.as_str()),
                    _ => None,
                }
            }
            _ => None,
        })
    }

    /// The fields the rules test, each once, in the order written; `relatedTo` rules test none.
    pub fn fields(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        self.root.each(&mut |n| {
            if let Node::Test(t) = n {
                if !out.contains(&t.field.as_str()) {
                    out.push(&t.field);
                }
            }
        });
        out
    }

    /// The longest chain of relations a rule's field path may follow: 0 for plain fields, 1 for
    /// `owner.team`, 2 for `service.owner.title`. An entity's match can change when an entity
    /// this many hops away changes. `relatedTo` rules are not counted (see
    /// [`Query::uses_related_to`]).
    pub fn relation_depth(&self) -> usize {
        let mut depth = 0;
        self.root.each(&mut |n| {
            if let Node::Test(t) = n {
                depth = depth.max(eval::hops(&t.field));
            }
        });
        depth
    }

    /// Whether a rule is `relatedTo`, whose match can change with any relation of the catalog
    /// within its depth.
    pub fn uses_related_to(&self) -> bool {
        let mut found = false;
        self.root
            .each(&mut |n| found |= matches!(n, Node::RelatedTo(_)));
        found
    }

    /// Resolves what needs the whole catalog (the entities of each `relatedTo` rule) once, for
    /// testing many entities against the same catalog.
    pub fn prepare<'q>(&'q self, lookup: &dyn Lookup) -> Prepared<'q> {
        Prepared {
            root: eval::prepare(&self.root, lookup),
        }
    }
}

/// The text form.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::write_root(&self.root, f)
    }
}

/// What a rule testing `field` reads on `e`, as JSON, for showing it beside the rule's
/// outcome: a plain field's value, or null when the entity has none; for a path through
/// relations (`owner.tier`), the list of the values found on the entities reached, in relation
/// order (empty when none is reached or none has the field).
pub fn field_value(e: &Indexed, field: &str, lookup: &dyn Lookup) -> Value {
    eval::value_of(e, field, lookup)
}

/// A query with its `relatedTo` sets resolved against one state of the catalog.
#[derive(Debug)]
pub struct Prepared<'q> {
    root: eval::Step<'q>,
}

impl Prepared<'_> {
    /// Whether `e` matches. `lookup` must be the catalog the query was prepared with.
    pub fn matches(&self, e: &Indexed, lookup: &dyn Lookup) -> bool {
        eval::matches(&self.root, e, lookup)
    }

    /// The slots of `cands` (in their order) whose entities in `table` match; the same as
    /// testing each with [`Prepared::matches`], with rules on plain fields read from columns.
    pub(crate) fn filter(&self, table: &Table, cands: Vec<Slot>, lookup: &dyn Lookup) -> Vec<Slot> {
        scan::filter(&self.root, table, cands, lookup)
    }
}
