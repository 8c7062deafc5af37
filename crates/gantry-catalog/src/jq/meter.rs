//! The budget of the jq run on this thread: its deadline, how deep its interpreter may recurse,
//! and the one way a run is stopped early.
//!
//! A run is stopped by unwinding with a [`Stop`] payload (`std::panic::resume_unwind`, which does
//! not call the panic hook), caught by `catch_unwind` in [`super::JqProgram::run`]: the interpreter
//! has no other exit from a loop that produces no value, such as `def f: f; f`.
//! Architecture invariant: nothing but [`super::JqProgram::run`] arms the meter, and every
//! [`stop`] happens while it is armed, so a `Stop` never unwinds into code outside the jq module.

use std::cell::Cell;
use std::time::Instant;

/// Why a run was stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
    Timeout,
    /// The interpreter recursed deeper than its stack budget.
    TooDeep,
    /// A value grew past a limit; the message names which.
    TooLarge(String),
}

/// How many steps pass between two looks at the clock (reading it costs about 20 ns).
const STEPS_PER_CLOCK_CHECK: u32 = 128;

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
    static STEPS: Cell<u32> = const { Cell::new(0) };
    /// The stack address at the start of the run and how far from it the interpreter may go.
    static STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// Arms the meter for one run on this thread; disarms it when dropped, also while unwinding.
pub(super) struct Armed(());

pub(super) fn arm(deadline: Instant, stack_budget: usize) -> Armed {
    DEADLINE.set(Some(deadline));
    STEPS.set(0);
    STACK.set((stack_address(), stack_budget));
    Armed(())
}

impl Drop for Armed {
    fn drop(&mut self) {
        DEADLINE.set(None);
        STACK.set((0, 0));
    }
}

fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Stops the run.
pub(super) fn stop(why: Stop) -> ! {
    std::panic::resume_unwind(Box::new(why))
}

/// Counts one unit of work and stops the run once its deadline has passed.
#[inline]
pub(super) fn tick() {
    let n = STEPS.get().wrapping_add(1);
    STEPS.set(n);
    if n.is_multiple_of(STEPS_PER_CLOCK_CHECK) {
        check_clock();
    }
}

#[cold]
fn check_clock() {
    if let Some(deadline) = DEADLINE.get() {
        if Instant::now() >= deadline {
            stop(Stop::Timeout);
        }
    }
}

/// One step of the interpreter: counts it and stops a run whose recursion went too deep.
#[inline]
pub(super) fn step() {
    tick();
    let (base, budget) = STACK.get();
    if budget != 0 && base.abs_diff(stack_address()) > budget {
        stop(Stop::TooDeep);
    }
}

/// Stops the run because a value outgrew a limit (`what` says which one).
#[cold]
pub(super) fn too_large(what: impl Into<String>) -> ! {
    stop(Stop::TooLarge(what.into()))
}
