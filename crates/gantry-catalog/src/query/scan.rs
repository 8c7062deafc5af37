//! Running a prepared query over a blueprint's table: a rule on a plain field reads the field's
//! column ([`crate::table`]); anything else (paths through relations, `relatedTo`, fields
//! without a column) reads the entities. Both give what [`super::Prepared::matches`] gives for
//! each entity; the column only makes the common rule cheap.
//!
//! Every function takes the candidate slots and keeps their order, so the steps of an `and`
//! narrow one list and later rules test only what earlier ones let through.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::Value;

use super::ast::{Combinator, Op, Test};
use super::eval::{
    first_hop, first_value, negated, test, test_value, FloatHit, NumberHit, Step, V,
};
use super::search::{count_facet, count_texts, facet_texts};
use super::sort::{by_field, key_text, key_value, Sort};
use crate::model::{Indexed, Lookup};
use crate::table::{Cell, Column, Field, Slot, Table};

/// The slots of `cands` whose entities match `step`, in their order.
pub(crate) fn filter(
    step: &Step<'_>,
    table: &Table,
    mut cands: Vec<Slot>,
    lookup: &dyn Lookup,
) -> Vec<Slot> {
    match step {
        Step::Group(Combinator::And, steps) => {
            // Column rules first: they are cheapest and leave the rest fewer entities.
            let mut order: Vec<&Step<'_>> = steps.iter().collect();
            order.sort_by_key(|s| cost(s, table));
            // Starting from every entity, an equality with a string starts from its posting.
            if cands.len() == table.len() {
                let posted = order.iter().position(|s| posting(s, table).is_some());
                if let Some(at) = posted {
                    if let Some(slots) = posting(order[at], table) {
                        cands = slots.to_vec();
                        order.remove(at);
                    }
                }
            }
            for s in order {
                if cands.is_empty() {
                    break;
                }
                cands = filter(s, table, cands, lookup);
            }
            cands
        }
        Step::Group(Combinator::Or, steps) => {
            let mut hit = Marks::default();
            let mut rest = cands.clone();
            for s in steps {
                if rest.is_empty() {
                    break;
                }
                for slot in filter(s, table, rest.clone(), lookup) {
                    hit.set(slot);
                }
                rest.retain(|&slot| !hit.get(slot));
            }
            cands.retain(|&slot| hit.get(slot));
            cands
        }
        Step::Not(inner) => {
            let mut hit = Marks::default();
            for slot in filter(inner, table, cands.clone(), lookup) {
                hit.set(slot);
            }
            cands.retain(|&slot| !hit.get(slot));
            cands
        }
        Step::Test(t) => match plain_field(table, &t.field) {
            Field::Column(col) => column_test(&t.op, col, cands),
            Field::Absent if test_value(&t.op, None) => cands,
            Field::Absent => Vec::new(),
            Field::Rows => {
                cands.retain(|&slot| table.row(slot).is_some_and(|e| test(t, e, lookup)));
                cands
            }
        },
        Step::Related(set) => {
            cands.retain(|&slot| {
                table.row(slot).is_some_and(|e| {
                    let e = &e.record.entity;
                    set.contains(&e.blueprint, &e.identifier)
                })
            });
            cands
        }
    }
}

/// The slots an equality with a string matches, straight from the column's posting, when a
/// posting says it all (no value holds strings inside a list, an object or a date).
fn posting<'t>(step: &Step<'_>, table: &'t Table) -> Option<&'t [Slot]> {
    let Step::Test(Test {
        field,
        op: Op::Eq(Value::String(w)),
    }) = step
    else {
        return None;
    };
    match plain_field(table, field) {
        Field::Column(col) if col.only_plain_strings() => Some(col.posting(w)),
        _ => None,
    }
}

/// The order an `and` tests its steps in: column rules, then `relatedTo` sets, then the rest.
fn cost(step: &Step<'_>, table: &Table) -> u8 {
    match step {
        Step::Test(Test { field, .. }) if !matches!(plain_field(table, field), Field::Rows) => 0,
        Step::Related(_) => 1,
        _ => 2,
    }
}

/// Where a field's values are: a column, nowhere, or only in the entities (paths through
/// relations too).
fn plain_field<'t>(table: &'t Table, field: &str) -> Field<'t> {
    if first_hop(field).is_some() {
        return Field::Rows;
    }
    table.field(field)
}

/// Tests each candidate's cell. A string's outcome is decided once per distinct string, read
/// from the column's string ids; a number is compared with the operand directly.
fn column_test(op: &Op, col: &Column, mut cands: Vec<Slot>) -> Vec<Slot> {
    let missing = test_value(op, None);
    let null = test_value(op, Some(V::Null));
    let numbers = NumberHit::of(op);
    let floats = match col.has_numbers() {
        true => numbers.as_ref().and_then(FloatHit::of),
        false => None,
    };
    let flip = negated(op);
    let ids: &[u32] = match col.has_strings() {
        true => col.string_ids_by_slot(),
        false => &[],
    };
    let exact = col.numbers_by_slot();
    // Per string id: 0 not yet decided, 1 fails, 2 passes.
    let mut decided: Vec<u8> = vec![0; col.string_ids()];
    cands.retain(|&slot| {
        if let Some(f) = &floats {
            match exact.get(slot as usize) {
                Some(x) if !x.is_nan() => return f.hit(*x) != flip,
                _ => {}
            }
        }
        if let Some(&id) = ids.get(slot as usize) {
            if let Some(d) = decided.get_mut(id as usize) {
                if *d == 0 {
                    *d = 1 + u8::from(test_value(op, Some(V::Str(col.string(id)))));
                }
                return *d == 2;
            }
        }
        match col.cell(slot) {
            Cell::Missing => missing,
            Cell::Null => null,
            Cell::Num(n) => match &numbers {
                Some(t) => t.hit(n) != flip,
                None => test_value(op, Some(V::Num(n))),
            },
            cell => test_value(op, col.value(cell)),
        }
    });
    cands
}

/// Counts the facet values of `field` over the candidates into `counts`; gives how many
/// candidates have no value.
pub(crate) fn count_facets(
    table: &Table,
    field: &str,
    cands: &[Slot],
    lookup: &dyn Lookup,
    counts: &mut HashMap<String, usize>,
) -> usize {
    let mut none = 0;
    let col = match plain_field(table, field) {
        Field::Column(col) => col,
        Field::Absent => return cands.len(),
        Field::Rows => {
            for &slot in cands {
                if let Some(e) = table.row(slot) {
                    if !count_facet(e, field, lookup, counts) {
                        none += 1;
                    }
                }
            }
            return none;
        }
    };
    let mut by_id = vec![0usize; col.string_ids()];
    // Numbers and booleans by value; their text is made once per distinct value.
    let mut scalars: HashMap<Scalar, (&Cell, usize)> = HashMap::new();
    let mut texts: Vec<Cow<'_, str>> = Vec::new();
    for &slot in cands {
        match col.cell(slot) {
            Cell::Missing | Cell::Null => none += 1,
            Cell::Str(id) => match by_id.get_mut(*id as usize) {
                Some(n) => *n += 1,
                None => none += 1,
            },
            cell @ Cell::Num(n) => scalars.entry(Scalar::of(n)).or_insert((cell, 0)).1 += 1,
            cell @ Cell::Bool(b) => scalars.entry(Scalar::Bool(*b)).or_insert((cell, 0)).1 += 1,
            cell => {
                texts.clear();
                facet_texts(col.value(cell), &mut texts);
                if !count_texts(&texts, counts) {
                    none += 1;
                }
            }
        }
    }
    for (id, n) in by_id.into_iter().enumerate() {
        if n > 0 {
            *counts.entry(col.string(id as u32).to_string()).or_default() += n;
        }
    }
    for (cell, n) in scalars.into_values() {
        texts.clear();
        facet_texts(col.value(cell), &mut texts);
        for t in &texts {
            *counts.entry(t.to_string()).or_default() += n;
        }
    }
    none
}

/// A number or boolean as a hash key: equal keys have equal facet texts.
#[derive(PartialEq, Eq, Hash)]
enum Scalar {
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(u64),
}

impl Scalar {
    fn of(n: &serde_json::Number) -> Scalar {
        if let Some(u) = n.as_u64() {
            Scalar::Unsigned(u)
        } else if let Some(i) = n.as_i64() {
            Scalar::Signed(i)
        } else {
            Scalar::Float(n.as_f64().unwrap_or(0.0).to_bits())
        }
    }
}

/// The sort fields of one table, each read from its column when it has one.
pub(crate) struct RowKeys<'a> {
    table: &'a Table,
    blueprint: &'a str,
    identifiers: Option<&'a Column>,
    sort: &'a [Sort],
    columns: Vec<Field<'a>>,
    lookup: &'a dyn Lookup,
}

impl<'a> RowKeys<'a> {
    pub(crate) fn new(
        table: &'a Table,
        blueprint: &'a str,
        sort: &'a [Sort],
        lookup: &'a dyn Lookup,
    ) -> RowKeys<'a> {
        RowKeys {
            table,
            blueprint,
            identifiers: match table.field("identifier") {
                Field::Column(c) => Some(c),
                _ => None,
            },
            sort,
            columns: sort.iter().map(|s| plain_field(table, &s.field)).collect(),
            lookup,
        }
    }

    /// Sort field `i` as an exact `f64`, when it is read from a column and holds one there.
    pub(crate) fn number(&self, i: usize, slot: Slot) -> Option<f64> {
        match self.columns[i] {
            Field::Column(col) => col.number(slot),
            _ => None,
        }
    }

    /// What [`first_value`] gives for sort field `i`.
    pub(crate) fn key(&self, i: usize, slot: Slot) -> Option<V<'a>> {
        match self.columns[i] {
            Field::Column(col) => col.get(slot).filter(|v| !matches!(v, V::Null)),
            Field::Absent => None,
            Field::Rows => self
                .table
                .row(slot)
                .and_then(|e| first_value(e, &self.sort[i].field, self.lookup)),
        }
    }

    fn identifier(&self, slot: Slot) -> &'a str {
        if let Some(V::Str(s)) = self.identifiers.and_then(|c| c.get(slot)) {
            return s;
        }
        self.table
            .row(slot)
            .map_or("", |e: &'a Indexed| e.record.entity.identifier.as_str())
    }

    /// The order [`super::compare`] gives the two rows' entities, when their sort fields
    /// before `from` are equal.
    pub(crate) fn compare(&self, a: Slot, other: &RowKeys<'_>, b: Slot, from: usize) -> Ordering {
        for (i, s) in self.sort.iter().enumerate().skip(from) {
            let o = by_field(self.key(i, a), other.key(i, b), s.descending);
            if o.is_ne() {
                return o;
            }
        }
        self.blueprint
            .cmp(other.blueprint)
            .then_with(|| self.identifier(a).cmp(other.identifier(b)))
    }

    /// The order [`super::compare_to_key`] gives the row's entity against a cursor.
    pub(crate) fn compare_to_key(&self, slot: Slot, key: &Value) -> Ordering {
        let items: &[Value] = key.as_array().map_or(&[], Vec::as_slice);
        for (i, s) in self.sort.iter().enumerate() {
            let o = by_field(self.key(i, slot), key_value(items, i), s.descending);
            if o.is_ne() {
                return o;
            }
        }
        self.blueprint
            .cmp(key_text(items, self.sort.len()))
            .then_with(|| {
                self.identifier(slot)
                    .cmp(key_text(items, self.sort.len() + 1))
            })
    }
}

/// A set of slots, as a bitmap grown on demand.
#[derive(Default)]
struct Marks(Vec<u64>);

impl Marks {
    fn set(&mut self, slot: Slot) {
        let (w, b) = (slot as usize / 64, slot % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }

    fn get(&self, slot: Slot) -> bool {
        let (w, b) = (slot as usize / 64, slot % 64);
        self.0.get(w).is_some_and(|x| x & (1 << b) != 0)
    }
}
