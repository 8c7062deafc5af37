//! The compiled form of a query, shared by the JSON rule form and the text form.
//!
//! Both forms build the same tree and then [`normalize`] it, so equal queries compare equal
//! whichever form they were written in.

use serde_json::Value;

/// Groups may nest this deep (the top level is depth 1).
pub(crate) const MAX_DEPTH: usize = 32;
/// A query may hold this many rules and groups, counted over all levels.
pub(crate) const MAX_RULES: usize = 1000;
/// `relatedTo` follows at most this many hops.
pub(crate) const MAX_RELATED_DEPTH: u64 = 10;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// `and` of no rules matches everything; `or` of no rules matches nothing.
    Group(Combinator, Vec<Node>),
    Not(Box<Node>),
    Test(Test),
    RelatedTo(RelatedTo),
}

impl Node {
    /// Calls `f` with this node and every node below it, parents first, in the order written.
    pub(crate) fn each<'a>(&'a self, f: &mut dyn FnMut(&'a Node)) {
        f(self);
        match self {
            Node::Group(_, rules) => rules.iter().for_each(|r| r.each(f)),
            Node::Not(inner) => inner.each(f),
            Node::Test(_) | Node::RelatedTo(_) => {}
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combinator {
    And,
    Or,
}

impl Combinator {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Combinator::And => "and",
            Combinator::Or => "or",
        }
    }
}

/// `FIELD OPERATOR VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Test {
    /// A field of the entity or a path through relations (`owner.team`).
    pub(crate) field: String,
    pub(crate) op: Op,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Eq(Value),
    Ne(Value),
    Lt(Value),
    Le(Value),
    Gt(Value),
    Ge(Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Contains(Value),
    ContainsAny(Vec<Value>),
    BeginsWith(String),
    EndsWith(String),
    IsEmpty,
    IsNotEmpty,
    Between(Value, Value),
}

impl Op {
    pub(crate) fn name(&self) -> OpName {
        match self {
            Op::Eq(_) => OpName::Eq,
            Op::Ne(_) => OpName::Ne,
            Op::Lt(_) => OpName::Lt,
            Op::Le(_) => OpName::Le,
            Op::Gt(_) => OpName::Gt,
            Op::Ge(_) => OpName::Ge,
            Op::In(_) => OpName::In,
            Op::NotIn(_) => OpName::NotIn,
            Op::Contains(_) => OpName::Contains,
            Op::ContainsAny(_) => OpName::ContainsAny,
            Op::BeginsWith(_) => OpName::BeginsWith,
            Op::EndsWith(_) => OpName::EndsWith,
            Op::IsEmpty => OpName::IsEmpty,
            Op::IsNotEmpty => OpName::IsNotEmpty,
            Op::Between(..) => OpName::Between,
        }
    }

    /// The operand as the JSON rule form writes it; `None` for operators without one.
    pub(crate) fn value(&self) -> Option<Value> {
        Some(match self {
            Op::Eq(v) | Op::Ne(v) | Op::Lt(v) | Op::Le(v) | Op::Gt(v) | Op::Ge(v) => v.clone(),
            Op::Contains(v) => v.clone(),
            Op::In(l) | Op::NotIn(l) | Op::ContainsAny(l) => Value::Array(l.clone()),
            Op::BeginsWith(s) | Op::EndsWith(s) => Value::String(s.clone()),
            Op::Between(lo, hi) => Value::Array(vec![lo.clone(), hi.clone()]),
            Op::IsEmpty | Op::IsNotEmpty => return None,
        })
    }

    /// Checks the operand's shape and builds the operator. The error is a message without
    /// position; the caller adds it.
    pub(crate) fn build(name: OpName, value: Option<Value>) -> Result<Op, String> {
        let op = name.as_str();
        match name {
            OpName::IsEmpty | OpName::IsNotEmpty => {
                if value.as_ref().is_some_and(|v| !v.is_null()) {
                    return Err(format!("`{op}` takes no value"));
                }
                return Ok(if name == OpName::IsEmpty {
                    Op::IsEmpty
                } else {
                    Op::IsNotEmpty
                });
            }
            OpName::RelatedTo => return Err("`relatedTo` is not a comparison".to_string()),
            _ => {}
        }
        let Some(value) = value else {
            return Err(format!("`{op}` needs a value"));
        };
        let list = |value: Value| match value {
            Value::Array(items) => Ok(items),
            other => Err(format!(
                "`{op}` needs a list of values, like [\"a\", \"b\"], not {}",
                kind(&other)
            )),
        };
        let ordered = |value: Value| match value {
            Value::Number(_) | Value::String(_) => Ok(value),
            other => Err(format!(
                "`{op}` compares numbers or strings, not {}",
                kind(&other)
            )),
        };
        let string = |value: Value| match value {
            Value::String(s) => Ok(s),
            other => Err(format!("`{op}` needs a string, not {}", kind(&other))),
        };
        Ok(match name {
            OpName::Eq => Op::Eq(value),
            OpName::Ne => Op::Ne(value),
            OpName::Lt => Op::Lt(ordered(value)?),
            OpName::Le => Op::Le(ordered(value)?),
            OpName::Gt => Op::Gt(ordered(value)?),
            OpName::Ge => Op::Ge(ordered(value)?),
            OpName::In => Op::In(list(value)?),
            OpName::NotIn => Op::NotIn(list(value)?),
            OpName::Contains => Op::Contains(value),
            OpName::ContainsAny => Op::ContainsAny(list(value)?),
            OpName::BeginsWith => Op::BeginsWith(string(value)?),
            OpName::EndsWith => Op::EndsWith(string(value)?),
            OpName::Between => {
                let items = list(value)?;
                let [lo, hi]: [Value; 2] = items.try_into().map_err(|items: Vec<Value>| {
                    format!(
                        "`between` needs two values [low, high], found {}",
                        items.len()
                    )
                })?;
                let in_order = match (&lo, &hi) {
                    (Value::Number(a), Value::Number(b)) => {
                        crate::query::eval::number_cmp(a, b).is_le()
                    }
                    (Value::String(a), Value::String(b)) => a <= b,
                    _ => {
                        return Err(format!(
                            "`between` needs two numbers or two strings, found {} and {}",
                            kind(&lo),
                            kind(&hi)
                        ))
                    }
                };
                if !in_order {
                    return Err(format!(
                        "`between` needs the low value first, found {lo} before {hi}"
                    ));
                }
                Op::Between(lo, hi)
            }
            OpName::IsEmpty | OpName::IsNotEmpty | OpName::RelatedTo => {
                return Err(format!("`{op}` takes no value"))
            }
        })
    }
}

/// What a JSON value is, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The operators by name, as both forms write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpName {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Contains,
    ContainsAny,
    BeginsWith,
    EndsWith,
    IsEmpty,
    IsNotEmpty,
    Between,
    RelatedTo,
}

impl OpName {
    pub(crate) const ALL: &'static [OpName] = &[
        OpName::Eq,
        OpName::Ne,
        OpName::Lt,
        OpName::Le,
        OpName::Gt,
        OpName::Ge,
        OpName::In,
        OpName::NotIn,
        OpName::Contains,
        OpName::ContainsAny,
        OpName::BeginsWith,
        OpName::EndsWith,
        OpName::IsEmpty,
        OpName::IsNotEmpty,
        OpName::Between,
        OpName::RelatedTo,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OpName::Eq => "=",
            OpName::Ne => "!=",
            OpName::Lt => "<",
            OpName::Le => "<=",
            OpName::Gt => ">",
            OpName::Ge => ">=",
            OpName::In => "in",
            OpName::NotIn => "notIn",
            OpName::Contains => "contains",
            OpName::ContainsAny => "containsAny",
            OpName::BeginsWith => "beginsWith",
            OpName::EndsWith => "endsWith",
            OpName::IsEmpty => "isEmpty",
            OpName::IsNotEmpty => "isNotEmpty",
            OpName::Between => "between",
            OpName::RelatedTo => "relatedTo",
        }
    }

    /// An operator by its name; `==` is accepted for `=`.
    pub(crate) fn parse(s: &str) -> Option<OpName> {
        if s == "==" {
            return Some(OpName::Eq);
        }
        OpName::ALL.iter().copied().find(|o| o.as_str() == s)
    }

    /// The message for a name that is not an operator, with a hint when one fits.
    pub(crate) fn unknown(s: &str) -> String {
        let hint = match s {
            "eq" | "equals" | "equal" | "is" => Some("did you mean `=`?".to_string()),
            "ne" | "neq" | "notEquals" | "notEqual" | "isNot" | "<>" => {
                Some("did you mean `!=`?".to_string())
            }
            "lt" => Some("did you mean `<`?".to_string()),
            "le" | "lte" => Some("did you mean `<=`?".to_string()),
            "gt" => Some("did you mean `>`?".to_string()),
            "ge" | "gte" => Some("did you mean `>=`?".to_string()),
            "startsWith" => Some("did you mean `beginsWith`?".to_string()),
            "like" | "includes" | "has" => Some("did you mean `contains`?".to_string()),
            "nin" | "not_in" | "notin" => Some("did you mean `notIn`?".to_string()),
            "doesNotContains" | "doesNotContain" | "notContains" => {
                Some("negate a `contains` rule with `not`".to_string())
            }
            "doesNotBeginsWith" | "doesNotBeginWith" | "doesNotStartWith" => {
                Some("negate a `beginsWith` rule with `not`".to_string())
            }
            "doesNotEndsWith" | "doesNotEndWith" => {
                Some("negate an `endsWith` rule with `not`".to_string())
            }
            _ => gantry_workflow::diagnostic::suggest(s, OpName::ALL.iter().map(|o| o.as_str())),
        };
        match hint {
            Some(h) => format!("unknown operator `{s}`; {h}"),
            None => format!(
                "unknown operator `{s}`; the operators are {}",
                OpName::ALL
                    .iter()
                    .map(|o| format!("`{}`", o.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// `relatedTo`: the entity is within `depth` hops of `blueprint/identifier`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RelatedTo {
    pub(crate) blueprint: String,
    pub(crate) identifier: String,
    pub(crate) direction: Direction,
    pub(crate) depth: u32,
    /// Follow only relations of this name.
    pub(crate) relation: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Entities that point (through relations) at the given one.
    Upstream,
    /// Entities the given one points at (what it depends on).
    Downstream,
    /// Either.
    Any,
}

impl Direction {
    pub(crate) const NAMES: &'static [&'static str] = &["upstream", "downstream", "any"];

    pub(crate) fn parse(s: &str) -> Option<Direction> {
        match s {
            "upstream" => Some(Direction::Upstream),
            "downstream" => Some(Direction::Downstream),
            "any" => Some(Direction::Any),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
            Direction::Any => "any",
        }
    }
}

/// A field path may have this many dot-separated names, which bounds how deep reading it
/// recurses.
pub(crate) const MAX_PATH_NAMES: usize = 16;

/// Checks a field or path: non-empty names separated by dots.
pub(crate) fn check_field(field: &str) -> Result<(), String> {
    if field.is_empty() {
        return Err("the field name is empty".to_string());
    }
    if field.split('.').any(str::is_empty) {
        return Err(format!(
            "`{field}` is not a field: a path is names separated by single dots, like `owner.team`"
        ));
    }
    if field.split('.').count() > MAX_PATH_NAMES {
        return Err(format!(
            "a field path may have at most {MAX_PATH_NAMES} names separated by dots"
        ));
    }
    Ok(())
}

/// Splits `BLUEPRINT/IDENTIFIER` at its first slash.
pub(crate) fn split_entity_ref(s: &str) -> Option<(&str, &str)> {
    let (bp, id) = s.split_once('/')?;
    (!bp.is_empty() && !id.is_empty()).then_some((bp, id))
}

/// The canonical tree: nested groups of the same combinator are merged into their parent, a
/// group of one rule is that rule, and an `or` of no rules is `not` of everything. The top level
/// is always a group.
pub(crate) fn normalize_root(node: Node) -> Node {
    match normalize(node) {
        g @ Node::Group(..) => g,
        other => Node::Group(Combinator::And, vec![other]),
    }
}

fn normalize(node: Node) -> Node {
    match node {
        Node::Group(c, rules) => {
            let mut out = Vec::with_capacity(rules.len());
            for r in rules {
                match normalize(r) {
                    Node::Group(inner, rules) if inner == c => out.extend(rules),
                    other => out.push(other),
                }
            }
            if out.len() == 1 {
                return out.pop().unwrap_or(Node::Group(c, Vec::new()));
            }
            if out.is_empty() && c == Combinator::Or {
                return Node::Not(Box::new(Node::Group(Combinator::And, Vec::new())));
            }
            Node::Group(c, out)
        }
        Node::Not(inner) => Node::Not(Box::new(normalize(*inner))),
        leaf => leaf,
    }
}
