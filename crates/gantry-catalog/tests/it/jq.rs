//! jq calculations: results, errors, and programs that must be stopped.

use std::time::{Duration, Instant};

use gantry_catalog::jq::{JqError, JqProgram, Limits};
use serde_json::{json, Value};

#[allow(clippy::needless_pass_by_value)] // cases read as `run("..", json!(..))`
fn run(src: &str, input: Value) -> Result<Value, JqError> {
    let p = JqProgram::compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    p.run(&input, &Limits::default())
}

fn entity() -> Value {
    json!({"identifier": "api", "title": "API", "properties": {"a": 41, "tags": ["x", "y"], "url": "https://github.com/acme/api"}})
}

#[test]
fn simple_programs_give_their_value() {
    assert_eq!(run(".properties.a + 1", entity()), Ok(json!(42)));
    assert_eq!(run(".properties.tags | length", entity()), Ok(json!(2)));
    assert_eq!(
        run("[.properties.tags[] | ascii_upcase]", entity()),
        Ok(json!(["X", "Y"]))
    );
    assert_eq!(run(".title + \"!\"", entity()), Ok(json!("API!")));
    assert_eq!(
        run(".properties.url | test(\"github\")", entity()),
        Ok(json!(true))
    );
    assert_eq!(
        run(
            ".properties.url | capture(\"github.com/(?<org>[^/]+)\").org",
            entity()
        ),
        Ok(json!("acme"))
    );
    assert_eq!(
        run("\"a-b-c\" | sub(\"-\"; \"+\"; \"g\")", Value::Null),
        Ok(json!("a+b+c"))
    );
    assert_eq!(
        run("\"a,b\" | split(\",\")", Value::Null),
        Ok(json!(["a", "b"]))
    );
    assert_eq!(run("{a: 1} | tojson", Value::Null), Ok(json!("{\"a\":1}")));
    assert_eq!(run("\"[1,2]\" | fromjson", Value::Null), Ok(json!([1, 2])));
    assert_eq!(
        run("[1,[2]] | contains([[2]])", Value::Null),
        Ok(json!(true))
    );
    assert_eq!(
        run("\"abcb\" | indices(\"b\")", Value::Null),
        Ok(json!([1, 3]))
    );
    assert_eq!(run("{a: 1} | has(\"a\")", Value::Null), Ok(json!(true)));
    assert_eq!(run("[3,1,2] | sort | .[0]", Value::Null), Ok(json!(1)));
    assert_eq!(
        run("0 | todate", Value::Null),
        Ok(json!("1970-01-01T00:00:00Z"))
    );
    assert_eq!(run("0 | strftime(\"%Y\")", Value::Null), Ok(json!("1970")));
    assert_eq!(
        run("[limit(3; repeat(1))]", Value::Null),
        Ok(json!([1, 1, 1]))
    );
    assert_eq!(
        run("9223372036854775807 + 1 | . > 0", Value::Null),
        Ok(json!(true))
    );
}

#[test]
fn strings_are_searched_by_character() {
    assert_eq!(
        run(r#""éaaé" | indices("aa")"#, Value::Null),
        Ok(json!([1]))
    );
    assert_eq!(
        run(r#""aaa" | indices("aa")"#, Value::Null),
        Ok(json!([0, 1]))
    );
    assert_eq!(
        run(r#""abc" | contains("bc")"#, Value::Null),
        Ok(json!(true))
    );
    assert_eq!(run(r#""abc" | contains("")"#, Value::Null), Ok(json!(true)));
    assert_eq!(run(r#""abc" | indices("")"#, Value::Null), Ok(json!([])));
    // Long needles in long haystacks are searched in linear time.
    assert_eq!(
        run(
            r#"("a" * 1000000) | contains("a" * 500000 + "b")"#,
            Value::Null
        ),
        Ok(json!(false))
    );
}

#[test]
fn no_output_is_null_and_several_are_an_error() {
    assert_eq!(run("empty", entity()), Ok(Value::Null));
    let err = run(".properties.tags[]", entity()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the jq program gave more than one value (\"x\", \"y\", ...): collect them with [ ... ] or keep one with first( ... )"
    );
    assert_eq!(run("first(.properties.tags[])", entity()), Ok(json!("x")));
}

#[test]
fn errors_of_the_program_are_reported() {
    assert_eq!(
        run("error(\"no owner\")", entity()),
        Err(JqError::Failed("the jq program failed: no owner".into()))
    );
    let e = run(".properties.a | ascii_downcase", entity()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the jq program failed: cannot use 41 as "),
        "{e}"
    );
    let e = run("halt", entity()).unwrap_err();
    assert!(e.to_string().contains("halt"), "{e}");
    assert_eq!(run("try error(\"x\") catch .", entity()), Ok(json!("x")));
}

#[test]
fn compile_errors_say_where() {
    assert_eq!(
        JqProgram::compile("").unwrap_err(),
        "the jq program is empty"
    );
    let e = JqProgram::compile(".a |").unwrap_err();
    assert!(e.starts_with("line 1, column 5: expected term"), "{e}");
    let e = JqProgram::compile("nosuch(1)").unwrap_err();
    assert_eq!(e, "line 1, column 1: the filter `nosuch/1` is not defined");
    let e = JqProgram::compile("1 +\n  (2").unwrap_err();
    assert!(
        e.starts_with("line 2, column 3: expected the closing of `(`"),
        "{e}"
    );
    assert!(JqProgram::compile("env")
        .unwrap_err()
        .contains("`env/0` is not defined"));
    assert!(JqProgram::compile("$ENV").is_err());
    assert!(JqProgram::compile("input").is_err());
    assert!(JqProgram::compile("import \"a\" as a; 1").is_err());
    assert!(JqProgram::compile(&"(".repeat(5000)).is_err());
    assert!(JqProgram::compile(&"1 ".repeat(5000))
        .unwrap_err()
        .contains("longer than 8 KiB"));
}

/// Runs a program that must be stopped; it must be reported within a bounded time.
fn stopped(src: &str) -> JqError {
    let limits = Limits::default();
    let p = JqProgram::compile(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    let start = Instant::now();
    let err = p.run(&entity(), &limits).expect_err(src);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "{src} took {took:?}");
    err
}

#[test]
fn never_ending_programs_are_stopped() {
    for src in [
        "def f: f; f",
        "until(false; .)",
        "[repeat(1)]",
        "last(range(infinite))",
        "[limit(1e9; repeat(1))]",
        "[recurse(.)]",
        "reduce range(1e12) as $i (0; . + $i)",
        "last(range(1e17; 1e18))",
        "skip(1e18; repeat(1))",
        "[range(1e9)]",
        "[range(1e9)] | length",
        "label $out | repeat(1) | empty",
    ] {
        let err = stopped(src);
        assert!(
            matches!(err, JqError::Timeout(_)) || err.to_string().contains("larger than 16 MiB"),
            "{src}: {err}"
        );
    }
    assert_eq!(
        stopped("def f: f; f").to_string(),
        "the jq program ran longer than 50 ms and was stopped"
    );
    // A calculation has one value: an endless stream is refused at its second value.
    assert!(stopped("repeat(1)")
        .to_string()
        .contains("more than one value"));
}

#[test]
fn deep_recursion_is_stopped() {
    for src in [
        "def f: [f]; f",
        "def f: {a: f}; f",
        "def f: 1 + f; f",
        "def f: (1 | f) + 1; f",
        "path(def f: .[0] | f; f)",
    ] {
        let err = stopped(src);
        assert!(
            err.to_string().contains("recursed too deeply")
                || err.to_string().contains("deeper than 256"),
            "{src}: {err}"
        );
    }
}

#[test]
fn huge_values_are_stopped() {
    // Given the time, the result is built and refused for its size; within 50 ms (a debug
    // build is slow) it is stopped either way.
    let p = JqProgram::compile("[range(1e6)] | tostring").unwrap();
    let patient = Limits {
        time: Duration::from_secs(30),
        ..Limits::default()
    };
    let err = p.run(&Value::Null, &patient).unwrap_err();
    assert_eq!(err, JqError::OutputTooLarge(65536));
    assert_eq!(
        err.to_string(),
        "the jq program's result is larger than 65536 bytes"
    );
    assert!(matches!(
        stopped("[range(1e6)] | tostring"),
        JqError::OutputTooLarge(_) | JqError::Timeout(_)
    ));
    for src in [
        "\"x\" * 1e12",
        "\"x\" * 1e18",
        "\"xy\" | until(false; . + .)",
        "[1] | until(false; . + .)",
        "[range(1e5)] as $a | [range(1000) | $a]",
        "reduce range(1000) as $i (0; [., .])",
        "reduce range(300) as $i (0; [.])",
        "(\"[\" * 100000) | fromjson",
        "0 | strftime(\"%255Y\" * 1000)",
    ] {
        let err = stopped(src);
        let msg = err.to_string();
        assert!(
            msg.contains("larger than")
                || msg.contains("deeper than")
                || msg.contains("failed")
                || matches!(err, JqError::Timeout(_)),
            "{src}: {msg}"
        );
    }
}

#[test]
fn numbers_stay_machine_sized() {
    // Squaring overflows to infinity (printed as null) instead of growing a big integer.
    assert_eq!(
        run("reduce range(100) as $i (3; . * .)", Value::Null),
        Ok(Value::Null)
    );
    assert_eq!(
        run("reduce range(5) as $i (3; . * .)", Value::Null),
        Ok(json!(1853020188851841u64))
    );
}

/// How deep a plain recursive definition may go before it is stopped.
#[test]
fn ordinary_recursion_fits() {
    let p =
        JqProgram::compile("def f($n): if $n == 0 then 0 else 1 + f($n - 1) end; f(.)").unwrap();
    let mut deepest = 0;
    for n in [10, 50, 100, 200, 400, 800, 1600, 3200] {
        match p.run(&json!(n), &Limits::default()) {
            Ok(v) => {
                assert_eq!(v, json!(n));
                deepest = n;
            }
            Err(e) => {
                assert!(e.to_string().contains("recursed too deeply"), "{e}");
                break;
            }
        }
    }
    println!("recursion depth reached: {deepest}");
    // Debug builds use many times the stack per level.
    let expected = if cfg!(debug_assertions) { 50 } else { 400 };
    assert!(deepest >= expected, "{deepest}");
}

#[test]
fn the_limits_are_the_callers() {
    let p = JqProgram::compile("[range(100)]").unwrap();
    let small = Limits {
        time: Duration::from_millis(50),
        max_output_bytes: 10,
    };
    assert_eq!(
        p.run(&Value::Null, &small),
        Err(JqError::OutputTooLarge(10))
    );
    let p = JqProgram::compile("last(range(infinite))").unwrap();
    let short = Limits {
        time: Duration::from_millis(5),
        max_output_bytes: 1000,
    };
    let start = Instant::now();
    assert_eq!(
        p.run(&Value::Null, &short),
        Err(JqError::Timeout(Duration::from_millis(5)))
    );
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[test]
fn programs_are_shared_between_threads() {
    let p = JqProgram::compile(".properties.a * 2").unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || p.run(&entity(), &Limits::default()))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Ok(json!(82)));
    }
}

#[test]
fn a_run_after_a_stopped_run_is_unaffected() {
    let _ = stopped("def f: [f]; f");
    let _ = stopped("repeat(1)");
    assert_eq!(run(".properties.a", entity()), Ok(json!(41)));
}

/// The cost of a run of a simple program; printed, and bounded loosely so a debug build passes.
#[test]
fn a_simple_run_is_cheap() {
    let p = JqProgram::compile(".properties.a + 1").unwrap();
    let input = entity();
    let limits = Limits::default();
    let n = 20_000;
    let start = Instant::now();
    for _ in 0..n {
        assert_eq!(p.run(&input, &limits), Ok(json!(42)));
    }
    let per_run = start.elapsed() / n;
    println!("jq run of `.properties.a + 1` on a 2 MiB thread: {per_run:?}");
    assert!(per_run < Duration::from_micros(500), "{per_run:?}");
    let big = std::thread::Builder::new()
        .stack_size(16 << 20)
        .spawn(move || {
            let start = Instant::now();
            for _ in 0..n {
                assert_eq!(p.run(&input, &limits), Ok(json!(42)));
            }
            start.elapsed() / n
        })
        .unwrap()
        .join()
        .unwrap();
    println!("jq run of `.properties.a + 1` on a 16 MiB thread: {big:?}");
    let p = JqProgram::compile(".properties.a + 1").unwrap();
    let batched = gantry_catalog::jq::with_run_stack(|| {
        let start = Instant::now();
        for _ in 0..n {
            assert_eq!(p.run(&entity(), &Limits::default()), Ok(json!(42)));
        }
        start.elapsed() / n
    });
    println!("jq run of `.properties.a + 1` in with_run_stack (entity JSON built each time): {batched:?}");
}

#[test]
fn regular_expressions_are_bounded() {
    let limits = Limits {
        time: Duration::from_secs(5),
        ..Limits::default()
    };
    let start = Instant::now();
    let p = JqProgram::compile(r#"("a" * 1000000) | test("(a|aa)*b")"#).unwrap();
    assert_eq!(p.run(&Value::Null, &limits), Ok(json!(false)));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let e = run(r#"("a" * 2000000) | test("a")"#, Value::Null).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the jq program failed: regular expressions run over strings of at most 1024 KiB"
    );
    let e = run(r#""a" | test("(a{1000}){1000}")"#, Value::Null).unwrap_err();
    assert!(e.to_string().contains("invalid regular expression"), "{e}");
    let e = run(r#""a" | test("a"; "q")"#, Value::Null).unwrap_err();
    assert!(e.to_string().contains("`q` is not a regex flag"), "{e}");
    // Many matches: stopped by the clock like any loop.
    let err = stopped(r#"("a" * 1000000) | [match("a"; "g")] | length"#);
    assert!(matches!(err, JqError::Timeout(_)), "{err}");
}
