//! What changed between two versions of a JSON document (an entity or a blueprint), path by
//! path: the history's diff and `gantry apply --dry-run` print these.

use serde::Serialize;
use serde_json::Value;

/// One difference: the value at `path` was `before` and is `after` (`None` where absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// The differences from `before` to `after`, objects compared key by key (keys in `before`'s
/// order, then the new ones), everything else as a whole value.
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk("", Some(before), Some(after), &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(path: &str, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<Change>) {
    match (before, after) {
        (Some(Value::Object(b)), Some(Value::Object(a))) => {
            for (k, bv) in b {
                walk(&join(path, k), Some(bv), a.get(k), out);
            }
            for (k, av) in a {
                if !b.contains_key(k) {
                    walk(&join(path, k), None, Some(av), out);
                }
            }
        }
        (b, a) if b == a => {}
        (b, a) => out.push(Change {
            path: path.to_string(),
            before: b.cloned(),
            after: a.cloned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_objects_are_compared_key_by_key_and_arrays_whole() {
        let before = json!({"title": "A", "properties": {"tier": 1, "tags": ["x"], "gone": true}});
        let after =
            json!({"title": "A", "properties": {"tier": 2, "tags": ["x", "y"], "new": null}});
        let changes = diff(&before, &after);
        let paths: Vec<_> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "properties.tier",
                "properties.tags",
                "properties.gone",
                "properties.new"
            ]
        );
        assert_eq!(changes[2].after, None);
        assert_eq!(changes[3].before, None);
        assert_eq!(changes[3].after, Some(Value::Null));
        assert!(diff(&after, &after).is_empty());
    }
}
