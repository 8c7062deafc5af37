//! The JSON rule form: reading it (with the JSON path of every mistake) and writing it back.

use serde_json::{json, Map, Value};

use super::ast::{
    check_field, kind, split_entity_ref, Combinator, Direction, Node, Op, OpName, RelatedTo, Test,
    MAX_DEPTH, MAX_RELATED_DEPTH, MAX_RULES,
};
use super::QueryError;

const GROUP_KEYS: &[&str] = &["combinator", "rules"];
const RULE_KEYS: &[&str] = &["property", "operator", "value", "direction", "depth"];

pub(crate) fn compile(v: &Value) -> Result<Node, QueryError> {
    let mut c = Compiler {
        path: String::new(),
        rules: 0,
    };
    c.node(v, 1)
}

struct Compiler {
    /// The JSON path of the value being read.
    path: String,
    /// Rules and groups seen so far, below the top level.
    rules: usize,
}

impl Compiler {
    fn err(&self, message: impl Into<String>) -> QueryError {
        QueryError::json(&self.path, message)
    }

    /// Runs `f` with `key` appended to the path.
    fn at<T>(&mut self, key: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(key);
        let out = f(self);
        self.path.truncate(len);
        out
    }

    fn at_index<T>(&mut self, i: usize, f: impl FnOnce(&mut Self) -> T) -> T {
        let len = self.path.len();
        self.path.push_str(&format!("[{i}]"));
        let out = f(self);
        self.path.truncate(len);
        out
    }

    fn node(&mut self, v: &Value, depth: usize) -> Result<Node, QueryError> {
        let Value::Object(obj) = v else {
            return Err(self.err(format!(
                "expected a rule or a group of rules (an object), found {}",
                kind(v)
            )));
        };
        if obj.is_empty() {
            return Err(self.err(
                "expected a rule (`property`, `operator`, `value`) or a group (`combinator`, `rules`), found an empty object",
            ));
        }
        if obj.contains_key("combinator") || obj.contains_key("rules") {
            self.group(obj, depth)
        } else {
            self.rule(obj)
        }
    }

    fn unknown_keys(&mut self, obj: &Map<String, Value>, known: &[&str]) -> Result<(), QueryError> {
        for key in obj.keys() {
            if known.contains(&key.as_str()) {
                continue;
            }
            let hint = match key.as_str() {
                "conditions" => Some("did you mean `rules`?".to_string()),
                "property" | "operator" | "value" if known == GROUP_KEYS => Some(
                    "a group has `combinator` and `rules`; put this rule inside `rules`"
                        .to_string(),
                ),
                "combinator" | "rules" => Some(
                    "a rule has `property`, `operator` and `value`; a group has `combinator` and `rules`"
                        .to_string(),
                ),
                _ => gantry_workflow::diagnostic::suggest(key, known.iter().copied()),
            };
            let message = match hint {
                Some(h) => format!("unknown key `{key}`; {h}"),
                None => format!(
                    "unknown key `{key}`; expected {}",
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(self.at(key, |c| c.err(message)));
        }
        Ok(())
    }

    fn group(&mut self, obj: &Map<String, Value>, depth: usize) -> Result<Node, QueryError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("groups are nested more than {MAX_DEPTH} deep")));
        }
        self.unknown_keys(obj, GROUP_KEYS)?;
        let combinator = match obj.get("combinator") {
            None => {
                return Err(self.err("a group needs a `combinator`: \"and\", \"or\" or \"not\""))
            }
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(self.at("combinator", |c| {
                    c.err(format!(
                        "`combinator` must be \"and\", \"or\" or \"not\", not {}",
                        kind(other)
                    ))
                }))
            }
        };
        let rules = match obj.get("rules") {
            None => return Err(self.err("a group needs `rules`: a list of rules and groups")),
            Some(Value::Array(rules)) => rules,
            Some(other) => {
                return Err(self.at("rules", |c| {
                    c.err(format!(
                        "`rules` must be a list of rules and groups, not {}",
                        kind(other)
                    ))
                }))
            }
        };
        let combinator = match combinator {
            "and" => Some(Combinator::And),
            "or" => Some(Combinator::Or),
            "not" => None,
            other => {
                let hint = gantry_workflow::diagnostic::suggest(other, ["and", "or", "not"])
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                return Err(self.at("combinator", |c| {
                    c.err(format!(
                        "unknown combinator `{other}`: use \"and\", \"or\" or \"not\"{hint}"
                    ))
                }));
            }
        };
        if combinator.is_none() && rules.len() != 1 {
            return Err(self.at("rules", |c| {
                c.err(format!(
                    "a `not` group holds exactly one rule or group, found {}",
                    rules.len()
                ))
            }));
        }
        let nodes = self.at("rules", |c| {
            let mut nodes = Vec::with_capacity(rules.len());
            for (i, r) in rules.iter().enumerate() {
                c.rules += 1;
                if c.rules > MAX_RULES {
                    return Err(c.at_index(i, |c| {
                        c.err(format!("a query may hold at most {MAX_RULES} rules"))
                    }));
                }
                nodes.push(c.at_index(i, |c| c.node(r, depth + 1))?);
            }
            Ok(nodes)
        })?;
        Ok(match combinator {
            Some(c) => Node::Group(c, nodes),
            None => Node::Not(Box::new(
                nodes
                    .into_iter()
                    .next()
                    .unwrap_or(Node::Group(Combinator::And, Vec::new())),
            )),
        })
    }

    fn rule(&mut self, obj: &Map<String, Value>) -> Result<Node, QueryError> {
        self.unknown_keys(obj, RULE_KEYS)?;
        let op = match obj.get("operator") {
            None => return Err(self.err("a rule needs an `operator`")),
            Some(Value::String(s)) => match OpName::parse(s) {
                Some(op) => op,
                None => return Err(self.at("operator", |c| c.err(OpName::unknown(s)))),
            },
            Some(other) => {
                return Err(self.at("operator", |c| {
                    c.err(format!("`operator` must be a string, not {}", kind(other)))
                }))
            }
        };
        let property = match obj.get("property") {
            None => None,
            Some(Value::String(s)) => {
                if let Err(m) = check_field(s) {
                    return Err(self.at("property", |c| c.err(m)));
                }
                Some(s.clone())
            }
            Some(other) => {
                return Err(self.at("property", |c| {
                    c.err(format!("`property` must be a string, not {}", kind(other)))
                }))
            }
        };
        if op == OpName::RelatedTo {
            return self.related_to(obj, property).map(Node::RelatedTo);
        }
        for key in ["direction", "depth"] {
            if obj.contains_key(key) {
                return Err(self.at(key, |c| c.err(format!("`{key}` is only for `relatedTo`"))));
            }
        }
        let Some(field) = property else {
            return Err(self.err("a rule needs a `property`: the field it tests"));
        };
        let value = obj.get("value").cloned();
        let has_value = value.is_some();
        match Op::build(op, value) {
            Ok(op) => Ok(Node::Test(Test { field, op })),
            Err(m) if has_value => Err(self.at("value", |c| c.err(m))),
            Err(m) => Err(self.err(m)),
        }
    }

    fn related_to(
        &mut self,
        obj: &Map<String, Value>,
        relation: Option<String>,
    ) -> Result<RelatedTo, QueryError> {
        if let Some(r) = &relation {
            if r.contains('.') {
                return Err(self.at("property", |c| {
                    c.err(format!(
                        "`relatedTo` follows one relation, so `property` is a relation name, not the path `{r}`"
                    ))
                }));
            }
        }
        let (blueprint, identifier) = match obj.get("value") {
            None => {
                return Err(self.err(
                    "`relatedTo` needs a `value`: \"BLUEPRINT/IDENTIFIER\" or {\"blueprint\": ..., \"identifier\": ...}",
                ))
            }
            Some(Value::String(s)) => match split_entity_ref(s) {
                Some((b, i)) => (b.to_string(), i.to_string()),
                None => {
                    return Err(self.at("value", |c| {
                        c.err(format!(
                            "`{s}` does not name an entity: write BLUEPRINT/IDENTIFIER, like \"team/payments\""
                        ))
                    }))
                }
            },
            Some(Value::Object(o)) => self.at("value", |c| {
                c.unknown_keys(o, &["blueprint", "identifier"])?;
                let mut get = |key: &str| match o.get(key) {
                    Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
                    Some(other) => Err(c.at(key, |c| {
                        c.err(format!("`{key}` must be a non-empty string, not {}", kind(other)))
                    })),
                    None => Err(c.err(format!(
                        "missing `{key}`: write {{\"blueprint\": ..., \"identifier\": ...}}"
                    ))),
                };
                Ok::<_, QueryError>((get("blueprint")?, get("identifier")?))
            })?,
            Some(other) => {
                return Err(self.at("value", |c| {
                    c.err(format!(
                        "`relatedTo` needs \"BLUEPRINT/IDENTIFIER\" or {{\"blueprint\": ..., \"identifier\": ...}}, not {}",
                        kind(other)
                    ))
                }))
            }
        };
        let direction = match obj.get("direction") {
            None => Direction::Any,
            Some(Value::String(s)) => match Direction::parse(s) {
                Some(d) => d,
                None => {
                    let hint =
                        gantry_workflow::diagnostic::suggest(s, Direction::NAMES.iter().copied())
                            .map(|h| format!("; {h}"))
                            .unwrap_or_default();
                    return Err(self.at("direction", |c| {
                        c.err(format!(
                            "unknown direction `{s}`: use \"upstream\", \"downstream\" or \"any\"{hint}"
                        ))
                    }));
                }
            },
            Some(other) => {
                return Err(self.at("direction", |c| {
                    c.err(format!(
                        "`direction` must be \"upstream\", \"downstream\" or \"any\", not {}",
                        kind(other)
                    ))
                }))
            }
        };
        let depth = match obj.get("depth") {
            None => 1,
            Some(v) => match v.as_u64() {
                Some(d @ 1..=MAX_RELATED_DEPTH) => d as u32,
                _ => {
                    return Err(self.at("depth", |c| {
                        c.err(format!(
                        "`depth` must be a whole number from 1 to {MAX_RELATED_DEPTH}, found {v}"
                    ))
                    }))
                }
            },
        };
        Ok(RelatedTo {
            blueprint,
            identifier,
            direction,
            depth,
            relation,
        })
    }
}

/// The canonical JSON rule form of a (normalized) tree.
pub(crate) fn write(node: &Node) -> Value {
    match node {
        Node::Group(c, rules) => json!({
            "combinator": c.as_str(),
            "rules": rules.iter().map(write).collect::<Vec<_>>(),
        }),
        Node::Not(inner) => json!({ "combinator": "not", "rules": [write(inner)] }),
        Node::Test(t) => {
            let mut m = Map::new();
            m.insert("property".into(), Value::String(t.field.clone()));
            m.insert(
                "operator".into(),
                Value::String(t.op.name().as_str().into()),
            );
            if let Some(v) = t.op.value() {
                m.insert("value".into(), v);
            }
            Value::Object(m)
        }
        Node::RelatedTo(r) => {
            let mut m = Map::new();
            if let Some(rel) = &r.relation {
                m.insert("property".into(), Value::String(rel.clone()));
            }
            m.insert("operator".into(), Value::String("relatedTo".into()));
            m.insert(
                "value".into(),
                json!({ "blueprint": r.blueprint, "identifier": r.identifier }),
            );
            m.insert(
                "direction".into(),
                Value::String(r.direction.as_str().into()),
            );
            m.insert("depth".into(), Value::from(r.depth));
            Value::Object(m)
        }
    }
}
