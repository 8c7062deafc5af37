//! jq programs of calculation properties, run in-process by jaq inside a budget of time, stack
//! and size.
//!
//! This module is the only user of the jaq crates (pre-1.0, pinned): an upgrade touches
//! `src/jq.rs` and `src/jq/` only.
//!
//! How a run is kept in bounds, since a blueprint author writes the program:
//! - Time: every interpreter step and every operation on a value counts as work; every 128 units
//!   the run looks at the clock, and past its deadline it is stopped by unwinding
//!   ([`meter`]), which also stops loops that produce nothing (`def f: f; f`).
//!   Operations of the interpreter's own natives that do not count (a regular expression
//!   search, copying a string) are bounded by the size limits below.
//! - Stack: runs execute on a stack of known size (`stacker`), and the interpreter may recurse
//!   through [`INTERPRETER_STACK`] bytes of it; values nest at most 256 levels, so the natives
//!   that recurse over a value (printing, comparing, dropping) stay within the rest.
//! - Size: no value weighs more than about 16 MiB of JSON ([`value`]); numbers stay
//!   machine-sized; `env`, the local time zone, modules and input files are not available.
//!
//! Architecture invariant: the workspace builds with `panic = "unwind"` (checked below); a run is
//! stopped by unwinding, and no jaq code runs outside [`JqProgram::run`]'s `catch_unwind`.
//!
//! Concurrency: a [`JqProgram`] is compiled once and shared between threads; each run happens
//! on the calling thread, which it occupies for at most about [`Limits::time`].

mod meter;
mod natives;
mod value;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jaq_core::data::{DataT, HasLut};
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars};
use serde_json::Value;

use meter::Stop;
use value::V;

#[cfg(not(panic = "unwind"))]
compile_error!("gantry-catalog stops jq programs by unwinding: build with panic = \"unwind\"");

/// How long a run may take and how large its result may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub time: Duration,
    /// The largest result, as bytes of compact JSON.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_millis(50),
            max_output_bytes: 64 << 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JqError {
    #[error("the jq program ran longer than {} and was stopped", duration_text(*.0))]
    Timeout(Duration),
    #[error("the jq program's result is larger than {} bytes", .0)]
    OutputTooLarge(usize),
    #[error("{0}")]
    Failed(String),
}

fn duration_text(d: Duration) -> String {
    if d.as_millis() > 0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} µs", d.as_micros())
    }
}

/// The longest program accepted: calculations are one-liners, and jaq's parser recurses once per
/// nesting level on a stack of [`COMPILE_STACK`] bytes.
const MAX_PROGRAM_BYTES: usize = 8 << 10;
const COMPILE_STACK: usize = 256 << 20;
/// How much stack the interpreter may use for its recursion (`def f: [f]; f`): about 800
/// levels of a recursive definition in a release build.
const INTERPRETER_STACK: usize = 2 << 20;
/// Stack kept free for the natives below the deepest interpreter frame.
const NATIVE_STACK: usize = 1 << 20;
/// A run that starts with less stack left than this runs on a new stack of [`RUN_STACK`].
const RED_ZONE: usize = INTERPRETER_STACK + NATIVE_STACK + (256 << 10);
const RUN_STACK: usize = 2 * RED_ZONE;

/// Runs `f` with enough stack for jq runs, so the runs inside it do not each set up a stack of
/// their own (about 13 µs a run on a thread with the default 2 MiB stack, against 4 µs for the
/// run itself): wrap a batch of calculations in it, or run them on threads of 8 MiB or more.
pub fn with_run_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, RUN_STACK, f)
}
/// Error messages quote values; this much of them is enough.
const MAX_MESSAGE_CHARS: usize = 300;

/// The data type of Gantry's jq runs: [`V`] values, and the look-up table of the program, whose
/// every access counts an interpreter step.
enum Gantry {}

impl DataT for Gantry {
    type V<'a> = V;
    type Data<'a> = Steps<'a>;
}

#[derive(Clone)]
struct Steps<'a>(&'a jaq_core::Lut<Gantry>);

impl<'a> HasLut<'a, Gantry> for Steps<'a> {
    fn lut(&self) -> &'a jaq_core::Lut<Gantry> {
        meter::step();
        self.0
    }
}

/// A compiled jq program: cheap to clone, shareable between threads.
#[derive(Clone)]
pub struct JqProgram(Arc<Compiled>);

struct Compiled {
    source: String,
    filter: jaq_core::Filter<Gantry>,
}

impl fmt::Debug for JqProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JqProgram").field(&self.0.source).finish()
    }
}

impl JqProgram {
    /// Parses and compiles `src`; the error lists every problem found, with its line and column.
    pub fn compile(src: &str) -> Result<JqProgram, String> {
        if src.trim().is_empty() {
            return Err("the jq program is empty".into());
        }
        if src.len() > MAX_PROGRAM_BYTES {
            return Err(format!(
                "the jq program is longer than {} KiB",
                MAX_PROGRAM_BYTES >> 10
            ));
        }
        let filter = stacker::grow(COMPILE_STACK, || compile(src))?;
        Ok(JqProgram(Arc::new(Compiled {
            source: src.to_string(),
            filter,
        })))
    }

    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// Runs the program on `input` and returns its value: null when it gives none, an error
    /// when it gives more than one (collect them with `[...]` or keep one with `first(...)`).
    pub fn run(&self, input: &Value, limits: &Limits) -> Result<Value, JqError> {
        let start = Instant::now();
        let deadline = start
            .checked_add(limits.time)
            .unwrap_or_else(|| start + Duration::from_secs(24 * 3600));
        with_run_stack(|| {
            let armed = meter::arm(deadline, INTERPRETER_STACK);
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.eval(input, limits)));
            drop(armed);
            match result {
                Ok(r) => r,
                Err(payload) => Err(match payload.downcast::<Stop>() {
                    Ok(stop) => match *stop {
                        Stop::Timeout => JqError::Timeout(limits.time),
                        Stop::TooDeep => JqError::Failed(
                            "the jq program recursed too deeply and was stopped".into(),
                        ),
                        Stop::TooLarge(what) => JqError::Failed(format!("{what} and was stopped")),
                    },
                    Err(_) => JqError::Failed(
                        "the jq interpreter failed on this program (a bug in jaq)".into(),
                    ),
                }),
            }
        })
    }

    fn eval(&self, input: &Value, limits: &Limits) -> Result<Value, JqError> {
        let input = V::from_json(input).map_err(JqError::Failed)?;
        let filter = &self.0.filter;
        let ctx = Ctx::<Gantry>::new(Steps(&filter.lut), Vars::new([]));
        let mut outputs = filter.id.run((ctx, input));
        let first = match outputs.next() {
            None => return Ok(Value::Null),
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(failed(e)),
        };
        match outputs.next() {
            None => {}
            Some(Ok(second)) => {
                return Err(JqError::Failed(format!(
                    "the jq program gave more than one value ({}, {}, ...): \
                     collect them with [ ... ] or keep one with first( ... )",
                    clip(first.to_string(), 60),
                    clip(second.to_string(), 60)
                )))
            }
            Some(Err(e)) => return Err(failed(e)),
        }
        drop(outputs);
        // Weights undercount numbers (8) by at most 3 times: skip converting what cannot fit.
        if first.weight() > 8 * limits.max_output_bytes as u64 + 64 {
            return Err(JqError::OutputTooLarge(limits.max_output_bytes));
        }
        let out = first.to_json();
        let mut counter = ByteCounter(0);
        if serde_json::to_writer(&mut counter, &out).is_err() || counter.0 > limits.max_output_bytes
        {
            return Err(JqError::OutputTooLarge(limits.max_output_bytes));
        }
        Ok(out)
    }
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn clip(mut s: String, max_chars: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max_chars) {
        s.truncate(at);
        s.push('…');
    }
    s
}

fn failed(e: jaq_core::Exn<'_, V>) -> JqError {
    match e.get_err() {
        Ok(e) => {
            let v = e.into_val();
            let msg = match v.str_bytes() {
                Some(b) => String::from_utf8_lossy(b).into_owned(),
                None => v.to_string(),
            };
            JqError::Failed(format!(
                "the jq program failed: {}",
                clip(msg, MAX_MESSAGE_CHARS)
            ))
        }
        Err(e) => match e.get_halt() {
            Ok(code) => JqError::Failed(format!(
                "the jq program called halt (exit code {code}); a calculation gives a value instead"
            )),
            Err(_) => {
                JqError::Failed("the jq interpreter failed on this program (a bug in jaq)".into())
            }
        },
    }
}

fn compile(src: &str) -> Result<jaq_core::Filter<Gantry>, String> {
    let ours = load::parse(natives::DEFS, |p| p.defs()).unwrap_or_default();
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .chain(ours);
    let arena = Arena::default();
    let modules = Loader::new(defs)
        .load(
            &arena,
            File {
                code: src,
                path: (),
            },
        )
        .map_err(|errs| {
            let mut msgs = Vec::new();
            for (_, e) in errs {
                match e {
                    load::Error::Io(_) => {
                        msgs.push("jq modules cannot be imported or included here".to_string())
                    }
                    load::Error::Lex(es) => {
                        for (expect, at) in es {
                            // An unclosed bracket is best shown where it opens.
                            let at = match expect {
                                load::lex::Expect::Delim(open) => open,
                                _ => at,
                            };
                            msgs.push(format!(
                                "{}: expected {}",
                                position(src, at),
                                lex_expect(&expect)
                            ));
                        }
                    }
                    load::Error::Parse(es) => {
                        for (expect, found) in es {
                            let at = position(src, found);
                            let found = if found.is_empty() {
                                "the end of the program".to_string()
                            } else {
                                format!("`{}`", clip(found.to_string(), 20))
                            };
                            msgs.push(format!("{at}: expected {}, found {found}", expect.as_str()));
                        }
                    }
                }
            }
            msgs.join("; ")
        })?;
    Compiler::default()
        .with_funs(natives::funs())
        .compile(modules)
        .map_err(|errs| {
            let mut msgs = Vec::new();
            for (_, es) in errs {
                for (name, undefined) in es {
                    let what = match undefined {
                        jaq_core::compile::Undefined::Filter(arity) => {
                            format!("the filter `{name}/{arity}` is not defined")
                        }
                        other => format!("the {} `{name}` is not defined", other.as_str()),
                    };
                    msgs.push(format!("{}: {what}", position(src, name)));
                }
            }
            msgs.join("; ")
        })
}

fn lex_expect(e: &load::lex::Expect<&str>) -> String {
    use load::lex::Expect;
    match e {
        Expect::Digit => "a digit".into(),
        Expect::Ident => "a name".into(),
        Expect::Delim(d) => format!("the closing of `{d}`"),
        Expect::Escape => "a string escape sequence".into(),
        Expect::Unicode => "4 hexadecimal digits".into(),
        Expect::Token => "a token".into(),
        _ => "something else".into(),
    }
}

/// "line L, column C" of `at`, a slice of `src`.
fn position(src: &str, at: &str) -> String {
    let offset = (at.as_ptr() as usize).wrapping_sub(src.as_ptr() as usize);
    match src.get(..offset) {
        Some(before) => {
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}")
        }
        None => "at the end".into(),
    }
}
