//! Evaluating a compiled query against entities.
//!
//! The hot path reads fields by reference ([`V`] borrows from the entity) and compares them with
//! the operands compiled into the query, so a simple rule allocates nothing per entity. What
//! needs the whole catalog (`relatedTo`) is resolved once, by [`prepare`].

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::{self, Write as _};

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde_json::{Number, Value};

use super::ast::{Combinator, Direction, Node, Op, RelatedTo, Test};
use crate::model::{Indexed, Lookup, Map, RelationValue};

/// How many entities one field path may visit while reading one entity's value, so a path
/// through relations with many targets (`services.team.services`) stays bounded.
const PATH_BUDGET: usize = 10_000;

/// A field's value as the evaluator sees it: borrowed from the entity.
#[derive(Debug, Clone, Copy)]
pub(crate) enum V<'a> {
    Null,
    Bool(bool),
    Num(&'a Number),
    Str(&'a str),
    /// `createdAt` and `updatedAt`: compared with strings as their RFC 3339 text, which is also
    /// how `Indexed::field` shows them.
    Date(DateTime<Utc>),
    Arr(Items<'a>),
    Obj(&'a Map),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Items<'a> {
    Json(&'a [Value]),
    Strs(&'a [String]),
}

impl<'a> Items<'a> {
    fn len(self) -> usize {
        match self {
            Items::Json(v) => v.len(),
            Items::Strs(v) => v.len(),
        }
    }

    pub(crate) fn iter(self) -> ItemsIter<'a> {
        match self {
            Items::Json(v) => ItemsIter::Json(v.iter()),
            Items::Strs(v) => ItemsIter::Strs(v.iter()),
        }
    }
}

pub(crate) enum ItemsIter<'a> {
    Json(std::slice::Iter<'a, Value>),
    Strs(std::slice::Iter<'a, String>),
}

impl<'a> Iterator for ItemsIter<'a> {
    type Item = V<'a>;

    fn next(&mut self) -> Option<V<'a>> {
        match self {
            ItemsIter::Json(it) => it.next().map(V::of),
            ItemsIter::Strs(it) => it.next().map(|s| V::Str(s)),
        }
    }
}

impl<'a> V<'a> {
    pub(crate) fn of(v: &'a Value) -> V<'a> {
        match v {
            Value::Null => V::Null,
            Value::Bool(b) => V::Bool(*b),
            Value::Number(n) => V::Num(n),
            Value::String(s) => V::Str(s),
            Value::Array(a) => V::Arr(Items::Json(a)),
            Value::Object(o) => V::Obj(o),
        }
    }

    pub(crate) fn to_value(self) -> Value {
        match self {
            V::Null => Value::Null,
            V::Bool(b) => Value::Bool(b),
            V::Num(n) => Value::Number(n.clone()),
            V::Str(s) => Value::String(s.to_string()),
            V::Date(d) => Value::String(d.to_rfc3339()),
            V::Arr(items) => Value::Array(items.iter().map(V::to_value).collect()),
            V::Obj(o) => Value::Object(o.clone()),
        }
    }

    fn is_empty(self) -> bool {
        match self {
            V::Null => true,
            V::Str(s) => s.is_empty(),
            V::Arr(items) => items.len() == 0,
            V::Obj(o) => o.is_empty(),
            V::Bool(_) | V::Num(_) | V::Date(_) => false,
        }
    }
}

/// An RFC 3339 timestamp written the way `DateTime::to_rfc3339` writes it, on the stack: a
/// date rule compares every entity's timestamp as text, so this must not allocate.
pub(crate) struct DateText {
    buf: [u8; 48],
    len: usize,
}

impl DateText {
    pub(crate) fn new(d: &DateTime<Utc>) -> DateText {
        let mut out = DateText {
            buf: [0; 48],
            len: 0,
        };
        let year = d.year();
        if !(0..=9999).contains(&year) {
            let _ = out.write_str(&d.to_rfc3339());
            return out;
        }
        let mut sec = d.second();
        let mut nano = d.nanosecond();
        if nano >= 1_000_000_000 {
            // A leap second.
            sec += 1;
            nano -= 1_000_000_000;
        }
        out.digits(year as u32, 4);
        out.byte(b'-');
        out.digits(d.month(), 2);
        out.byte(b'-');
        out.digits(d.day(), 2);
        out.byte(b'T');
        out.digits(d.hour(), 2);
        out.byte(b':');
        out.digits(d.minute(), 2);
        out.byte(b':');
        out.digits(sec, 2);
        if nano != 0 {
            out.byte(b'.');
            if nano.is_multiple_of(1_000_000) {
                out.digits(nano / 1_000_000, 3);
            } else if nano.is_multiple_of(1_000) {
                out.digits(nano / 1_000, 6);
            } else {
                out.digits(nano, 9);
            }
        }
        let _ = out.write_str("+00:00");
        out
    }

    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `n` in exactly `width` decimal digits, zero-padded.
    fn digits(&mut self, mut n: u32, width: usize) {
        let end = self.len + width;
        let Some(dst) = self.buf.get_mut(self.len..end) else {
            return;
        };
        for slot in dst.iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len = end;
    }

    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Write for DateText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Calls `f` with each value of `path` on `e` until `f` returns true, and says whether it did.
///
/// A plain field gives one value (`None` when missing). A path through relations
/// (`owner.team`) gives the field of every entity reached; when none is reached, `f` sees
/// `None` once.
pub(crate) fn visit<'a>(
    e: &'a Indexed,
    path: &str,
    lookup: &'a dyn Lookup,
    mut f: impl FnMut(Option<V<'a>>) -> bool,
) -> bool {
    // Most rules name a plain field: read it without setting up a walk.
    if first_hop(path).is_none() {
        return f(read(e, path));
    }
    let mut walk = Walk {
        lookup,
        reached: false,
        budget: PATH_BUDGET,
    };
    if walk.go(e, path, &mut f) {
        return true;
    }
    !walk.reached && f(None)
}

struct Walk<'a> {
    lookup: &'a dyn Lookup,
    reached: bool,
    budget: usize,
}

impl<'a> Walk<'a> {
    fn go(&mut self, e: &'a Indexed, path: &str, f: &mut dyn FnMut(Option<V<'a>>) -> bool) -> bool {
        if let Some((rel, rest)) = first_hop(path) {
            let entity = &e.record.entity;
            let spec = self
                .lookup
                .blueprint(&entity.blueprint)
                .and_then(|b| b.relations.get(rel));
            if let Some(spec) = spec {
                let Some(value) = entity.relations.get(rel) else {
                    return false;
                };
                for id in value.targets() {
                    if self.budget == 0 {
                        return false;
                    }
                    self.budget -= 1;
                    if let Some(target) = self.lookup.entity(&spec.target, id) {
                        if self.go(target, rest, f) {
                            return true;
                        }
                    }
                }
                return false;
            }
            // Not a relation of this blueprint: the whole name may be a field (`k8s.namespace`).
        }
        self.reached = true;
        f(read(e, path))
    }
}

/// The values of `path` on `e` as [`visit`] gives them, as JSON: a plain field's value (null
/// when missing); for a path whose first name is a relation of `e`'s blueprint, the list of
/// the values read on the entities reached, in relation order (missing values left out, so
/// the list is empty when nothing is reached).
pub(crate) fn value_of(e: &Indexed, path: &str, lookup: &dyn Lookup) -> Value {
    let through_relation = first_hop(path).is_some_and(|(rel, _)| {
        lookup
            .blueprint(&e.record.entity.blueprint)
            .is_some_and(|b| b.relations.contains_key(rel))
    });
    if !through_relation {
        return read(e, path).map_or(Value::Null, V::to_value);
    }
    let mut out = Vec::new();
    visit(e, path, lookup, |v| {
        out.extend(v.map(V::to_value));
        false
    });
    Value::Array(out)
}

/// How many relations `path` may follow: one per name before the last, up to a name that
/// cannot be a relation (`$team`, `properties.x`). A name that turns out not to be a relation
/// of the entity ends the walk earlier (`k8s.namespace` read as one field).
pub(crate) fn hops(mut path: &str) -> usize {
    let mut n = 0;
    while let Some((_, rest)) = first_hop(path) {
        n += 1;
        path = rest;
    }
    n
}

/// `owner.team` → (`owner`, `team`); none for a field that cannot start with a relation.
pub(crate) fn first_hop(path: &str) -> Option<(&str, &str)> {
    if path.starts_with('$') || path.starts_with("properties.") {
        return None;
    }
    path.split_once('.')
}

/// One field of one entity, as `Indexed::field` defines it, without copying.
pub(crate) fn read<'a>(e: &'a Indexed, name: &str) -> Option<V<'a>> {
    let entity = &e.record.entity;
    if let Some(p) = name.strip_prefix("properties.") {
        return entity.properties.get(p).map(V::of);
    }
    let meta = name.strip_prefix('$').unwrap_or(name);
    match meta {
        "identifier" => return Some(V::Str(&entity.identifier)),
        "title" => {
            return Some(V::Str(
                entity.title.as_deref().unwrap_or(&entity.identifier),
            ))
        }
        "blueprint" => return Some(V::Str(&entity.blueprint)),
        "team" => return Some(V::Arr(Items::Strs(&entity.team))),
        "createdAt" => return Some(V::Date(e.record.created_at)),
        "updatedAt" => return Some(V::Date(e.record.updated_at)),
        "createdBy" => return Some(V::Str(&e.record.created_by)),
        "updatedBy" => return Some(V::Str(&e.record.updated_by)),
        _ if name.starts_with('$') => return None,
        _ => {}
    }
    if let Some(v) = entity.properties.get(name) {
        return Some(V::of(v));
    }
    if let Some(v) = e.computed.get(name) {
        return Some(V::of(v));
    }
    entity.relations.get(name).map(|r| match r {
        RelationValue::One(s) => V::Str(s),
        RelationValue::Many(v) => V::Arr(Items::Strs(v)),
    })
}

/// The first value of `path` on `e` that is not missing or null, for sorting.
pub(crate) fn first_value<'a>(e: &'a Indexed, path: &str, lookup: &'a dyn Lookup) -> Option<V<'a>> {
    let mut out = None;
    visit(e, path, lookup, |v| {
        out = v.filter(|v| !matches!(v, V::Null));
        out.is_some()
    });
    out
}

/// Compares two JSON numbers exactly when both are integers, as floats otherwise.
pub(crate) fn number_cmp(a: &Number, b: &Number) -> Ordering {
    fn int(n: &Number) -> Option<i128> {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    }
    match (int(a), int(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => {
            let x = a.as_f64().unwrap_or(0.0);
            let y = b.as_f64().unwrap_or(0.0);
            x.partial_cmp(&y).unwrap_or(Ordering::Equal)
        }
    }
}

/// Equality of a field value and an operand: an array field equals a non-array operand when
/// one of its items does.
fn eq(v: V<'_>, w: &Value) -> bool {
    match v {
        V::Arr(items) if !w.is_array() => items.iter().any(|i| eq_exact(i, w)),
        _ => eq_exact(v, w),
    }
}

/// Deep equality where `1` equals `1.0`.
fn eq_exact(v: V<'_>, w: &Value) -> bool {
    match (v, w) {
        (V::Null, Value::Null) => true,
        (V::Bool(a), Value::Bool(b)) => a == *b,
        (V::Num(a), Value::Number(b)) => number_cmp(a, b).is_eq(),
        (V::Str(a), Value::String(b)) => a == b,
        (V::Date(d), Value::String(b)) => DateText::new(&d).as_str() == b,
        (V::Arr(items), Value::Array(b)) => {
            items.len() == b.len() && items.iter().zip(b).all(|(i, w)| eq_exact(i, w))
        }
        (V::Obj(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| b.get(k).is_some_and(|y| eq_exact(V::of(x), y)))
        }
        _ => false,
    }
}

/// The order of a scalar field value against a number or string operand; none across types.
fn order(v: V<'_>, w: &Value) -> Option<Ordering> {
    match (v, w) {
        (V::Num(a), Value::Number(b)) => Some(number_cmp(a, b)),
        (V::Str(a), Value::String(b)) => Some(a.cmp(b.as_str())),
        (V::Date(d), Value::String(b)) => Some(DateText::new(&d).as_str().cmp(b.as_str())),
        _ => None,
    }
}

/// `pred` over the value, or over its items when it is an array.
fn scalar_any(v: V<'_>, pred: &mut dyn FnMut(V<'_>) -> bool) -> bool {
    match v {
        V::Arr(items) => items.iter().any(pred),
        _ => pred(v),
    }
}

/// `pred` over the text of a string (or date) value, or of an array's string items.
fn text_any(v: V<'_>, pred: &dyn Fn(&str) -> bool) -> bool {
    scalar_any(v, &mut |x| match x {
        V::Str(s) => pred(s),
        V::Date(d) => pred(DateText::new(&d).as_str()),
        _ => false,
    })
}

fn contains(v: V<'_>, w: &Value) -> bool {
    match v {
        V::Arr(items) => items.iter().any(|i| eq_exact(i, w)),
        _ => match w {
            Value::String(needle) => text_any(v, &|s| s.contains(needle.as_str())),
            _ => false,
        },
    }
}

fn contains_any(v: V<'_>, list: &[Value]) -> bool {
    match v {
        V::Arr(items) => items.iter().any(|i| list.iter().any(|w| eq_exact(i, w))),
        _ => list.iter().any(|w| match w {
            Value::String(needle) => text_any(v, &|s| s.contains(needle.as_str())),
            _ => false,
        }),
    }
}

fn in_list(v: Option<V<'_>>, list: &[Value]) -> bool {
    match v {
        Some(v) => list.iter().any(|w| eq(v, w)),
        None => list.iter().any(Value::is_null),
    }
}

/// Whether `e` passes one `FIELD OPERATOR VALUE` rule.
pub(crate) fn test(t: &Test, e: &Indexed, lookup: &dyn Lookup) -> bool {
    visit(e, &t.field, lookup, |v| hit(&t.op, v)) != negated(&t.op)
}

/// Whether a rule on a plain field passes when the field reads `v`: what [`test`] gives for an
/// entity whose field is `v`, so a column of values can be tested without the entities.
pub(crate) fn test_value(op: &Op, v: Option<V<'_>>) -> bool {
    hit(op, v) != negated(op)
}

/// A rule's positive form decided for a number without going through [`V`]: what [`hit`]
/// gives for `Some(V::Num(n))`. `None` for operators that need the general path.
pub(crate) enum NumberHit<'o> {
    Order(&'o Number, fn(Ordering) -> bool),
    Between(&'o Number, &'o Number),
    Always(bool),
}

impl<'o> NumberHit<'o> {
    pub(crate) fn of(op: &'o Op) -> Option<NumberHit<'o>> {
        let order = |w: &'o Value, ok: fn(Ordering) -> bool| match w {
            Value::Number(w) => NumberHit::Order(w, ok),
            _ => NumberHit::Always(false),
        };
        Some(match op {
            Op::Eq(w) | Op::Ne(w) => order(w, Ordering::is_eq),
            Op::Lt(w) => order(w, Ordering::is_lt),
            Op::Le(w) => order(w, Ordering::is_le),
            Op::Gt(w) => order(w, Ordering::is_gt),
            Op::Ge(w) => order(w, Ordering::is_ge),
            Op::Between(Value::Number(lo), Value::Number(hi)) => NumberHit::Between(lo, hi),
            Op::Between(..) => NumberHit::Always(false),
            _ => return None,
        })
    }

    pub(crate) fn hit(&self, n: &Number) -> bool {
        match self {
            NumberHit::Order(w, ok) => ok(number_cmp(n, w)),
            NumberHit::Between(lo, hi) => number_cmp(n, lo).is_ge() && number_cmp(n, hi).is_le(),
            NumberHit::Always(b) => *b,
        }
    }
}

/// [`NumberHit`] with its operands as exact `f64`s, for numbers that are exact `f64`s too
/// (`crate::table::exact`): the same answers, compared as floats.
pub(crate) enum FloatHit {
    Order(f64, fn(Ordering) -> bool),
    Between(f64, f64),
    Always(bool),
}

impl FloatHit {
    pub(crate) fn of(hit: &NumberHit<'_>) -> Option<FloatHit> {
        use crate::table::exact;
        Some(match hit {
            NumberHit::Order(w, ok) => FloatHit::Order(exact(w)?, *ok),
            NumberHit::Between(lo, hi) => FloatHit::Between(exact(lo)?, exact(hi)?),
            NumberHit::Always(b) => FloatHit::Always(*b),
        })
    }

    pub(crate) fn hit(&self, x: f64) -> bool {
        let cmp = |w: f64| x.partial_cmp(&w).unwrap_or(Ordering::Equal);
        match self {
            FloatHit::Order(w, ok) => ok(cmp(*w)),
            FloatHit::Between(lo, hi) => cmp(*lo).is_ge() && cmp(*hi).is_le(),
            FloatHit::Always(b) => *b,
        }
    }
}

/// The operators that match when no value matches their positive counterpart.
pub(crate) fn negated(op: &Op) -> bool {
    matches!(op, Op::Ne(_) | Op::NotIn(_) | Op::IsEmpty)
}

/// Whether one value matches the operator's positive form (`=` for `!=`, `in` for `notIn`,
/// `isNotEmpty` for `isEmpty`).
fn hit(op: &Op, v: Option<V<'_>>) -> bool {
    let ordered = |w: &Value, ok: fn(Ordering) -> bool| {
        v.is_some_and(|v| scalar_any(v, &mut |x| order(x, w).is_some_and(ok)))
    };
    let text = |pred: &dyn Fn(&str) -> bool| v.is_some_and(|v| text_any(v, pred));
    match op {
        Op::Eq(w) | Op::Ne(w) => v.map_or(w.is_null(), |v| eq(v, w)),
        Op::Lt(w) => ordered(w, Ordering::is_lt),
        Op::Le(w) => ordered(w, Ordering::is_le),
        Op::Gt(w) => ordered(w, Ordering::is_gt),
        Op::Ge(w) => ordered(w, Ordering::is_ge),
        Op::In(list) | Op::NotIn(list) => in_list(v, list),
        Op::Contains(w) => v.is_some_and(|v| contains(v, w)),
        Op::ContainsAny(list) => v.is_some_and(|v| contains_any(v, list)),
        Op::BeginsWith(p) => text(&|s| s.starts_with(p.as_str())),
        Op::EndsWith(p) => text(&|s| s.ends_with(p.as_str())),
        Op::IsEmpty | Op::IsNotEmpty => v.is_some_and(|v| !v.is_empty()),
        Op::Between(lo, hi) => v.is_some_and(|v| {
            scalar_any(v, &mut |x| {
                order(x, lo).is_some_and(Ordering::is_ge)
                    && order(x, hi).is_some_and(Ordering::is_le)
            })
        }),
    }
}

/// A query ready to run: its `relatedTo` rules resolved to sets of entities.
#[derive(Debug)]
pub(crate) enum Step<'q> {
    Group(Combinator, Vec<Step<'q>>),
    Not(Box<Step<'q>>),
    Test(&'q Test),
    Related(RelatedSet),
}

pub(crate) fn prepare<'q>(node: &'q Node, lookup: &dyn Lookup) -> Step<'q> {
    match node {
        Node::Group(c, rules) => {
            Step::Group(*c, rules.iter().map(|r| prepare(r, lookup)).collect())
        }
        Node::Not(inner) => Step::Not(Box::new(prepare(inner, lookup))),
        Node::Test(t) => Step::Test(t),
        Node::RelatedTo(r) => Step::Related(RelatedSet::resolve(r, lookup)),
    }
}

pub(crate) fn matches(step: &Step<'_>, e: &Indexed, lookup: &dyn Lookup) -> bool {
    match step {
        Step::Group(Combinator::And, steps) => steps.iter().all(|s| matches(s, e, lookup)),
        Step::Group(Combinator::Or, steps) => steps.iter().any(|s| matches(s, e, lookup)),
        Step::Not(inner) => !matches(inner, e, lookup),
        Step::Test(t) => test(t, e, lookup),
        Step::Related(set) => set.contains(&e.record.entity.blueprint, &e.record.entity.identifier),
    }
}

/// The entities within reach of a `relatedTo` rule's entity: blueprint → identifiers.
#[derive(Debug, Default)]
pub(crate) struct RelatedSet {
    by_blueprint: HashMap<String, HashSet<String>>,
}

type Key = (String, String);

impl RelatedSet {
    pub(crate) fn contains(&self, blueprint: &str, identifier: &str) -> bool {
        self.by_blueprint
            .get(blueprint)
            .is_some_and(|ids| ids.contains(identifier))
    }

    fn resolve(r: &RelatedTo, lookup: &dyn Lookup) -> RelatedSet {
        let start = (r.blueprint.clone(), r.identifier.clone());
        let mut found = HashSet::new();
        if matches!(r.direction, Direction::Downstream | Direction::Any) {
            found.extend(bfs(&start, r, lookup, downstream));
        }
        if matches!(r.direction, Direction::Upstream | Direction::Any) {
            found.extend(bfs(&start, r, lookup, upstream));
        }
        found.remove(&start);
        let mut set = RelatedSet::default();
        for (bp, id) in found {
            set.by_blueprint.entry(bp).or_default().insert(id);
        }
        set
    }
}

/// Breadth-first search from `start` up to `r.depth` hops, each hop given by `next`.
fn bfs(start: &Key, r: &RelatedTo, lookup: &dyn Lookup, next: Neighbours) -> HashSet<Key> {
    let mut seen = HashSet::from([start.clone()]);
    let mut frontier = vec![start.clone()];
    for _ in 0..r.depth {
        let mut following = Vec::new();
        for (bp, id) in &frontier {
            next(bp, id, r.relation.as_deref(), lookup, &mut |key| {
                if !seen.contains(&key) {
                    seen.insert(key.clone());
                    following.push(key);
                }
            });
        }
        if following.is_empty() {
            break;
        }
        frontier = following;
    }
    seen
}

type Neighbours = fn(&str, &str, Option<&str>, &dyn Lookup, &mut dyn FnMut(Key));

/// What the entity's relations name.
fn downstream(
    bp: &str,
    id: &str,
    only: Option<&str>,
    lookup: &dyn Lookup,
    out: &mut dyn FnMut(Key),
) {
    let (Some(e), Some(blueprint)) = (lookup.entity(bp, id), lookup.blueprint(bp)) else {
        return;
    };
    for (name, value) in &e.record.entity.relations {
        if only.is_some_and(|only| only != name) {
            continue;
        }
        let Some(spec) = blueprint.relations.get(name) else {
            continue;
        };
        for target in value.targets() {
            out((spec.target.clone(), target.clone()));
        }
    }
}

/// The entities whose relations name this one.
fn upstream(bp: &str, id: &str, only: Option<&str>, lookup: &dyn Lookup, out: &mut dyn FnMut(Key)) {
    for (referrer, name) in lookup.referrers(bp, id) {
        if only.is_some_and(|only| only != name) {
            continue;
        }
        let entity = &referrer.record.entity;
        out((entity.blueprint.clone(), entity.identifier.clone()));
    }
}

/// The order of two values for sorting: by type (booleans, numbers, strings, lists, objects),
/// then within the type.
pub(crate) fn sort_cmp(a: V<'_>, b: V<'_>) -> Ordering {
    fn rank(v: V<'_>) -> u8 {
        match v {
            V::Null => 0,
            V::Bool(_) => 1,
            V::Num(_) => 2,
            V::Str(_) | V::Date(_) => 3,
            V::Arr(_) => 4,
            V::Obj(_) => 5,
        }
    }
    match (a, b) {
        (V::Bool(x), V::Bool(y)) => x.cmp(&y),
        (V::Num(x), V::Num(y)) => number_cmp(x, y),
        (V::Str(x), V::Str(y)) => x.cmp(y),
        (V::Date(x), V::Date(y)) => x.cmp(&y),
        (V::Date(x), V::Str(y)) => DateText::new(&x).as_str().cmp(y),
        (V::Str(x), V::Date(y)) => x.cmp(DateText::new(&y).as_str()),
        (V::Arr(x), V::Arr(y)) => {
            let mut xs = x.iter();
            let mut ys = y.iter();
            loop {
                match (xs.next(), ys.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(p), Some(q)) => match sort_cmp(p, q) {
                        Ordering::Equal => {}
                        o => return o,
                    },
                }
            }
        }
        (V::Obj(x), V::Obj(y)) => {
            for ((kx, vx), (ky, vy)) in x.iter().zip(y.iter()) {
                let o = kx.cmp(ky).then_with(|| sort_cmp(V::of(vx), V::of(vy)));
                if o.is_ne() {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    #[test]
    fn date_text_is_to_rfc3339() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap_or_default();
        for (h, m, s, nano) in [
            (0, 0, 0, 0),
            (9, 5, 7, 250_000_000),
            (23, 59, 59, 123_000),
            (12, 30, 1, 123_456_789),
            (1, 2, 3, 1),
            (23, 59, 59, 1_500_000_000),
        ] {
            let Some(t) = day.and_hms_nano_opt(h, m, s, nano) else {
                panic!("not a time: {h}:{m}:{s}.{nano}");
            };
            let d = Utc.from_utc_datetime(&t);
            assert_eq!(DateText::new(&d).as_str(), d.to_rfc3339());
        }
        for d in [
            Utc.with_ymd_and_hms(12, 1, 2, 3, 4, 5).single(),
            Utc.with_ymd_and_hms(-44, 3, 15, 0, 0, 0).single(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).single(),
        ]
        .into_iter()
        .flatten()
        {
            assert_eq!(DateText::new(&d).as_str(), d.to_rfc3339());
        }
    }
}
