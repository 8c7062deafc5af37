//! The value type of Gantry's jq runs: jaq's JSON value, plus how deep it may be nested and
//! about how large it is as JSON.
//!
//! Every way the interpreter builds a value goes through this type, so no value nests deeper than
//! [`MAX_DEPTH`] (the interpreter's natives recurse on the Rust stack when they print, compare or
//! drop a value) and none weighs more than [`MAX_WEIGHT`] (values share their parts, so
//! `[$a, $a, $a]` costs three times `$a` to print though it takes no more memory).
//! Every operation also counts as work for the run's deadline ([`meter::tick`]).

use std::cell::Cell;
use std::cmp::Ordering;
use std::fmt;

use jaq_core::path::Opt;
use jaq_core::val::Range;
use jaq_core::{Error, Exn, ValR, ValX};
use jaq_json::{Map, Num, Val};
use serde_json::Value;

use super::meter::{self, tick};

/// The deepest nesting of arrays and objects a run may build (JSON parsed by the catalog nests at
/// most 128 levels).
pub(super) const MAX_DEPTH: u16 = 256;
/// The largest value a run may build, as bytes of JSON, roughly.
pub(super) const MAX_WEIGHT: u64 = 16 << 20;
const UNKNOWN: u64 = u64::MAX;

#[derive(Clone, Debug)]
pub(super) struct V {
    pub(super) val: Val,
    /// At least the nesting depth of `val`: 0 for a scalar.
    depth: u16,
    /// The weight of `val`, or [`UNKNOWN`] until asked for (a part taken out of a larger value).
    weight: Cell<u64>,
}

fn scalar_weight(v: &Val) -> Option<u64> {
    Some(match v {
        Val::Null => 4,
        Val::Bool(_) => 5,
        Val::Num(_) => 8,
        Val::BStr(b) | Val::TStr(b) => b.len() as u64 + 2,
        Val::Arr(_) | Val::Obj(_) => return None,
    })
}

/// The nesting depth of `v`, which came out of values of bounded depth.
fn measure_depth(v: &Val) -> u16 {
    match v {
        Val::Arr(a) => 1 + a.iter().map(measure_depth).max().unwrap_or(0),
        Val::Obj(o) => {
            1 + o
                .iter()
                .map(|(k, x)| measure_depth(k).max(measure_depth(x)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// The weight of `v`; stops counting once past [`MAX_WEIGHT`].
fn measure(v: &Val) -> u64 {
    if let Some(w) = scalar_weight(v) {
        return w;
    }
    let mut total = 2;
    match v {
        Val::Arr(a) => {
            for x in a.iter() {
                tick();
                total += measure(x) + 1;
                if total > MAX_WEIGHT {
                    break;
                }
            }
        }
        Val::Obj(o) => {
            for (k, x) in o.iter() {
                tick();
                total += measure(k) + measure(x) + 2;
                if total > MAX_WEIGHT {
                    break;
                }
            }
        }
        _ => {}
    }
    total
}

fn check_depth(depth: u16) -> u16 {
    if depth > MAX_DEPTH {
        meter::too_large(format!(
            "the jq program built a value nested deeper than {MAX_DEPTH} levels"
        ));
    }
    depth
}

fn check_weight(weight: u64) -> u64 {
    if weight > MAX_WEIGHT {
        meter::too_large(format!(
            "the jq program built a value larger than {} MiB",
            MAX_WEIGHT >> 20
        ));
    }
    weight
}

impl V {
    /// A value whose depth and weight are known.
    fn built(val: Val, depth: u16, weight: u64) -> V {
        V {
            val,
            depth: check_depth(depth),
            weight: Cell::new(check_weight(weight)),
        }
    }

    /// A scalar (or string) value; any other value is measured.
    pub(super) fn scalar(val: Val) -> V {
        match scalar_weight(&val) {
            Some(w) => V::built(small_num(val), 0, w),
            None => V::measured(val),
        }
    }

    /// A value whose depth and weight are not known yet.
    fn measured(val: Val) -> V {
        let (d, w) = (measure_depth(&val), measure(&val));
        V::built(val, d, w)
    }

    /// A part of a value nested at most `parent_depth` deep.
    fn part(val: Val, parent_depth: u16) -> V {
        match scalar_weight(&val) {
            Some(w) => V {
                val,
                depth: 0,
                weight: Cell::new(w),
            },
            None => V {
                val,
                depth: parent_depth.saturating_sub(1).max(1),
                weight: Cell::new(UNKNOWN),
            },
        }
    }

    pub(super) fn weight(&self) -> u64 {
        let w = self.weight.get();
        if w != UNKNOWN {
            return w;
        }
        let w = measure(&self.val);
        self.weight.set(w);
        w
    }

    pub(super) fn string(s: String) -> V {
        V::scalar(Val::from(s))
    }

    pub(super) fn str_bytes(&self) -> Option<&[u8]> {
        match &self.val {
            Val::TStr(b) | Val::BStr(b) => Some(b),
            _ => None,
        }
    }

    /// Converts JSON from the catalog; refuses JSON nested deeper than [`MAX_DEPTH`].
    pub(super) fn from_json(v: &Value) -> Result<V, String> {
        fn go(v: &Value, level: u16) -> Result<(Val, u16, u64), String> {
            if level > MAX_DEPTH {
                return Err(format!(
                    "the input is nested deeper than {MAX_DEPTH} levels"
                ));
            }
            Ok(match v {
                Value::Null => (Val::Null, 0, 4),
                Value::Bool(b) => (Val::Bool(*b), 0, 5),
                Value::Number(n) => (Val::Num(num_of(n)), 0, 8),
                Value::String(s) => (Val::from(s.clone()), 0, s.len() as u64 + 2),
                Value::Array(a) => {
                    let (mut depth, mut weight) = (0, 2);
                    let mut items = Vec::with_capacity(a.len());
                    for x in a {
                        let (x, d, w) = go(x, level + 1)?;
                        depth = depth.max(d);
                        weight += w + 1;
                        items.push(x);
                    }
                    (Val::Arr(items.into()), depth + 1, weight)
                }
                Value::Object(o) => {
                    let (mut depth, mut weight) = (0, 2);
                    let mut map = Map::default();
                    for (k, x) in o {
                        let (x, d, w) = go(x, level + 1)?;
                        depth = depth.max(d);
                        weight += w + k.len() as u64 + 4;
                        map.insert(Val::from(k.clone()), x);
                    }
                    (Val::obj(map), depth + 1, weight)
                }
            })
        }
        let (val, depth, weight) = go(v, 0)?;
        if weight > MAX_WEIGHT {
            return Err(format!("the input is larger than {} MiB", MAX_WEIGHT >> 20));
        }
        Ok(V {
            val,
            depth,
            weight: Cell::new(weight),
        })
    }

    /// Converts to JSON: NaN and infinities become null (as jq prints them), object keys that
    /// are not strings become their JSON text.
    pub(super) fn to_json(&self) -> Value {
        fn go(v: &Val) -> Value {
            match v {
                Val::Null => Value::Null,
                Val::Bool(b) => Value::Bool(*b),
                Val::Num(n) => json_num(n),
                Val::TStr(b) | Val::BStr(b) => Value::String(String::from_utf8_lossy(b).into()),
                Val::Arr(a) => Value::Array(a.iter().map(go).collect()),
                Val::Obj(o) => Value::Object(
                    o.iter()
                        .map(|(k, x)| {
                            let key = match k {
                                Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into(),
                                other => other.to_string(),
                            };
                            (key, go(x))
                        })
                        .collect(),
                ),
            }
        }
        go(&self.val)
    }

    pub(super) fn as_f64(&self) -> Option<f64> {
        match &self.val {
            Val::Num(n) => Some(num_f64(n)),
            _ => None,
        }
    }
}

fn num_of(n: &serde_json::Number) -> Num {
    if let Some(i) = n.as_i64().and_then(|i| isize::try_from(i).ok()) {
        Num::Int(i)
    } else if let Some(u) = n.as_u64() {
        Num::from_integral(u)
    } else {
        Num::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

fn num_f64(n: &Num) -> f64 {
    match n {
        Num::Int(i) => *i as f64,
        Num::Float(f) => *f,
        Num::BigInt(_) | Num::Dec(_) => n.to_string().parse().unwrap_or(f64::NAN),
    }
}

fn json_num(n: &Num) -> Value {
    match n {
        Num::Int(i) => Value::from(*i as i64),
        other => {
            let f = num_f64(other);
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
    }
}

/// Numbers stay machine-sized: jaq would otherwise grow a big integer on every overflow, and a
/// loop squaring one would spend seconds in a single multiplication.
fn small_num(v: Val) -> Val {
    match v {
        Val::Num(n @ Num::BigInt(_)) => Val::Num(Num::Float(num_f64(&n))),
        other => other,
    }
}

fn err(e: Error<Val>) -> Error<V> {
    Error::new(V::scalar(e.into_val()))
}

fn exn<'a>(e: Exn<'a, Val>) -> Exn<'a, V> {
    match e.get_err() {
        Ok(e) => Exn::from(err(e)),
        Err(_) => Exn::from(Error::str("the jq interpreter failed")),
    }
}

impl fmt::Display for V {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.val.fmt(f)
    }
}

impl From<bool> for V {
    fn from(b: bool) -> V {
        V::scalar(Val::Bool(b))
    }
}

impl From<isize> for V {
    fn from(i: isize) -> V {
        V::scalar(Val::from(i))
    }
}

impl From<usize> for V {
    fn from(i: usize) -> V {
        V::scalar(small_num(Val::from(i)))
    }
}

impl From<f64> for V {
    fn from(f: f64) -> V {
        V::scalar(Val::from(f))
    }
}

impl From<String> for V {
    fn from(s: String) -> V {
        V::scalar(Val::from(s))
    }
}

impl From<Range<V>> for V {
    fn from(r: Range<V>) -> V {
        let start = r.start.map(|v| v.val);
        let end = r.end.map(|v| v.val);
        V::measured(Val::from(start..end))
    }
}

/// Builds an array, counting each item as work and checking the limits as it grows.
impl FromIterator<V> for V {
    fn from_iter<T: IntoIterator<Item = V>>(iter: T) -> V {
        let (mut depth, mut weight) = (0u16, 2u64);
        let mut items = Vec::new();
        for x in iter {
            tick();
            depth = depth.max(x.depth);
            weight = check_weight(weight + x.weight() + 1);
            items.push(x.val);
        }
        V::built(Val::Arr(items.into()), depth + 1, weight)
    }
}

impl PartialEq for V {
    fn eq(&self, other: &V) -> bool {
        tick();
        self.val == other.val
    }
}

impl Eq for V {}

impl PartialOrd for V {
    fn partial_cmp(&self, other: &V) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for V {
    fn cmp(&self, other: &V) -> Ordering {
        tick();
        self.val.cmp(&other.val)
    }
}

/// The result of an operation on two values, of known size.
fn combine(r: ValR<Val>, depth: u16, weight: u64) -> ValR<V> {
    r.map(|v| match scalar_weight(&v) {
        Some(w) => V::built(small_num(v), 0, w),
        None => V::built(v, depth, weight),
    })
    .map_err(err)
}

/// The result of an operation on two values, measured.
fn measured(r: ValR<Val>) -> ValR<V> {
    r.map(V::scalar).map_err(err)
}

impl std::ops::Add for V {
    type Output = ValR<V>;
    fn add(self, rhs: V) -> ValR<V> {
        tick();
        let depth = self.depth.max(rhs.depth);
        let weight = match (&self.val, &rhs.val) {
            (Val::Obj(l), Val::Obj(r)) => {
                // Keys of `rhs` replace those of `self`: count what leaves.
                let mut w = self.weight() + rhs.weight();
                for (k, _) in r.iter() {
                    tick();
                    if let Some(old) = l.get(k) {
                        w = w.saturating_sub(measure(k) + measure(old) + 2);
                    }
                }
                w
            }
            _ => self.weight() + rhs.weight(),
        };
        check_weight(weight);
        combine(self.val + rhs.val, depth, weight)
    }
}

impl std::ops::Sub for V {
    type Output = ValR<V>;
    fn sub(self, rhs: V) -> ValR<V> {
        tick();
        measured(self.val - rhs.val)
    }
}

impl std::ops::Mul for V {
    type Output = ValR<V>;
    fn mul(self, rhs: V) -> ValR<V> {
        tick();
        // Repeating a string: check the size before jaq allocates it.
        let repeat = |s: &V, n: &V| -> Option<u64> {
            let len = s.str_bytes()?.len() as u64;
            let n = n.as_f64()?;
            Some(if n > 0.0 {
                (len as f64 * n.min(1e18)) as u64
            } else {
                0
            })
        };
        if let Some(len) = repeat(&self, &rhs).or_else(|| repeat(&rhs, &self)) {
            check_weight(len + 2);
        }
        measured(self.val * rhs.val)
    }
}

impl std::ops::Div for V {
    type Output = ValR<V>;
    fn div(self, rhs: V) -> ValR<V> {
        tick();
        measured(self.val / rhs.val)
    }
}

impl std::ops::Rem for V {
    type Output = ValR<V>;
    fn rem(self, rhs: V) -> ValR<V> {
        tick();
        combine(self.val % rhs.val, 0, 8)
    }
}

impl std::ops::Neg for V {
    type Output = ValR<V>;
    fn neg(self) -> ValR<V> {
        tick();
        combine(-self.val, 0, 8)
    }
}

impl jaq_core::ValT for V {
    fn from_num(n: &str) -> ValR<V> {
        Val::from_num(n).map(V::scalar).map_err(err)
    }

    fn from_map<I: IntoIterator<Item = (V, V)>>(iter: I) -> ValR<V> {
        let (mut depth, mut weight) = (0u16, 2u64);
        let mut map = Map::default();
        for (k, x) in iter {
            tick();
            depth = depth.max(k.depth).max(x.depth);
            weight = check_weight(weight + k.weight() + x.weight() + 2);
            map.insert(k.val, x.val);
        }
        Ok(V::built(Val::obj(map), depth + 1, weight))
    }

    fn key_values(self) -> Box<dyn Iterator<Item = ValR<(V, V), V>>> {
        let depth = self.depth;
        Box::new(self.val.key_values().map(move |r| {
            tick();
            r.map(|(k, x)| (V::part(k, depth), V::part(x, depth)))
                .map_err(err)
        }))
    }

    fn values(self) -> Box<dyn Iterator<Item = ValR<V>>> {
        let depth = self.depth;
        Box::new(self.val.values().map(move |r| {
            tick();
            r.map(|x| V::part(x, depth)).map_err(err)
        }))
    }

    fn index(self, index: &V) -> ValR<V> {
        tick();
        match (&self.val, &index.val) {
            // `null | .a.b.c` is null, but a path expression over it grows one key per step:
            // count them as depth, so a path cannot grow without end.
            (Val::Null, _) => Ok(V {
                val: Val::Null,
                depth: check_depth(self.depth + 1),
                weight: Cell::new(4),
            }),
            (Val::Arr(x), Val::Arr(y)) if !y.is_empty() => Ok(array_indices(x, y)),
            _ => {
                let depth = self.depth;
                self.val
                    .index(&index.val)
                    .map(|x| V::part(x, depth))
                    .map_err(err)
            }
        }
    }

    fn range(self, range: Range<&V>) -> ValR<V> {
        tick();
        let depth = self.depth;
        let range = range.start.map(|v| &v.val)..range.end.map(|v| &v.val);
        self.val
            .range(range)
            .map(|x| match scalar_weight(&x) {
                Some(w) => V::built(x, 0, w),
                None => V {
                    val: x,
                    depth,
                    weight: Cell::new(UNKNOWN),
                },
            })
            .map_err(err)
    }

    fn map_values<'a, I: Iterator<Item = ValX<'a, V>>>(
        self,
        opt: Opt,
        f: impl Fn(V) -> I,
    ) -> ValX<'a, V> {
        tick();
        let updates = Updates::new();
        let depth = self.depth;
        let r = self
            .val
            .map_values(opt, |x| updates.apply(f(V::part(x, depth))));
        updates.finish(r, |val, u| {
            let weight = match &val {
                Val::Arr(a) => 2 + a.len() as u64 + u.weight.get(),
                Val::Obj(o) => 2 + u.weight.get() + o.keys().map(|k| measure(k) + 2).sum::<u64>(),
                other => measure(other),
            };
            V::built(val, depth.max(u.depth.get() + 1), weight)
        })
    }

    fn map_index<'a, I: Iterator<Item = ValX<'a, V>>>(
        self,
        index: &V,
        opt: Opt,
        f: impl Fn(V) -> I,
    ) -> ValX<'a, V> {
        tick();
        let updates = Updates::new();
        let (depth, before) = (self.depth, self.weight());
        let new_key = match &self.val {
            Val::Obj(o) if !o.contains_key(&index.val) => index.weight() + 2,
            _ => 0,
        };
        let r = self.val.map_index(&index.val, opt, |x| {
            if new_key == 0 {
                updates.removed.set(updates.removed.get() + measure(&x));
            }
            updates.apply(f(V::part(x, depth)))
        });
        updates.finish(r, |val, u| {
            let weight = (before + u.weight.get() + new_key).saturating_sub(u.removed.get());
            V::built(val, depth.max(u.depth.get() + 1), weight)
        })
    }

    fn map_range<'a, I: Iterator<Item = ValX<'a, V>>>(
        self,
        range: Range<&V>,
        opt: Opt,
        f: impl Fn(V) -> I,
    ) -> ValX<'a, V> {
        tick();
        let updates = Updates::new();
        let depth = self.depth;
        let range = range.start.map(|v| &v.val)..range.end.map(|v| &v.val);
        let r = self
            .val
            .map_range(range, opt, |x| updates.apply(f(V::part(x, depth + 1))));
        updates.finish(r, |val, _| V::measured(val))
    }

    fn as_bool(&self) -> bool {
        self.val.as_bool()
    }

    fn into_string(self) -> V {
        tick();
        match self.val {
            Val::TStr(_) => self,
            // The JSON text of a value is at most about six times its weight (escapes).
            val => V::scalar(val.into_string()),
        }
    }
}

/// What the update function of `map_values`, `map_index` and `map_range` produced, for the
/// depth and weight of the updated value, and the interpreter's exception, kept aside while jaq
/// (which only speaks its own value type) unwinds its update.
struct Updates<'a> {
    depth: Cell<u16>,
    weight: Cell<u64>,
    removed: Cell<u64>,
    exn: Cell<Option<Exn<'a, V>>>,
}

impl<'a> Updates<'a> {
    fn new() -> Self {
        Updates {
            depth: Cell::new(0),
            weight: Cell::new(0),
            removed: Cell::new(0),
            exn: Cell::new(None),
        }
    }

    fn apply<'u>(
        &'u self,
        ys: impl Iterator<Item = ValX<'a, V>> + 'u,
    ) -> impl Iterator<Item = ValX<'a, Val>> + 'u {
        ys.map(move |y| match y {
            Ok(y) => {
                tick();
                self.depth.set(self.depth.get().max(y.depth));
                self.weight
                    .set(check_weight(self.weight.get() + y.weight() + 1));
                Ok(y.val)
            }
            Err(e) => {
                self.exn.set(Some(e));
                Err(Exn::from(Error::new(Val::Null)))
            }
        })
    }

    fn finish(self, r: ValX<'a, Val>, make: impl FnOnce(Val, &Self) -> V) -> ValX<'a, V> {
        match r {
            Ok(val) => Ok(make(val, &self)),
            Err(e) => Err(self.exn.take().unwrap_or_else(|| exn(e))),
        }
    }
}

/// `[1,2,1,2] | .[[1,2]]`: the indices where `y` starts in `x`, counting each comparison.
fn array_indices(x: &[Val], y: &[Val]) -> V {
    let hits = x
        .windows(y.len())
        .enumerate()
        .filter(|(_, w)| {
            tick();
            *w == y
        })
        .map(|(i, _)| V::from(i));
    hits.collect()
}

impl jaq_std::ValT for V {
    fn into_seq<S: FromIterator<V>>(self) -> Result<S, V> {
        let depth = self.depth;
        match self.val {
            Val::Arr(a) => Ok(a.iter().map(|x| V::part(x.clone(), depth)).collect()),
            val => Err(V { val, ..self }),
        }
    }

    fn is_int(&self) -> bool {
        self.val.is_int()
    }

    fn as_isize(&self) -> Option<isize> {
        self.val.as_isize()
    }

    fn as_f64(&self) -> Option<f64> {
        V::as_f64(self)
    }

    fn is_utf8_str(&self) -> bool {
        self.val.is_utf8_str()
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        self.str_bytes()
    }

    fn as_sub_str(&self, sub: &[u8]) -> V {
        match &self.val {
            Val::TStr(_) | Val::BStr(_) => V::scalar(self.val.as_sub_str(sub)),
            _ => self.clone(),
        }
    }

    fn from_utf8_bytes(b: impl AsRef<[u8]> + Send + 'static) -> V {
        check_weight(b.as_ref().len() as u64 + 2);
        V::scalar(Val::from_utf8_bytes(b))
    }
}
