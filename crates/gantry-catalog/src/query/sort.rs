//! Sorting entities and keyset pagination over the sorted order.

use std::cmp::Ordering;

use serde_json::Value;

use super::ast::check_field;
use super::eval::{first_value, sort_cmp, V};
use super::QueryError;
use crate::model::{Indexed, Lookup};

/// A sort list may name this many fields.
const MAX_SORT_FIELDS: usize = 16;

/// One field to sort by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    /// A field or a path through relations, as in a query; a path through a `many` relation
    /// sorts by the first value present.
    pub field: String,
    pub descending: bool,
}

impl Sort {
    /// Reads `title,-updatedAt`: comma-separated fields, `-` before a field for descending
    /// (`+` for ascending is accepted). A blank string is no sort fields.
    pub fn parse_list(s: &str) -> Result<Vec<Sort>, QueryError> {
        let mut out = Vec::new();
        if s.trim().is_empty() {
            return Ok(out);
        }
        let mut offset = 0;
        for part in s.split(',') {
            let start = offset + (part.len() - part.trim_start().len());
            offset += part.len() + 1;
            let item = part.trim();
            let span = (start, start + item.len());
            let (descending, field) = match item.as_bytes().first() {
                Some(b'-') => (true, &item[1..]),
                Some(b'+') => (false, &item[1..]),
                _ => (false, item),
            };
            if field.is_empty() {
                return Err(QueryError::text(s, span, "expected a field to sort by"));
            }
            if field.contains(char::is_whitespace) {
                return Err(QueryError::text(
                    s,
                    span,
                    format!("`{field}` is not a field: separate sort fields with commas"),
                ));
            }
            if let Err(m) = check_field(field) {
                return Err(QueryError::text(s, span, m));
            }
            if out.len() == MAX_SORT_FIELDS {
                return Err(QueryError::text(
                    s,
                    span,
                    format!("at most {MAX_SORT_FIELDS} sort fields"),
                ));
            }
            out.push(Sort {
                field: field.to_string(),
                descending,
            });
        }
        Ok(out)
    }
}

/// Orders two values of one sort field: missing (or null) values last in both directions.
pub(crate) fn by_field(a: Option<V<'_>>, b: Option<V<'_>>, descending: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(a), Some(b)) if descending => sort_cmp(a, b).reverse(),
        (Some(a), Some(b)) => sort_cmp(a, b),
    }
}

/// The order of two entities by `sort`, ties broken by blueprint then identifier, so the order
/// is total. Numbers compare as numbers, strings by their bytes, and values of different types
/// in a fixed order: booleans, numbers, strings, lists, objects.
pub fn compare(a: &Indexed, b: &Indexed, sort: &[Sort], lookup: &dyn Lookup) -> Ordering {
    for s in sort {
        let o = by_field(
            first_value(a, &s.field, lookup),
            first_value(b, &s.field, lookup),
            s.descending,
        );
        if o.is_ne() {
            return o;
        }
    }
    let (a, b) = (&a.record.entity, &b.record.entity);
    a.blueprint
        .cmp(&b.blueprint)
        .then_with(|| a.identifier.cmp(&b.identifier))
}

/// The values [`compare`] looks at, for a pagination cursor: a list of one value per sort field
/// (null when missing) followed by the blueprint and the identifier.
pub fn sort_key(e: &Indexed, sort: &[Sort], lookup: &dyn Lookup) -> Value {
    let mut key: Vec<Value> = sort
        .iter()
        .map(|s| first_value(e, &s.field, lookup).map_or(Value::Null, V::to_value))
        .collect();
    key.push(Value::String(e.record.entity.blueprint.clone()));
    key.push(Value::String(e.record.entity.identifier.clone()));
    Value::Array(key)
}

/// The order of two keys from [`sort_key`] for the same `sort`: the order [`compare`] gives
/// their entities, so a caller may compute each entity's key once and sort by keys.
pub fn compare_keys(a: &Value, b: &Value, sort: &[Sort]) -> Ordering {
    let a: &[Value] = a.as_array().map_or(&[], Vec::as_slice);
    let b: &[Value] = b.as_array().map_or(&[], Vec::as_slice);
    for (i, s) in sort.iter().enumerate() {
        let o = by_field(key_value(a, i), key_value(b, i), s.descending);
        if o.is_ne() {
            return o;
        }
    }
    key_text(a, sort.len())
        .cmp(key_text(b, sort.len()))
        .then_with(|| key_text(a, sort.len() + 1).cmp(key_text(b, sort.len() + 1)))
}

/// Item `i` of a key; dates are there as RFC 3339 text, which orders as their time.
pub(crate) fn key_value(items: &[Value], i: usize) -> Option<V<'_>> {
    items.get(i).filter(|v| !v.is_null()).map(V::of)
}

pub(crate) fn key_text(items: &[Value], i: usize) -> &str {
    items.get(i).and_then(Value::as_str).unwrap_or("")
}

/// Whether `key` has the shape [`sort_key`] gives for `sort`; a cursor from a client should be
/// checked before use.
pub fn is_sort_key(key: &Value, sort: &[Sort]) -> bool {
    match key {
        Value::Array(items) => {
            items.len() == sort.len() + 2 && items[sort.len()..].iter().all(Value::is_string)
        }
        _ => false,
    }
}

/// The order of `e` against a key from [`sort_key`]: `Greater` means `e` comes after it, so
/// the next page is the entities for which this is `Greater`. A malformed key compares as if
/// its values were missing.
pub fn compare_to_key(e: &Indexed, key: &Value, sort: &[Sort], lookup: &dyn Lookup) -> Ordering {
    let items: &[Value] = key.as_array().map_or(&[], Vec::as_slice);
    for (i, s) in sort.iter().enumerate() {
        let o = by_field(
            first_value(e, &s.field, lookup),
            key_value(items, i),
            s.descending,
        );
        if o.is_ne() {
            return o;
        }
    }
    let entity = &e.record.entity;
    entity
        .blueprint
        .as_str()
        .cmp(key_text(items, sort.len()))
        .then_with(|| {
            entity
                .identifier
                .as_str()
                .cmp(key_text(items, sort.len() + 1))
        })
}
