//! Relay's function library (exactly the 13 names in [`super::FUNCTIONS`]).
//!
//! Arguments arrive already evaluated, each possibly unresolved or failed, so that `coalesce`
//! and `exists` can look at the failures and the other functions can report all missing data.

use serde_json::{Map, Value};

use super::analysis::expr_function_calls;
use super::data::Data;
use super::eval::{eval, join2, join_all, Env, Stop, PATH_NOT_FOUND};
use super::markdown::{convert, Markup};
use super::value::{deep_equal, scalar_string, type_name};
use super::FUNCTIONS;

type Arg = Result<Value, Stop>;

pub(crate) enum CallArgs {
    Positional(Vec<Arg>),
    Keyword(Vec<(String, Arg)>),
}

pub(crate) fn call(name: &str, args: CallArgs, data: &Data) -> Result<Value, Stop> {
    match name {
        "append" => {
            let args = positional(name, args)?;
            at_least(name, &args, 2)?;
            let mut values = join_all(args)?.into_iter();
            match values.next() {
                Some(Value::Array(mut items)) => {
                    items.extend(values);
                    Ok(Value::Array(items))
                }
                Some(other) => Err(wrong_type(name, 1, "an array", &other)),
                None => Err(arity(name, "at least 2", 0)),
            }
        }
        "coalesce" => {
            for arg in positional(name, args)? {
                match arg {
                    Ok(Value::Null) => {}
                    Ok(v) => return Ok(v),
                    // Skipped rather than waited on: that is the point of coalesce.
                    Err(Stop::Unresolved(_)) => {}
                    Err(s) if s.is_path_not_found() => {}
                    Err(s) => return Err(s),
                }
            }
            Ok(Value::Null)
        }
        "concat" => {
            let values = join_all(positional(name, args)?)?;
            let mut out = String::new();
            for (i, v) in values.iter().enumerate() {
                match scalar_string(v) {
                    Some(s) => out.push_str(&s),
                    None => return Err(wrong_type(name, i + 1, "a scalar", v)),
                }
            }
            Ok(Value::String(out))
        }
        "convertMarkdown" => {
            let [to, content] = named(name, args, ["to", "content"])?;
            let (to, content) = join2(
                required(name, "to", to)?,
                required(name, "content", content)?,
            )?;
            let markup = match to.as_str() {
                Some("jira") => Markup::Jira,
                Some("html") => Markup::Html,
                _ => {
                    return Err(Stop::error(
                        "function_type",
                        "convertMarkdown: `to` must be 'jira' or 'html'",
                    ))
                }
            };
            match content {
                Value::String(s) => Ok(Value::String(convert(markup, &s))),
                other => Err(wrong_type(name, 2, "a string", &other)),
            }
        }
        "equals" | "notEquals" => {
            let args = positional(name, args)?;
            exactly(name, &args, 2)?;
            let values = join_all(args)?;
            let equal = match values.as_slice() {
                [a, b] => deep_equal(a, b),
                _ => return Err(arity(name, "exactly 2", values.len())),
            };
            Ok(Value::Bool(if name == "equals" { equal } else { !equal }))
        }
        "exists" => {
            let args = positional(name, args)?;
            exactly(name, &args, 1)?;
            match args.into_iter().next() {
                Some(Ok(_)) => Ok(Value::Bool(true)),
                Some(Err(s)) if s.is_path_not_found() => Ok(Value::Bool(false)),
                Some(Err(s)) => Err(s),
                None => Err(arity(name, "exactly 1", 0)),
            }
        }
        "jsonMarshal" => {
            let v = single(name, args)?;
            serde_json::to_string(&v)
                .map(Value::String)
                .map_err(|_| Stop::error("function_type", "jsonMarshal: value cannot be encoded"))
        }
        "jsonUnmarshal" => match single(name, args)? {
            Value::String(s) => serde_json::from_str(&s).map_err(|e| {
                // serde_json's message can quote the input; report only the position.
                Stop::error(
                    "json_invalid",
                    format!(
                        "jsonUnmarshal: invalid JSON at line {} column {}",
                        e.line(),
                        e.column()
                    ),
                )
            }),
            other => Err(wrong_type(name, 1, "a string", &other)),
        },
        "merge" => merge(args),
        "now" => {
            let args = positional(name, args)?;
            exactly(name, &args, 0)?;
            Ok(Value::String(
                data.now
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            ))
        }
        "path" => {
            let [object, query, default] = named(name, args, ["object", "query", "default"])?;
            let (object, query) = join2(
                required(name, "object", object)?,
                required(name, "query", query)?,
            )?;
            let Value::String(query) = query else {
                return Err(wrong_type(name, 2, "a string", &query));
            };
            match run_query(&object, &query, data) {
                Err(s) if s.is_path_not_found() => match default {
                    Some(d) => d,
                    None => Err(Stop::error(
                        PATH_NOT_FOUND,
                        "path: the query matched nothing and no default was given",
                    )),
                },
                other => other,
            }
        }
        "toString" => {
            let v = single(name, args)?;
            scalar_string(&v)
                .map(Value::String)
                .ok_or_else(|| wrong_type(name, 1, "a scalar", &v))
        }
        _ => Err(Stop::error(
            "function_unknown",
            format!(
                "unknown function `{name}`; the functions are {}",
                FUNCTIONS.join(", ")
            ),
        )),
    }
}

/// Evaluates a path query (expression syntax without function calls) with `$` bound to `value`.
/// Messages never quote the query, which may have been computed from a secret.
pub(crate) fn run_query(value: &Value, query: &str, data: &Data) -> Result<Value, Stop> {
    let expr = super::parse_expr(query).map_err(|e| {
        Stop::error(
            "path_query",
            format!(
                "the query is not a valid path ({} at byte {})",
                e.code, e.span.start
            ),
        )
    })?;
    if !expr_function_calls(&expr).is_empty() {
        return Err(Stop::error(
            "path_query",
            "a path query cannot call functions",
        ));
    }
    let env = Env {
        data,
        src: None,
        dollar: Some(value),
    };
    eval(&expr, env).map_err(|s| match s {
        Stop::Error(e) if e.code == PATH_NOT_FOUND => {
            Stop::error(PATH_NOT_FOUND, "the query matched nothing")
        }
        other => other,
    })
}

fn merge(args: CallArgs) -> Result<Value, Stop> {
    let name = "merge";
    let (objects, deep) = match args {
        CallArgs::Positional(items) => (join_all(items)?, true),
        CallArgs::Keyword(_) => {
            let [objects, mode] = named(name, args, ["objects", "mode"])?;
            let objects = objects.unwrap_or(Ok(Value::Array(Vec::new())));
            let mode = mode.unwrap_or(Ok(Value::String("deep".into())));
            let (objects, mode) = join2(objects, mode)?;
            let deep = match mode.as_str() {
                Some("deep") => true,
                Some("shallow") => false,
                _ => {
                    return Err(Stop::error(
                        "function_type",
                        "merge: `mode` must be 'deep' or 'shallow'",
                    ))
                }
            };
            match objects {
                Value::Array(items) => (items, deep),
                other => return Err(wrong_type(name, 1, "an array of maps", &other)),
            }
        }
    };
    let mut out = Map::new();
    for (i, obj) in objects.into_iter().enumerate() {
        match obj {
            Value::Object(m) => merge_into(&mut out, m, deep),
            other => return Err(wrong_type(name, i + 1, "a map", &other)),
        }
    }
    Ok(Value::Object(out))
}

fn merge_into(into: &mut Map<String, Value>, from: Map<String, Value>, deep: bool) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(existing)), Value::Object(incoming)) if deep => {
                merge_into(existing, incoming, deep);
            }
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

fn positional(name: &str, args: CallArgs) -> Result<Vec<Arg>, Stop> {
    match args {
        CallArgs::Positional(items) => Ok(items),
        CallArgs::Keyword(_) => Err(Stop::error(
            "function_keyword",
            format!("`{name}` does not take keyword arguments"),
        )),
    }
}

/// Arguments of a function with named parameters, in parameter order, from either form.
fn named<const N: usize>(
    name: &str,
    args: CallArgs,
    params: [&str; N],
) -> Result<[Option<Arg>; N], Stop> {
    let mut out: [Option<Arg>; N] = std::array::from_fn(|_| None);
    match args {
        CallArgs::Positional(items) => {
            if items.len() > N {
                return Err(arity(name, &format!("at most {N}"), items.len()));
            }
            for (slot, item) in out.iter_mut().zip(items) {
                *slot = Some(item);
            }
        }
        CallArgs::Keyword(items) => {
            for (kw, item) in items {
                let Some(i) = params.iter().position(|p| *p == kw) else {
                    return Err(Stop::error(
                        "function_keyword",
                        format!(
                            "`{name}` has no argument `{kw}`; its arguments are {}",
                            params.join(", ")
                        ),
                    ));
                };
                match out.get_mut(i) {
                    Some(slot @ None) => *slot = Some(item),
                    _ => {
                        return Err(Stop::error(
                            "function_keyword",
                            format!("`{name}`: argument `{kw}` is given twice"),
                        ))
                    }
                }
            }
        }
    }
    Ok(out)
}

fn required(name: &str, param: &str, arg: Option<Arg>) -> Result<Arg, Stop> {
    arg.ok_or_else(|| {
        Stop::error(
            "function_arity",
            format!("`{name}` needs the argument `{param}`"),
        )
    })
}

fn single(name: &str, args: CallArgs) -> Result<Value, Stop> {
    let args = positional(name, args)?;
    exactly(name, &args, 1)?;
    match args.into_iter().next() {
        Some(arg) => arg,
        None => Err(arity(name, "exactly 1", 0)),
    }
}

fn arity(name: &str, expected: &str, got: usize) -> Stop {
    Stop::error(
        "function_arity",
        format!("`{name}` takes {expected} argument(s), got {got}"),
    )
}

fn exactly(name: &str, args: &[Arg], n: usize) -> Result<(), Stop> {
    if args.len() == n {
        Ok(())
    } else {
        Err(arity(name, &format!("exactly {n}"), args.len()))
    }
}

fn at_least(name: &str, args: &[Arg], n: usize) -> Result<(), Stop> {
    if args.len() >= n {
        Ok(())
    } else {
        Err(arity(name, &format!("at least {n}"), args.len()))
    }
}

fn wrong_type(name: &str, position: usize, expected: &str, got: &Value) -> Stop {
    Stop::error(
        "function_type",
        format!(
            "`{name}`: argument {position} must be {expected}, got a {}",
            type_name(got)
        ),
    )
}
