//! The embedded JavaScript engine: QuickJS (through `rquickjs`), one
//! runtime per thread that uses it. Every evaluation runs under a step
//! budget (the interpreter and the regex backtracker both poll an
//! interrupt handler every 10,000 steps) and the runtime under a memory
//! limit. The context has the language's built-ins only: no module loader,
//! no `std`/`os`, so no file system, network or process is reachable.
//!
//! It must not block on anything but its own computation, and it never
//! outlives its thread: a [`Budget`] is what bounds a call.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use rquickjs::context::intrinsic::{Eval, RegExp, RegExpCompiler};
use rquickjs::function::This;
use rquickjs::{CatchResultExt, Context, Ctx, Function, Object, Persistent, Runtime};

/// Steps between two polls of the interrupt handler, in QuickJS's
/// interpreter and its regex backtracker alike (`INTERRUPT_COUNTER_INIT`).
pub const STEPS_PER_POLL: u64 = 10_000;

/// Memory one thread's runtime may hold.
const MEMORY_LIMIT: usize = 64 * 1024 * 1024;
/// Compiled patterns kept per thread before the cache starts over.
const REGEX_CACHE: usize = 512;

/// How much work one call may do, in interrupt polls of
/// [`STEPS_PER_POLL`] steps each: deterministic, so the same pattern on the
/// same text gives up at the same point on every machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    polls: u64,
}

impl Budget {
    /// A budget of about `steps` steps (rounded up to whole polls).
    pub const fn steps(steps: u64) -> Self {
        Self {
            polls: steps.div_ceil(STEPS_PER_POLL),
        }
    }

    /// The steps it allows.
    pub const fn allowed_steps(self) -> u64 {
        self.polls * STEPS_PER_POLL
    }
}

/// Why a call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The budget ran out before the call finished.
    #[error("gave up after {steps} steps (its budget)")]
    Budget {
        /// The steps the budget allowed.
        steps: u64,
    },
    /// JavaScript threw (a syntax error, a type error, out of memory).
    #[error("{0}")]
    Thrown(String),
}

/// One thread's runtime, context and compiled patterns. Field order is
/// drop order: saved values go before the context and the runtime.
struct Engine {
    regexes: HashMap<String, Persistent<Object<'static>>>,
    new_regex: Persistent<Function<'static>>,
    context: Context,
    /// Polls left in the current call.
    left: Rc<Cell<i64>>,
    _runtime: Runtime,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

impl Engine {
    fn new() -> Result<Self, EngineError> {
        let thrown = |e: rquickjs::Error| EngineError::Thrown(e.to_string());
        let runtime = Runtime::new().map_err(thrown)?;
        runtime.set_memory_limit(MEMORY_LIMIT);
        let left = Rc::new(Cell::new(0i64));
        let polls = left.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || {
            polls.set(polls.get() - 1);
            polls.get() < 0
        })));
        let context = Context::builder()
            .with::<(Eval, RegExpCompiler, RegExp)>()
            .build(&runtime)
            .map_err(thrown)?;
        left.set(i64::MAX);
        let new_regex = context.with(|ctx| {
            let f: Function<'_> = ctx.eval("(p) => new RegExp(p)").map_err(thrown)?;
            Ok::<_, EngineError>(Persistent::save(&ctx, f))
        })?;
        Ok(Self {
            regexes: HashMap::new(),
            new_regex,
            context,
            left,
            _runtime: runtime,
        })
    }

    /// `new RegExp(pattern).test(text)` within `budget`.
    fn regex_test(
        &mut self,
        pattern: &str,
        text: &str,
        budget: Budget,
    ) -> Result<bool, EngineError> {
        self.left.set(budget.polls as i64);
        if self.regexes.len() >= REGEX_CACHE && !self.regexes.contains_key(pattern) {
            self.regexes.clear();
        }
        let (regexes, new_regex, left) = (&mut self.regexes, &self.new_regex, &self.left);
        self.context.with(|ctx| {
            let re = match regexes.get(pattern) {
                Some(re) => re.clone().restore(&ctx).map_err(|e| thrown(&ctx, e))?,
                None => {
                    let make = new_regex
                        .clone()
                        .restore(&ctx)
                        .map_err(|e| thrown(&ctx, e))?;
                    let re: Object<'_> = make
                        .call((pattern,))
                        .catch(&ctx)
                        .map_err(|e| EngineError::Thrown(first_line(&e.to_string())))?;
                    regexes.insert(pattern.to_owned(), Persistent::save(&ctx, re.clone()));
                    re
                }
            };
            let test: Function<'_> = re.get("test").map_err(|e| thrown(&ctx, e))?;
            match test.call((This(re), text)).catch(&ctx) {
                Ok(found) => Ok(found),
                Err(_) if left.get() < 0 => Err(EngineError::Budget {
                    steps: budget.allowed_steps(),
                }),
                Err(e) => Err(EngineError::Thrown(first_line(&e.to_string()))),
            }
        })
    }
}

fn thrown(ctx: &Ctx<'_>, e: rquickjs::Error) -> EngineError {
    let caught = rquickjs::CaughtError::from_error(ctx, e);
    EngineError::Thrown(first_line(&caught.to_string()))
}

/// An exception's message without QuickJS's stack lines.
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_owned()
}

/// Runs `f` on this thread's engine, creating it on first use.
fn with_engine<T>(f: impl FnOnce(&mut Engine) -> Result<T, EngineError>) -> Result<T, EngineError> {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Engine::new()?);
        }
        let engine = slot.as_mut().expect("just created");
        f(engine)
    })
}

/// `new RegExp(pattern).test(text)` (no flags) on this thread's engine,
/// giving up past `budget`. Compiled patterns are cached per thread.
pub fn regex_test(pattern: &str, text: &str, budget: Budget) -> Result<bool, EngineError> {
    with_engine(|e| e.regex_test(pattern, text, budget))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Budget = Budget::steps(10_000_000);

    #[test]
    fn a_catastrophic_pattern_gives_up_at_its_budget_and_the_engine_still_works() {
        let text = format!("{}b", "a".repeat(28));
        assert_eq!(
            regex_test("(a|a?)+$", &text, BUDGET),
            Err(EngineError::Budget { steps: 10_000_000 })
        );
        // The budget is per call: the next one starts afresh.
        assert_eq!(regex_test("(a|a?)+$", "aaa", BUDGET), Ok(true));
        assert_eq!(regex_test("^a+b$", &text, BUDGET), Ok(true));
    }

    #[test]
    fn the_budget_is_counted_in_steps_not_time() {
        // Enough steps for a short catastrophic input, not for a long one.
        let small = Budget::steps(50_000_000);
        assert_eq!(
            regex_test("(a+)+$", &format!("{}!", "a".repeat(16)), small),
            Ok(false)
        );
        assert!(matches!(
            regex_test("(a+)+$", &format!("{}!", "a".repeat(40)), small),
            Err(EngineError::Budget { .. })
        ));
        assert_eq!(Budget::steps(1).allowed_steps(), STEPS_PER_POLL);
    }

    #[test]
    fn invalid_patterns_throw_and_nothing_outside_the_language_exists() {
        assert!(
            matches!(regex_test("(", "", BUDGET), Err(EngineError::Thrown(m)) if m.contains("expecting ')'"))
        );
        let globals = with_engine(|e| {
            e.left.set(i64::MAX);
            e.context.with(|ctx| {
                let v: String = ctx
                    .eval("[typeof require, typeof process, typeof std, typeof os, typeof fetch].join()")
                    .map_err(|e| thrown(&ctx, e))?;
                Ok(v)
            })
        });
        assert_eq!(
            globals.unwrap(),
            "undefined,undefined,undefined,undefined,undefined"
        );
    }

    #[test]
    fn the_cache_starts_over_when_full_and_answers_stay_right() {
        for i in 0..(REGEX_CACHE + 10) {
            let p = format!("^x{i}$");
            assert_eq!(regex_test(&p, &format!("x{i}"), BUDGET), Ok(true));
        }
        let size = ENGINE.with(|c| c.borrow().as_ref().map_or(0, |e| e.regexes.len()));
        assert!(size <= REGEX_CACHE, "{size}");
    }
}
