//! The filters of Gantry's jq: jaq's standard library, less what reads the environment or the
//! local time zone, with the JSON filters and regular expressions rewritten over [`V`] so their
//! work counts toward the run's deadline.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use jaq_core::native::{bome, run, unary, v, Filter, Fun};
use jaq_core::{Bind, Cv, Error, RunPtr, ValR};
use jaq_json::Val;

use super::meter::tick;
use super::value::V;
use super::Gantry;

/// Filters of jaq's standard library that Gantry leaves out: `env` would hand the server's
/// environment (secrets included) to any blueprint author; the local-time filters read the host's
/// time zone, which means nothing to a catalog; the rest are replaced below.
const LEFT_OUT: &[&str] = &[
    "env",
    "localtime",
    "strflocaltime",
    "debug_empty",
    "stderr_empty",
    "matches",
    "split_matches",
    "split_",
];

/// Natives renamed so a definition in [`DEFS`] can check their arguments first.
const GUARDED: &[(&str, &str)] = &[("strftime", "_strftime")];

/// Definitions loaded after jaq's own.
pub(super) const DEFS: &str = r#"
def strftime($fmt):
  if ($fmt | isstring) and ($fmt | length) > 200
  then error("strftime: the format is longer than 200 characters")
  else _strftime($fmt) end;
"#;

/// The longest string a regular expression runs over, and the most memory its compiled form
/// may take: together they bound the one step of a run that cannot look at the clock.
const REGEX_MAX_TEXT: usize = 1 << 20;
const REGEX_MAX_PATTERN: usize = 1000;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

pub(super) fn funs() -> Vec<Fun<Gantry>> {
    let std = jaq_std::funs::<Gantry>()
        .filter(|(name, ..)| !LEFT_OUT.contains(name))
        .map(|(name, args, f)| {
            let name = GUARDED
                .iter()
                .find(|(from, _)| *from == name)
                .map_or(name, |(_, to)| *to);
            (name, args, f)
        });
    jaq_core::funs::<Gantry>()
        .chain(std)
        .chain(ours().into_vec().into_iter().map(run::<Gantry>))
        .collect()
}

fn ours() -> Box<[Filter<RunPtr<Gantry>>]> {
    let vv = || -> Box<[Bind]> { [Bind::Var(()), Bind::Var(())].into() };
    Box::new([
        ("fromjson", v(0), |cv| fromjson(&cv.1)),
        ("tojson", v(0), |cv| bome(Ok(V::string(cv.1.to_string())))),
        ("length", v(0), |cv| bome(length(&cv.1))),
        ("contains", v(1), |cv| {
            unary(cv, |x, y| Ok(V::from(contains(&x.val, &y.val))))
        }),
        ("has", v(1), |cv| unary(cv, |x, k| has(&x, &k))),
        ("indices", v(1), |cv| unary(cv, |x, y| indices(&x, &y))),
        ("bsearch", v(1), |cv| unary(cv, |a, x| bsearch(&a, &x))),
        ("debug_empty", v(0), |_| Box::new(std::iter::empty())),
        ("stderr_empty", v(0), |_| Box::new(std::iter::empty())),
        ("matches", vv(), |cv| bome(regex(cv, false, true))),
        ("split_matches", vv(), |cv| bome(regex(cv, true, true))),
        ("split_", vv(), |cv| bome(regex(cv, true, false))),
    ])
}

fn fail(msg: impl Into<String>) -> Error<V> {
    Error::new(V::string(msg.into()))
}

fn fromjson<'a>(x: &V) -> jaq_core::ValXs<'a, V> {
    let Some(bytes) = x.str_bytes() else {
        return bome(Err(fail(format!(
            "cannot parse {x} as JSON: it is not a string"
        ))));
    };
    // serde_json refuses JSON nested deeper than 128 levels, so the result is within limits.
    let mut out = Vec::new();
    for r in serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>() {
        tick();
        match r.map_err(|e| e.to_string()).and_then(|j| V::from_json(&j)) {
            Ok(v) => out.push(Ok(v)),
            Err(e) => {
                out.push(Err(fail(format!("cannot parse {x} as JSON: {e}")).into()));
                break;
            }
        }
    }
    Box::new(out.into_iter())
}

fn length(x: &V) -> ValR<V> {
    Ok(match &x.val {
        Val::Null => V::from(0usize),
        Val::Bool(_) => return Err(fail(format!("{x} has no length"))),
        Val::Num(_) => V::from(x.as_f64().unwrap_or(0.0).abs()),
        Val::TStr(b) => V::from(String::from_utf8_lossy(b).chars().count()),
        Val::BStr(b) => V::from(b.len()),
        Val::Arr(a) => V::from(a.len()),
        Val::Obj(o) => V::from(o.len()),
    })
}

/// jq's `contains`: substrings, every item of `b` in some item of `a`, objects key by key.
fn contains(a: &Val, b: &Val) -> bool {
    tick();
    match (a, b) {
        (Val::TStr(l) | Val::BStr(l), Val::TStr(r) | Val::BStr(r)) => {
            memchr::memmem::find(l, r).is_some()
        }
        (Val::Arr(l), Val::Arr(r)) => r.iter().all(|r| l.iter().any(|l| contains(l, r))),
        (Val::Obj(l), Val::Obj(r)) => r
            .iter()
            .all(|(k, r)| l.get(k).is_some_and(|l| contains(l, r))),
        _ => a == b,
    }
}

fn has(x: &V, k: &V) -> ValR<V> {
    match (&x.val, &k.val) {
        (Val::Obj(o), _) => Ok(V::from(o.contains_key(&k.val))),
        (Val::Arr(a), Val::Num(_)) => {
            let i = k.as_f64().unwrap_or(-1.0);
            Ok(V::from(i >= 0.0 && i < a.len() as f64))
        }
        _ => Err(fail(format!("cannot check whether {x} has the key {k}"))),
    }
}

fn indices(x: &V, y: &V) -> ValR<V> {
    match (&x.val, &y.val) {
        (Val::TStr(s), Val::TStr(sub)) => {
            if sub.is_empty() {
                return Ok(std::iter::empty::<V>().collect());
            }
            // Byte offsets of the matches (overlapping ones too), as character offsets.
            // Both as valid UTF-8, so every match starts on a character.
            let (s, sub) = (String::from_utf8_lossy(s), String::from_utf8_lossy(sub));
            let mut chars = CharOffsets::new(&s);
            let mut found = Vec::new();
            let finder = memchr::memmem::Finder::new(sub.as_bytes());
            let mut from = 0;
            while let Some(at) = s.as_bytes().get(from..).and_then(|rest| finder.find(rest)) {
                tick();
                let start = from + at;
                found.push(V::from(chars.at(start)));
                let width = s.get(start..).and_then(|r| r.chars().next());
                from = start + width.map_or(1, char::len_utf8);
            }
            Ok(found.into_iter().collect())
        }
        (Val::Arr(_), Val::Arr(sub)) if sub.is_empty() => Ok(std::iter::empty::<V>().collect()),
        (Val::Arr(a), Val::Arr(sub)) => Ok(a
            .windows(sub.len())
            .enumerate()
            .filter(|(_, w)| {
                tick();
                *w == &sub[..]
            })
            .map(|(i, _)| V::from(i))
            .collect()),
        (Val::Arr(a), item) => Ok(a
            .iter()
            .enumerate()
            .filter(|(_, x)| {
                tick();
                *x == item
            })
            .map(|(i, _)| V::from(i))
            .collect()),
        _ => Err(fail(format!("cannot look for {y} in {x}"))),
    }
}

fn bsearch(a: &V, x: &V) -> ValR<V> {
    match &a.val {
        Val::Arr(items) => {
            let at = items.binary_search_by(|probe| {
                tick();
                probe.cmp(&x.val)
            });
            let i = match at {
                Ok(i) => i as isize,
                Err(i) => -1 - i as isize,
            };
            Ok(V::from(i))
        }
        _ => Err(fail(format!("cannot search in {a}: it is not an array"))),
    }
}

#[derive(Clone, Copy, Default)]
struct Flags {
    global: bool,
    ignore_empty: bool,
}

thread_local! {
    /// Compiled regular expressions by (pattern, flags): a calculation runs once per entity
    /// with the same few patterns.
    static REGEXES: RefCell<HashMap<(String, String), Rc<regex::Regex>>> =
        RefCell::new(HashMap::new());
}

fn compile_regex(pattern: &str, flags: &str) -> Result<(Rc<regex::Regex>, Flags), String> {
    let mut f = Flags::default();
    let mut b = regex::RegexBuilder::new(pattern);
    b.size_limit(REGEX_SIZE_LIMIT).nest_limit(100);
    for c in flags.chars() {
        match c {
            'g' => f.global = true,
            'n' => f.ignore_empty = true,
            'i' => drop(b.case_insensitive(true)),
            'm' => drop(b.multi_line(true)),
            's' => drop(b.dot_matches_new_line(true)),
            'p' => drop(b.multi_line(true).dot_matches_new_line(true)),
            'l' => drop(b.swap_greed(true)),
            'x' => drop(b.ignore_whitespace(true)),
            c => {
                return Err(format!(
                    "`{c}` is not a regex flag (use g, i, l, m, n, p, s, x)"
                ))
            }
        }
    }
    if pattern.len() > REGEX_MAX_PATTERN {
        return Err(format!(
            "the regular expression is longer than {REGEX_MAX_PATTERN} bytes"
        ));
    }
    let key = (pattern.to_string(), flags.to_string());
    if let Some(re) = REGEXES.with(|c| c.borrow().get(&key).cloned()) {
        return Ok((re, f));
    }
    let re = Rc::new(
        b.build()
            .map_err(|e| format!("invalid regular expression: {e}"))?,
    );
    REGEXES.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= 64 {
            c.clear();
        }
        c.insert(key, re.clone());
    });
    Ok((re, f))
}

/// `matches`, `split_matches` and `split_` of jaq's standard library, on the `regex` crate:
/// the text between matches when `between`, the matches (each an array of the whole match and
/// the groups that took part) when `matches`.
fn regex(mut cv: Cv<'_, Gantry>, between: bool, matches: bool) -> ValR<V> {
    let flags = cv.0.pop_var();
    let re = cv.0.pop_var();
    let as_str = |v: &V, what: &str| -> Result<String, Error<V>> {
        match &v.val {
            Val::TStr(b) => Ok(String::from_utf8_lossy(b).into_owned()),
            _ => Err(fail(format!(
                "cannot use {v} as {what}: it is not a string"
            ))),
        }
    };
    let text = as_str(&cv.1, "the input of a regular expression")?;
    if text.len() > REGEX_MAX_TEXT {
        return Err(fail(format!(
            "regular expressions run over strings of at most {} KiB",
            REGEX_MAX_TEXT >> 10
        )));
    }
    let (re, flags) = compile_regex(
        &as_str(&re, "a regular expression")?,
        &as_str(&flags, "regex flags")?,
    )
    .map_err(fail)?;

    let mut chars = CharOffsets::new(&text);
    let mut out = Vec::new();
    let mut last = 0;
    for caps in re.captures_iter(&text) {
        tick();
        let Some(whole) = caps.get(0) else { continue };
        if flags.ignore_empty && whole.as_str().is_empty() {
            continue;
        }
        if between {
            out.push(V::string(text[last..whole.start()].to_string()));
            last = whole.end();
        }
        if matches {
            let groups = caps
                .iter()
                .zip(re.capture_names())
                .filter_map(|(m, name)| Some((m?, name)))
                .map(|(m, name)| {
                    let mut fields = vec![
                        ("offset", V::from(chars.at(m.start()))),
                        ("length", V::from(m.as_str().chars().count())),
                        ("string", V::string(m.as_str().to_string())),
                    ];
                    if let Some(name) = name {
                        fields.push(("name", V::string(name.to_string())));
                    }
                    object(fields)
                })
                .collect::<Result<Vec<V>, Error<V>>>()?;
            out.push(groups.into_iter().collect());
        }
        if !flags.global {
            break;
        }
    }
    if between {
        out.push(V::string(text[last..].to_string()));
    }
    Ok(out.into_iter().collect())
}

fn object(fields: Vec<(&str, V)>) -> ValR<V> {
    <V as jaq_core::ValT>::from_map(
        fields
            .into_iter()
            .map(|(k, x)| (V::string(k.to_string()), x)),
    )
}

/// Byte offsets to character offsets, for offsets asked in increasing order.
struct CharOffsets<'s> {
    text: &'s str,
    byte: usize,
    chars: usize,
}

impl<'s> CharOffsets<'s> {
    fn new(text: &'s str) -> Self {
        CharOffsets {
            text,
            byte: 0,
            chars: 0,
        }
    }

    fn at(&mut self, byte: usize) -> usize {
        if byte < self.byte {
            self.byte = 0;
            self.chars = 0;
        }
        self.chars += self
            .text
            .get(self.byte..byte)
            .map_or(0, |s| s.chars().count());
        self.byte = byte;
        self.chars
    }
}
