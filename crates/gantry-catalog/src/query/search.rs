//! Full-text search over entities and the values of a field for facet counts.

use std::borrow::Cow;
use std::collections::HashMap;

use super::eval::{visit, V};
use crate::model::{Indexed, Lookup};
use serde_json::Value;

/// A full-text search: every whitespace-separated term must occur, ignoring case, in the
/// identifier, the title, or a string property or computed string value (strings inside lists
/// count too). Terms are lowercased once, here; matching allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextSearch {
    terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    lower: String,
    ascii: bool,
}

impl TextSearch {
    pub fn new(q: &str) -> TextSearch {
        let mut terms: Vec<Term> = Vec::new();
        for word in q.split_whitespace() {
            let lower = word.to_lowercase();
            if !terms.iter().any(|t| t.lower == lower) {
                terms.push(Term {
                    ascii: lower.is_ascii(),
                    lower,
                });
            }
        }
        TextSearch { terms }
    }

    /// True when there are no terms, so every entity matches.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, e: &Indexed) -> bool {
        self.terms
            .iter()
            .all(|t| any_text(e, &mut |s| t.found_in(s)))
    }
}

impl Term {
    fn found_in(&self, haystack: &str) -> bool {
        let needle = self.lower.as_bytes();
        let Some((&first, rest)) = needle.split_first() else {
            return true;
        };
        if self.ascii && haystack.is_ascii() {
            let h = haystack.as_bytes();
            let Some(last_start) = h.len().checked_sub(needle.len()) else {
                return false;
            };
            let upper = first.to_ascii_uppercase();
            return (0..=last_start).any(|i| {
                let b = h[i];
                (b == first || b == upper) && h[i + 1..i + needle.len()].eq_ignore_ascii_case(rest)
            });
        }
        let first = self.lower.chars().next();
        haystack.char_indices().any(|(i, c)| {
            c.to_lowercase().next() == first && {
                let mut rest = haystack[i..].chars().flat_map(char::to_lowercase);
                self.lower.chars().all(|n| rest.next() == Some(n))
            }
        })
    }
}

/// Calls `f` with each searchable text of `e` until it returns true.
fn any_text(e: &Indexed, f: &mut dyn FnMut(&str) -> bool) -> bool {
    let entity = &e.record.entity;
    if f(&entity.identifier) || entity.title.as_deref().is_some_and(&mut *f) {
        return true;
    }
    let mut in_value = |v: &Value| match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().any(|i| matches!(i, Value::String(s) if f(s))),
        _ => false,
    };
    entity.properties.values().any(&mut in_value) || e.computed.values().any(&mut in_value)
}

/// The values of `field` on `e` for facet counting, each once: a string as it is, a number or
/// boolean as its JSON text, each item of a list; nothing for a missing or null value (the
/// caller counts the entity under "no value").
pub fn facet_values(e: &Indexed, field: &str, lookup: &dyn Lookup) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    visit(e, field, lookup, |v| {
        match v {
            Some(V::Arr(items)) => items.iter().for_each(|i| push_facet(i, &mut out)),
            Some(v) => push_facet(v, &mut out),
            None => {}
        }
        false
    });
    out
}

/// Counts the values of `field` on `e` into `counts`, each once, as [`facet_values`] lists them,
/// without copying a string already counted. Returns whether the entity had any value.
pub fn count_facet<'a>(
    e: &'a Indexed,
    field: &str,
    lookup: &'a dyn Lookup,
    counts: &mut HashMap<String, usize>,
) -> bool {
    let mut texts: Vec<Cow<'a, str>> = Vec::new();
    visit(e, field, lookup, |v| {
        facet_texts(v, &mut texts);
        false
    });
    count_texts(&texts, counts)
}

/// Adds the facet texts of one value of a field to `texts`, each once.
pub(crate) fn facet_texts<'a>(v: Option<V<'a>>, texts: &mut Vec<Cow<'a, str>>) {
    let mut add = |v: V<'a>| {
        let text = match v {
            V::Null => return,
            V::Str(s) => Cow::Borrowed(s),
            other => {
                let mut out = Vec::new();
                push_facet(other, &mut out);
                match out.pop() {
                    Some(t) => Cow::Owned(t),
                    None => return,
                }
            }
        };
        if !texts.contains(&text) {
            texts.push(text);
        }
    };
    match v {
        Some(V::Arr(items)) => items.iter().for_each(add),
        Some(v) => add(v),
        None => {}
    }
}

/// Counts each text once into `counts`; whether there was any.
pub(crate) fn count_texts(texts: &[Cow<'_, str>], counts: &mut HashMap<String, usize>) -> bool {
    for t in texts {
        match counts.get_mut(t.as_ref()) {
            Some(n) => *n += 1,
            None => {
                counts.insert(t.to_string(), 1);
            }
        }
    }
    !texts.is_empty()
}

fn push_facet(v: V<'_>, out: &mut Vec<String>) {
    let text = match v {
        V::Null => return,
        V::Str(s) => {
            if out.iter().any(|o| o == s) {
                return;
            }
            s.to_string()
        }
        V::Num(n) => n.to_string(),
        V::Bool(b) => b.to_string(),
        V::Date(_) | V::Arr(_) | V::Obj(_) => match v.to_value() {
            Value::String(s) => s,
            other => other.to_string(),
        },
    };
    if !out.contains(&text) {
        out.push(text);
    }
}
