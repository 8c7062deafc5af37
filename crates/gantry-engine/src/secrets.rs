//! Secret and connection lookup. Values are asked for only when a step's (or a trigger's) spec
//! or env names them.
//!
//! [`evaluate_with`] is the one way an expression learns secrets and connections: it evaluates,
//! asks the resolver for what is missing, and evaluates again until nothing new is learned (a
//! name may be computed from another secret). [`masks`] lists what the learned values look like
//! in log lines.

use std::collections::BTreeSet;

use gantry_workflow::expr::{self, Data, Evaluation, Unresolved};
use serde_json::Value;

pub trait SecretResolver: Send + Sync {
    /// The value of secret `name`, or `None` when it does not exist.
    fn secret(&self, name: &str) -> Option<String>;
    /// The fields of connection `type`/`name`, or `None` when it does not exist.
    fn connection(&self, type_: &str, name: &str) -> Option<Value>;
}

/// What one evaluation already asked a resolver for: (is a secret, type, name).
pub type Asked = BTreeSet<(bool, String, String)>;

/// Evaluates `v` against `data`, fetching the secrets and connections it names from `resolver`
/// into `data` until nothing new is learned.
pub fn evaluate_with(v: &Value, data: &mut Data, resolver: &dyn SecretResolver) -> Evaluation {
    let mut asked = Asked::new();
    loop {
        let ev = expr::evaluate(v, data);
        if !fetch(resolver, &ev.unresolved, data, &mut asked) {
            return ev;
        }
    }
}

/// Asks `resolver` for the secrets and connections `u` lacks, each at most once per evaluation
/// (`asked`). True when something new was learned (evaluate again: a name may have been
/// computed from it).
pub fn fetch(
    resolver: &dyn SecretResolver,
    u: &Unresolved,
    data: &mut Data,
    asked: &mut Asked,
) -> bool {
    let mut learned = false;
    for s in &u.secrets {
        if !asked.insert((true, String::new(), s.name.clone())) {
            continue;
        }
        if let Some(value) = resolver.secret(&s.name) {
            data.secrets.insert(s.name.clone(), value);
            learned = true;
        }
    }
    for c in &u.connections {
        // A whole connection type cannot be listed through the resolver.
        if c.name.is_empty() || !asked.insert((false, c.r#type.clone(), c.name.clone())) {
            continue;
        }
        if let Some(value) = resolver.connection(&c.r#type, &c.name) {
            data.connections
                .entry(c.r#type.clone())
                .or_default()
                .insert(c.name.clone(), value);
            learned = true;
        }
    }
    learned
}

/// The texts to hide in log lines: every secret in `data`, every connection field of six
/// characters or more (a region or a port is not worth hiding and would blot logs), and the
/// `more` texts (sensitive outputs); multi-line values also line by line, since log lines are
/// single lines. Longest first, so a value is masked before any part of it.
pub fn masks(data: &Data, more: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut masks: Vec<String> = Vec::new();
    let add_text = |text: &str, masks: &mut Vec<String>| {
        masks.push(text.to_owned());
        masks.extend(text.lines().map(str::to_owned));
    };
    for v in data.secrets.values() {
        add_text(v, &mut masks);
    }
    for fields in data.connections.values().flat_map(|c| c.values()) {
        let mut stack = vec![fields];
        while let Some(v) = stack.pop() {
            match v {
                Value::String(s) if s.chars().count() >= 6 => add_text(s, &mut masks),
                Value::Array(items) => stack.extend(items),
                Value::Object(m) => stack.extend(m.values()),
                _ => {}
            }
        }
    }
    for text in more {
        add_text(&text, &mut masks);
    }
    masks.retain(|m| !m.trim().is_empty());
    masks.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    masks.dedup();
    masks
}
