use chrono::TimeZone;
use serde_json::{json, Value};

use super::*;

fn data() -> Data {
    let mut d = Data {
        parameters: json!({
        "env": "production",
        "count": 3,
        "flag": "true",
        "nothing": null,
        "cfg": {"a": {"b": 1}, "list": [1, 2, 3], "ver-sion": "v"},
        })
        .as_object()
        .cloned()
        .unwrap_or_default(),
        ..Data::default()
    };
    d.secrets.insert("token".into(), "s3cr3t-value".into());
    d.secrets.insert("doc".into(), r#"{"a":1,"b":2}"#.into());
    d.connections.entry("aws".into()).or_default().insert(
        "acct".into(),
        json!({"accessKeyID": "AK", "secretAccessKey": "SK"}),
    );
    d.outputs.insert(
        "build".into(),
        json!({"version": "1.2", "ver-sion": ["x", "y"], "n": 5})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    d.steps.insert("build".into(), StepStatus::Succeeded);
    d.steps.insert("test".into(), StepStatus::Failed);
    d.steps.insert("lint".into(), StepStatus::Skipped);
    d.answers.insert(
        "gate".into(),
        json!({"approval": "approved"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    );
    d.now = chrono::Utc
        .with_ymd_and_hms(2021, 6, 9, 0, 12, 54)
        .single()
        .unwrap_or_default();
    d
}

fn with_event(event: Value) -> Data {
    let mut d = data();
    d.event = Some(event);
    d
}

fn ev(src: &str) -> Evaluation {
    evaluate(&json!(src), &data())
}

/// The value of a template that must evaluate completely.
#[track_caller]
fn val(src: &str) -> Value {
    let e = ev(src);
    assert!(e.is_complete(), "{src}: {e:?}");
    e.value
}

/// The single error code of a template that must fail.
#[track_caller]
fn err(src: &str) -> &'static str {
    let e = ev(src);
    assert_eq!(e.errors.len(), 1, "{src}: {e:?}");
    assert_eq!(e.value, json!(src), "failed template keeps its source");
    e.errors[0].code
}

#[track_caller]
fn unresolved(src: &str) -> Value {
    let e = ev(src);
    assert!(e.errors.is_empty(), "{src}: {e:?}");
    assert!(!e.unresolved.is_empty(), "{src}: {e:?}");
    assert_eq!(e.value, json!(src), "unresolved template keeps its source");
    serde_json::to_value(&e.unresolved).unwrap_or_default()
}

#[track_caller]
fn perr(src: &str) -> (&'static str, std::ops::Range<usize>) {
    match parse_template(src) {
        Ok(t) => panic!("{src} parsed: {t:?}"),
        Err(e) => (e.code, e.span),
    }
}

// ---------------------------------------------------------------- literals

#[test]
fn literals() {
    assert_eq!(val("${1}"), json!(1));
    assert_eq!(val("${1.5}"), json!(1.5));
    assert_eq!(val("${1e3}"), json!(1000));
    assert_eq!(val("${2.5e-1}"), json!(0.25));
    assert_eq!(val("${'single'}"), json!("single"));
    assert_eq!(val(r#"${"double"}"#), json!("double"));
    assert_eq!(
        val(r#"${'a\'b\"c\\d\ne\tf\u00e9\x41\ud83d\ude00'}"#),
        json!("a'b\"c\\d\ne\tféA😀")
    );
    assert_eq!(val("${true}"), json!(true));
    assert_eq!(val("${false}"), json!(false));
    assert_eq!(val("${null}"), json!(null));
    assert_eq!(
        val("${{'a': 1, b: [2, 'x'], \"c\": {d: null}, 4: true,}}"),
        json!({"a": 1, "b": [2, "x"], "c": {"d": null}, "4": true})
    );
    assert_eq!(val("${[]}"), json!([]));
    assert_eq!(val("${{}}"), json!({}));
    assert_eq!(val("${[1, [2, [3]]]}"), json!([1, [2, [3]]]));
    assert_eq!(val("${{'a': 1, 'a': 2}}"), json!({"a": 2}));
}

#[test]
fn invalid_literals_are_parse_errors() {
    assert_eq!(perr(r"${'\q'}").0, "invalid_escape");
    assert_eq!(perr(r"${'\ud800'}").0, "invalid_escape");
    assert_eq!(perr("${1e999}").0, "invalid_number");
    assert_eq!(perr("${{a 1}}").0, "unexpected_token");
    assert_eq!(perr("${[1 2]}").0, "unexpected_token");
    assert_eq!(perr("${{[1]: 2}}").0, "unexpected_token");
}

// ---------------------------------------------------------------- operators

#[test]
fn arithmetic() {
    assert_eq!(val("${2 + 2}"), json!(4));
    assert!(
        val("${2 + 2}").is_i64(),
        "integral floats render as integers"
    );
    assert_eq!(val("${0.1 + 0.2}"), json!(0.1 + 0.2));
    assert_eq!(val("${10 - 4}"), json!(6));
    assert_eq!(val("${3 * 4}"), json!(12));
    assert_eq!(val("${7 / 2}"), json!(3.5));
    assert_eq!(val("${7 % 3}"), json!(1));
    assert_eq!(
        val("${-7 % 3}"),
        json!(-1),
        "remainder has the dividend's sign"
    );
    assert_eq!(val("${7.5 % 2}"), json!(1.5));
    assert_eq!(val("${2 ** 10}"), json!(1024));
    assert_eq!(val("${4 ** 0.5}"), json!(2));
    assert_eq!(val("${-3}"), json!(-3));
    assert_eq!(val("${--3}"), json!(3));
    assert_eq!(val("${parameters.count * 2}"), json!(6));
}

#[test]
fn arithmetic_errors() {
    assert_eq!(err("${1 / 0}"), "division_by_zero");
    assert_eq!(err("${1 % 0}"), "division_by_zero");
    assert_eq!(err("${10 ** 400}"), "number_overflow");
    assert_eq!(err("${(-8) ** 0.5}"), "number_overflow");
    assert_eq!(err("${1e308 * 10}"), "number_overflow");
    assert_eq!(err("${1 - 'a'}"), "type_mismatch");
    assert_eq!(err("${[1] * 2}"), "type_mismatch");
    assert_eq!(err("${true + 1}"), "type_mismatch");
    assert_eq!(err("${-'a'}"), "type_mismatch");
    assert_eq!(err("${null + 1}"), "type_mismatch");
}

#[test]
fn string_concatenation() {
    assert_eq!(val("${'a' + 'b'}"), json!("ab"));
    assert_eq!(val("${'v' + 1}"), json!("v1"));
    assert_eq!(val("${1.5 + 'x'}"), json!("1.5x"));
    assert_eq!(val("${'x' + true}"), json!("xtrue"));
    assert_eq!(val("${'x' + null}"), json!("x"));
    assert_eq!(val("${'x' + [1]}"), json!("x[1]"));
    assert_eq!(val("${1 + 1 + 'a'}"), json!("2a"));
}

#[test]
fn comparison() {
    assert_eq!(val("${1 < 2}"), json!(true));
    assert_eq!(val("${2 <= 2}"), json!(true));
    assert_eq!(val("${3 > 2}"), json!(true));
    assert_eq!(val("${2 >= 3}"), json!(false));
    assert_eq!(val("${'a' < 'b'}"), json!(true));
    assert_eq!(val("${'b' >= 'ab'}"), json!(true));
    assert_eq!(err("${1 < 'a'}"), "type_mismatch");
    assert_eq!(err("${null < 1}"), "type_mismatch");
    assert_eq!(err("${[1] < [2]}"), "type_mismatch");
}

#[test]
fn equality() {
    assert_eq!(val("${1 == 1.0}"), json!(true));
    assert_eq!(val("${'a' == 'a'}"), json!(true));
    assert_eq!(val("${'1' == 1}"), json!(false));
    assert_eq!(val("${'true' == true}"), json!(false));
    assert_eq!(val("${null == null}"), json!(true));
    assert_eq!(val("${[1, {'a': [2]}] == [1, {'a': [2.0]}]}"), json!(true));
    assert_eq!(val("${{'a': 1, 'b': 2} == {'b': 2, 'a': 1}}"), json!(true));
    assert_eq!(val("${{'a': 1} == {'a': 1, 'b': 2}}"), json!(false));
    assert_eq!(val("${[1, 2] != [2, 1]}"), json!(true));
    assert_eq!(val("${parameters.env == 'production'}"), json!(true));
    assert_eq!(val("${parameters.cfg.list == [1, 2, 3]}"), json!(true));
}

#[test]
fn logic() {
    assert_eq!(val("${true && false}"), json!(false));
    assert_eq!(val("${true || false}"), json!(true));
    assert_eq!(val("${!true}"), json!(false));
    assert_eq!(val("${!null}"), json!(true));
    assert_eq!(val("${'TRUE' && 'true'}"), json!(true));
    assert_eq!(val("${'FALSE' || 'false'}"), json!(false));
    assert_eq!(val("${parameters.flag && true}"), json!(true));
    assert_eq!(val("${null || true}"), json!(true));
    assert_eq!(err("${1 && true}"), "type_mismatch");
    assert_eq!(err("${'yes' || true}"), "type_mismatch");
    assert_eq!(err("${!'maybe'}"), "type_mismatch");
    assert_eq!(err("${true && 0}"), "type_mismatch");
}

#[test]
fn logic_short_circuits() {
    assert_eq!(val("${false && 1 / 0 == 1}"), json!(false));
    assert_eq!(val("${true || 1 / 0 == 1}"), json!(true));
    assert_eq!(val("${false && outputs.later.x}"), json!(false));
    assert_eq!(val("${true || outputs.later.x}"), json!(true));
    // A definite right side decides even when the left side is not available yet.
    assert_eq!(val("${outputs.later.x && false}"), json!(false));
    assert_eq!(val("${outputs.later.x || true}"), json!(true));
    assert_eq!(
        unresolved("${outputs.later.x && true}"),
        json!({"outputs": [{"from": "later", "name": "x"}]})
    );
    assert_eq!(
        unresolved("${outputs.a.x || outputs.b.y}"),
        json!({"outputs": [{"from": "a", "name": "x"}, {"from": "b", "name": "y"}]})
    );
}

#[test]
fn precedence() {
    assert_eq!(val("${1 + 2 * 3}"), json!(7));
    assert_eq!(val("${(1 + 2) * 3}"), json!(9));
    assert_eq!(val("${10 - 4 - 3}"), json!(3), "left associative");
    assert_eq!(val("${16 / 4 / 2}"), json!(2));
    assert_eq!(val("${2 ** 3 ** 2}"), json!(512), "** is right associative");
    assert_eq!(
        val("${-2 ** 2}"),
        json!(-4),
        "unary minus binds looser than **"
    );
    assert_eq!(val("${2 ** -1}"), json!(0.5));
    assert_eq!(val("${2 * 3 ** 2}"), json!(18));
    assert_eq!(val("${1 + 2 < 4}"), json!(true));
    assert_eq!(val("${1 < 2 == 2 < 3}"), json!(true));
    assert_eq!(val("${true || false && false}"), json!(true));
    assert_eq!(val("${(true || false) && false}"), json!(false));
    assert_eq!(val("${!true == false}"), json!(true));
    assert_eq!(val("${!(1 == 2)}"), json!(true));
    assert_eq!(val("${1 == 1 && 2 != 3}"), json!(true));
    assert_eq!(val("${7 - 2 % 3}"), json!(5));
}

// ---------------------------------------------------------------- indexing

#[test]
fn every_indexing_form() {
    assert_eq!(val("${parameters.cfg.a.b}"), json!(1));
    assert_eq!(val("${parameters['cfg'][\"a\"]['b']}"), json!(1));
    assert_eq!(val("${parameters.cfg.'ver-sion'}"), json!("v"));
    assert_eq!(
        val("${parameters.cfg.ver-sion}"),
        json!("v"),
        "hyphens in identifiers"
    );
    assert_eq!(val("${parameters.cfg.list[0]}"), json!(1));
    assert_eq!(val("${parameters.cfg.list.1}"), json!(2));
    assert_eq!(val("${parameters.cfg.list[1 + 1]}"), json!(3));
    assert_eq!(val("${parameters.cfg.list.(1 + 1)}"), json!(3));
    assert_eq!(val("${parameters.cfg.list['0']}"), json!(1));
    assert_eq!(val("${parameters.cfg['li' + 'st'][0]}"), json!(1));
    assert_eq!(val("${parameters.cfg.(\"a\").b}"), json!(1));
    assert_eq!(val("${$.parameters.env}"), json!("production"));
    assert_eq!(val("${$['parameters'].env}"), json!("production"));
    assert_eq!(val("${outputs.build.'ver-sion'[1]}"), json!("y"));
    assert_eq!(val("${[10, 20, 30][2]}"), json!(30));
    assert_eq!(val("${{'k': {'j': 5}}.k.j}"), json!(5));
    assert_eq!(val("${[[1, 2], [3, 4]].1.0}"), json!(3));
}

#[test]
fn whole_roots() {
    assert_eq!(val("${parameters.cfg.a}"), json!({"b": 1}));
    assert_eq!(
        val("${steps.build}"),
        json!({"succeeded": true, "failed": false, "skipped": false})
    );
    assert_eq!(
        val("${connections.aws}"),
        json!({"acct": {"accessKeyID": "AK", "secretAccessKey": "SK"}})
    );
    assert_eq!(val("${outputs.build.n}"), json!(5));
    let all = val("${$}");
    assert_eq!(all["parameters"]["env"], json!("production"));
    assert_eq!(all["secrets"]["token"], json!("s3cr3t-value"));
    assert_eq!(all["steps"]["test"]["failed"], json!(true));
    assert!(all.get("event").is_none());
    assert_eq!(val("${secrets.token}"), json!("s3cr3t-value"));
}

#[test]
fn indexing_errors() {
    assert_eq!(err("${parameters.cfg.nope}"), "path_not_found");
    assert_eq!(err("${parameters.cfg.list[3]}"), "path_not_found");
    assert_eq!(err("${parameters.cfg.list[-1]}"), "path_not_found");
    assert_eq!(err("${parameters.cfg.list[0.5]}"), "path_not_found");
    assert_eq!(err("${parameters.env.x}"), "path_not_found");
    assert_eq!(err("${parameters.nothing.x}"), "path_not_found");
    assert_eq!(err("${steps.build.finished}"), "path_not_found");
    assert_eq!(err("${nosuchroot}"), "path_not_found");
    assert_eq!(err("${parameters[true]}"), "index_type");
    assert_eq!(err("${parameters.cfg[[1]]}"), "index_type");
    let e = ev("${parameters.cfg.nope}");
    assert_eq!(
        e.errors[0].message,
        "no value found in `parameters.cfg.nope`"
    );
}

// ---------------------------------------------------------------- pipeline

#[test]
fn pipeline() {
    assert_eq!(
        val(r#"${jsonUnmarshal('{"a":1,"b":2}') |> a + b}"#),
        json!(3)
    );
    assert_eq!(val("${parameters.cfg |> a.b}"), json!(1));
    assert_eq!(val("${parameters.cfg |> $.list[2]}"), json!(3));
    assert_eq!(val("${parameters.cfg |> $}"), data().parameters["cfg"]);
    assert_eq!(val("${parameters.cfg |> a |> b}"), json!(1));
    assert_eq!(val("${parameters.cfg |> list |> $[0] + 10}"), json!(11));
    assert_eq!(val("${secrets.doc |> jsonUnmarshal($) |> a}"), json!(1));
    assert_eq!(val("${1 + 1 |> $ * 3}"), json!(6), "|> binds loosest");
    assert_eq!(err("${parameters.cfg |> parameters}"), "path_not_found");
    assert_eq!(
        unresolved("${outputs.x.y |> a}"),
        json!({"outputs": [{"from": "x", "name": "y"}]})
    );
}

// ---------------------------------------------------------------- calls

#[test]
fn positional_and_keyword_calls() {
    assert_eq!(val("${concat('a', 'b', 1)}"), json!("ab1"));
    assert_eq!(val("${path(object: {'a': 1}, query: 'a')}"), json!(1));
    assert_eq!(val("${path({'a': 1}, 'a')}"), json!(1));
    assert_eq!(
        val("${merge(objects: [{'a': 1}, {'b': 2}])}"),
        json!({"a": 1, "b": 2})
    );
    assert_eq!(
        val("${convertMarkdown(to: 'jira', content: '**x**')}"),
        json!("*x*")
    );
    assert_eq!(val("${path('query': 'a', 'object': {'a': 2})}"), json!(2));
    assert_eq!(perr("${f(a, b: 1)}").0, "mixed_arguments");
    assert_eq!(perr("${f(b: 1, a)}").0, "mixed_arguments");
    assert_eq!(perr("${f(1,, 2)}").0, "unexpected_token");
    assert_eq!(perr("${f(1}").0, "unexpected_end");
}

#[test]
fn fn_append() {
    assert_eq!(val("${append([1], 2, [3])}"), json!([1, 2, [3]]));
    assert_eq!(
        val("${append(parameters.cfg.list, 4)}"),
        json!([1, 2, 3, 4])
    );
    assert_eq!(err("${append([1])}"), "function_arity");
    assert_eq!(err("${append({}, 1)}"), "function_type");
    assert_eq!(err("${append(array: [1], value: 2)}"), "function_keyword");
}

#[test]
fn fn_coalesce() {
    assert_eq!(val("${coalesce(outputs.x.missing, 42)}"), json!(42));
    assert_eq!(
        val("${coalesce(null, parameters.nothing, 'a', 'b')}"),
        json!("a")
    );
    assert_eq!(val("${coalesce(parameters.cfg.nope, 7)}"), json!(7));
    assert_eq!(
        val("${coalesce(secrets.absent, event.x, connections.a.b)}"),
        json!(null)
    );
    assert_eq!(val("${coalesce()}"), json!(null));
    assert_eq!(
        val("${coalesce(1, 1 / 0)}"),
        json!(1),
        "later arguments do not matter"
    );
    assert_eq!(err("${coalesce(1 / 0, 1)}"), "division_by_zero");
}

#[test]
fn fn_concat() {
    assert_eq!(val("${concat()}"), json!(""));
    assert_eq!(
        val("${concat('a', 1.5, true, null, 'z')}"),
        json!("a1.5truez")
    );
    assert_eq!(err("${concat('a', [1])}"), "function_type");
    assert_eq!(err("${concat({})}"), "function_type");
}

#[test]
fn fn_convert_markdown() {
    let md = "# Title\n\nSome **bold** and *it* and `code` and [link](http://x.y/?a=1&b=2).\nnext line <tag>\n\n- one\n- two\n\n1. first\n2. second\n\n```sh\necho <hi>\n```";
    let src = format!("${{convertMarkdown('html', {})}}", json!(md));
    assert_eq!(
        val(&src),
        json!("<h1>Title</h1>\n<p>Some <strong>bold</strong> and <em>it</em> and <code>code</code> and <a href=\"http://x.y/?a=1&amp;b=2\">link</a>.\nnext line &lt;tag&gt;</p>\n<ul><li>one</li><li>two</li></ul>\n<ol><li>first</li><li>second</li></ol>\n<pre><code class=\"language-sh\">echo &lt;hi&gt;</code></pre>")
    );
    let src = format!("${{convertMarkdown('jira', {})}}", json!(md));
    assert_eq!(
        val(&src),
        json!("h1. Title\n\nSome *bold* and _it_ and {{code}} and [link|http://x.y/?a=1&b=2].\nnext line <tag>\n\n* one\n* two\n\n# first\n# second\n\n{code:sh}\necho <hi>\n{code}")
    );
    assert_eq!(
        val("${convertMarkdown('html', 'snake_case_name')}"),
        json!("<p>snake_case_name</p>")
    );
    assert_eq!(
        val("${convertMarkdown('html', '__b__ _i_')}"),
        json!("<p><strong>b</strong> <em>i</em></p>")
    );
    assert_eq!(
        val("${convertMarkdown('jira', '## Sub')}"),
        json!("h2. Sub")
    );
    assert_eq!(val("${convertMarkdown('html', '')}"), json!(""));
    assert_eq!(
        val("${convertMarkdown('html', '**unclosed *x')}"),
        json!("<p>*<em>unclosed </em>x</p>")
    );
    assert_eq!(err("${convertMarkdown('slack', 'x')}"), "function_type");
    assert_eq!(err("${convertMarkdown('html')}"), "function_arity");
    assert_eq!(err("${convertMarkdown('html', 1)}"), "function_type");
    assert_eq!(
        err("${convertMarkdown(to: 'html', body: 'x')}"),
        "function_keyword"
    );
    assert_eq!(
        err("${convertMarkdown('html', 'a', 'b')}"),
        "function_arity"
    );
}

#[test]
fn fn_equals() {
    assert_eq!(val("${equals(1, 1)}"), json!(true));
    assert_eq!(val("${equals('true', true)}"), json!(false));
    assert_eq!(val("${equals({'a': [1]}, {'a': [1]})}"), json!(true));
    assert_eq!(val("${notEquals('a', 'b')}"), json!(true));
    assert_eq!(val("${notEquals(null, null)}"), json!(false));
    assert_eq!(err("${equals(1)}"), "function_arity");
    assert_eq!(err("${notEquals(1, 2, 3)}"), "function_arity");
}

#[test]
fn fn_exists() {
    assert_eq!(val("${exists(parameters.cfg.a)}"), json!(true));
    assert_eq!(
        val("${exists(parameters.nothing)}"),
        json!(true),
        "null exists"
    );
    assert_eq!(val("${exists(parameters.cfg.nope)}"), json!(false));
    assert_eq!(val("${exists(parameters.cfg.list[9])}"), json!(false));
    assert_eq!(val("${exists(parameters.env.deeper)}"), json!(false));
    assert_eq!(
        unresolved("${exists(parameters.unknown)}"),
        json!({"parameters": [{"name": "unknown"}]})
    );
    assert_eq!(
        unresolved("${exists(outputs.later.key)}"),
        json!({"outputs": [{"from": "later", "name": "key"}]})
    );
    assert_eq!(err("${exists()}"), "function_arity");
    assert_eq!(err("${exists(1 / 0)}"), "division_by_zero");
}

#[test]
fn fn_json() {
    assert_eq!(
        val("${jsonMarshal({'a': [1, 'x', null]})}"),
        json!(r#"{"a":[1,"x",null]}"#)
    );
    assert_eq!(val("${jsonMarshal('s')}"), json!(r#""s""#));
    assert_eq!(
        val("${jsonUnmarshal(secrets.doc)}"),
        json!({"a": 1, "b": 2})
    );
    assert_eq!(val("${jsonUnmarshal('[1, true]')}"), json!([1, true]));
    assert_eq!(err("${jsonUnmarshal('{nope')}"), "json_invalid");
    assert_eq!(err("${jsonUnmarshal(1)}"), "function_type");
    assert_eq!(err("${jsonMarshal()}"), "function_arity");
    assert_eq!(err("${jsonUnmarshal('a', 'b')}"), "function_arity");
}

#[test]
fn fn_merge() {
    assert_eq!(val("${merge()}"), json!({}));
    assert_eq!(
        val("${merge({'a': {'x': 1, 'y': 1}}, {'a': {'y': 2}, 'b': 3})}"),
        json!({"a": {"x": 1, "y": 2}, "b": 3}),
        "positional merge is deep"
    );
    assert_eq!(
        val("${merge(objects: [{'a': {'x': 1}}, {'a': {'y': 2}}])}"),
        json!({"a": {"x": 1, "y": 2}}),
        "keyword merge defaults to deep"
    );
    assert_eq!(
        val("${merge(objects: [{'a': {'x': 1}}, {'a': {'y': 2}}], mode: 'shallow')}"),
        json!({"a": {"y": 2}})
    );
    assert_eq!(
        val("${merge({'a': 1}, {'a': {'b': 2}})}"),
        json!({"a": {"b": 2}})
    );
    assert_eq!(err("${merge({'a': 1}, [1])}"), "function_type");
    assert_eq!(
        err("${merge(objects: [{}], mode: 'sideways')}"),
        "function_type"
    );
    assert_eq!(err("${merge(objects: {})}"), "function_type");
    assert_eq!(err("${merge(things: [])}"), "function_keyword");
}

#[test]
fn fn_now() {
    assert_eq!(val("${now()}"), json!("2021-06-09T00:12:54Z"));
    assert_eq!(val("${'at ' + now()}"), json!("at 2021-06-09T00:12:54Z"));
    assert_eq!(err("${now(1)}"), "function_arity");
}

#[test]
fn fn_path() {
    assert_eq!(val("${path(parameters.cfg, 'a.b')}"), json!(1));
    assert_eq!(val("${path(parameters.cfg, \"list[1]\")}"), json!(2));
    assert_eq!(
        val("${path(parameters.cfg, 'nope', 'dflt')}"),
        json!("dflt")
    );
    assert_eq!(
        val("${path(parameters.cfg, 'a.b', 1 / 0)}"),
        json!(1),
        "default unused"
    );
    assert_eq!(
        val("${path(object: parameters.cfg, query: 'missing.x', default: null)}"),
        json!(null)
    );
    assert_eq!(val("${path({'a-b': 1}, \"$['a-b']\")}"), json!(1));
    assert_eq!(
        val("${path({'a-b': 1}, \"'a-b'\")}"),
        json!("a-b"),
        "a bare string is a literal"
    );
    assert_eq!(err("${path(parameters.cfg, 'nope')}"), "path_not_found");
    assert_eq!(err("${path(parameters.cfg, 'concat(1)')}"), "path_query");
    assert_eq!(err("${path(parameters.cfg, 'a..b')}"), "path_query");
    assert_eq!(err("${path(parameters.cfg, 1)}"), "function_type");
    assert_eq!(err("${path(parameters.cfg)}"), "function_arity");
    assert_eq!(err("${path(query: 'a')}"), "function_arity");
    assert_eq!(err("${path(1, 'a', 2, 3)}"), "function_arity");
    // Paths inside the query are relative: they never reach run data.
    assert_eq!(err("${path({}, 'secrets.token')}"), "path_not_found");
}

#[test]
fn fn_to_string() {
    assert_eq!(val("${toString(null)}"), json!(""));
    assert_eq!(val("${toString(3)}"), json!("3"));
    assert_eq!(val("${toString(2.50)}"), json!("2.5"));
    assert_eq!(val("${toString(1 / 3)}"), json!("0.3333333333333333"));
    assert_eq!(val("${toString(true)}"), json!("true"));
    assert_eq!(val("${toString('s')}"), json!("s"));
    assert_eq!(err("${toString([1])}"), "function_type");
    assert_eq!(err("${toString({})}"), "function_type");
    assert_eq!(err("${toString(1, 2)}"), "function_arity");
}

#[test]
fn unknown_function() {
    let e = ev("${matchesRegex('a', 'b')}");
    assert_eq!(e.errors.len(), 1);
    assert_eq!(e.errors[0].code, "function_unknown");
    assert!(e.errors[0].message.contains("matchesRegex"));
    assert!(e.errors[0].message.contains("convertMarkdown"));
    // Arity errors come before missing data; unknown names before anything.
    assert_eq!(err("${nope(outputs.x.y)}"), "function_unknown");
    assert_eq!(err("${equals(outputs.x.y)}"), "function_arity");
}

#[test]
fn function_list_is_complete() {
    let mut sorted = FUNCTIONS;
    sorted.sort_unstable();
    assert_eq!(sorted, FUNCTIONS);
    for f in FUNCTIONS {
        let e = ev(&format!("${{{f}(1, 2, 3, 4, 5)}}"));
        assert!(
            e.errors.iter().all(|e| e.code != "function_unknown"),
            "{f} is implemented"
        );
    }
}

// ---------------------------------------------------------------- unresolved

#[test]
fn unresolved_expression_roots() {
    assert_eq!(
        unresolved("${parameters.missing}"),
        json!({"parameters": [{"name": "missing"}]})
    );
    assert_eq!(
        unresolved("${secrets.missing}"),
        json!({"secrets": [{"name": "missing"}]})
    );
    assert_eq!(
        unresolved("${connections.aws.other.accessKeyID}"),
        json!({"connections": [{"type": "aws", "name": "other"}]})
    );
    assert_eq!(
        unresolved("${connections.gcp.acct}"),
        json!({"connections": [{"type": "gcp", "name": "acct"}]})
    );
    assert_eq!(
        unresolved("${connections.gcp}"),
        json!({"connections": [{"type": "gcp", "name": ""}]})
    );
    assert_eq!(
        unresolved("${outputs.deploy.url}"),
        json!({"outputs": [{"from": "deploy", "name": "url"}]})
    );
    assert_eq!(
        unresolved("${outputs.build.notyet}"),
        json!({"outputs": [{"from": "build", "name": "notyet"}]})
    );
    assert_eq!(
        unresolved("${outputs.deploy}"),
        json!({"outputs": [{"from": "deploy", "name": ""}]})
    );
    assert_eq!(
        unresolved("${steps.deploy.succeeded}"),
        json!({"statuses": [{"action": "deploy", "property": "succeeded"}]})
    );
    assert_eq!(
        unresolved("${steps.deploy}"),
        json!({"statuses": [{"action": "deploy", "property": ""}]})
    );
    assert_eq!(
        unresolved("${event.a.b}"),
        json!({"data": [{"query": "a.b"}]})
    );
    assert_eq!(unresolved("${event}"), json!({"data": [{"query": ""}]}));
    assert_eq!(
        unresolved("${event['x'][0]}"),
        json!({"data": [{"query": "x.0"}]})
    );
}

#[test]
fn unresolved_is_collected_deduplicated_and_sorted() {
    let e =
        ev("${outputs.z.k} ${secrets.b} ${secrets.a} ${secrets.b} ${parameters.p + outputs.a.k}");
    assert!(e.errors.is_empty());
    assert_eq!(
        serde_json::to_value(&e.unresolved).unwrap_or_default(),
        json!({
            "secrets": [{"name": "a"}, {"name": "b"}],
            "outputs": [{"from": "a", "name": "k"}, {"from": "z", "name": "k"}],
            "parameters": [{"name": "p"}],
        })
    );
    assert!(!e.is_complete());
    assert!(Unresolved::default().is_empty());
    assert_eq!(
        serde_json::to_value(Unresolved::default()).unwrap_or_default(),
        json!({})
    );
}

#[test]
fn unresolved_inside_calls_and_literals() {
    assert_eq!(
        unresolved("${concat(secrets.a, [parameters.b], {'k': outputs.s.n})}"),
        json!({
            "secrets": [{"name": "a"}],
            "outputs": [{"from": "s", "name": "n"}],
            "parameters": [{"name": "b"}],
        })
    );
    assert_eq!(
        unresolved("${parameters.cfg[secrets.key]}"),
        json!({"secrets": [{"name": "key"}]})
    );
    // An error wins over missing data.
    assert_eq!(err("${secrets.a + (1 / 0)}"), "division_by_zero");
}

#[test]
fn event_data() {
    let d = with_event(json!({"environment": "production", "list": [{"id": 7}]}));
    let e = evaluate(&json!("${event.environment == 'production'}"), &d);
    assert_eq!(e.value, json!(true));
    let e = evaluate(&json!("${event.list[0].id}"), &d);
    assert_eq!(e.value, json!(7));
    let e = evaluate(&json!("${event.nope}"), &d);
    assert_eq!(e.errors[0].code, "path_not_found");
    let e = evaluate(&json!("${$.event.environment}"), &d);
    assert_eq!(e.value, json!("production"));
}

// ---------------------------------------------------------------- canonical tags

#[test]
fn tags_resolve() {
    let d = data();
    let canonical = json!({
        "p": {"$type": "Parameter", "name": "env"},
        "s": {"$type": "Secret", "name": "token"},
        "c": {"$type": "Connection", "type": "aws", "name": "acct"},
        "o": {"$type": "Output", "from": "build", "name": "version"},
        "legacy": {"$type": "Output", "taskName": "build", "name": "n"},
        "a": {"$type": "Answer", "askRef": "gate", "name": "approval"},
        "computed": {"$type": "Parameter", "name": "${'en' + 'v'}"},
        "nested": {"$type": "Output", "from": {"$fn.concat": ["bu", "ild"]}, "name": "n"},
        "plain": [1, "text", null, {"$type": "Custom", "x": 1}],
    });
    let e = evaluate(&canonical, &d);
    assert!(e.is_complete(), "{e:?}");
    assert_eq!(
        e.value,
        json!({
            "p": "production",
            "s": "s3cr3t-value",
            "c": {"accessKeyID": "AK", "secretAccessKey": "SK"},
            "o": "1.2",
            "legacy": 5,
            "a": "approved",
            "computed": "production",
            "nested": 5,
            "plain": [1, "text", null, {"$type": "Custom", "x": 1}],
        })
    );
}

#[test]
fn tags_unresolved_keep_their_node() {
    let canonical = json!({
        "p": {"$type": "Parameter", "name": "nope"},
        "s": {"$type": "Secret", "name": "nope"},
        "c": {"$type": "Connection", "type": "gcp", "name": "nope"},
        "o": {"$type": "Output", "from": "deploy", "name": "url"},
        "d": {"$type": "Data", "query": "a.b"},
        "a": {"$type": "Answer", "askRef": "gate2", "name": "approval"},
        "f": {"$fn.concat": ["x", {"$type": "Secret", "name": "nope2"}]},
        "t": "v=${parameters.nope3}",
        "ok": "${1 + 1}",
    });
    let e = evaluate(&canonical, &data());
    assert!(e.errors.is_empty(), "{e:?}");
    let mut expected = canonical.clone();
    expected["ok"] = json!(2);
    assert_eq!(e.value, expected);
    assert_eq!(
        serde_json::to_value(&e.unresolved).unwrap_or_default(),
        json!({
            "data": [{"query": "a.b"}],
            "secrets": [{"name": "nope"}, {"name": "nope2"}],
            "connections": [{"type": "gcp", "name": "nope"}],
            "outputs": [{"from": "deploy", "name": "url"}],
            "parameters": [{"name": "nope"}, {"name": "nope3"}],
            "answers": [{"askRef": "gate2", "name": "approval"}],
        })
    );
}

#[test]
fn data_tag_queries_the_event() {
    let d = with_event(json!({"a": {"b": [5, 6]}}));
    let e = evaluate(&json!({"$type": "Data", "query": "a.b[1]"}), &d);
    assert_eq!(e.value, json!(6));
    let e = evaluate(&json!({"$type": "Data", "query": "a.zz"}), &d);
    assert_eq!(e.errors[0].code, "path_not_found");
    let e = evaluate(&json!({"$type": "Data", "query": "now()"}), &d);
    assert_eq!(e.errors[0].code, "path_query");
}

#[test]
fn tag_errors() {
    let e = evaluate(&json!({"x": {"$type": "Parameter"}}), &data());
    assert_eq!(e.errors[0].code, "tag_invalid");
    assert_eq!(e.errors[0].path, "x");
    let e = evaluate(&json!({"$type": "Secret", "name": 5}), &data());
    assert_eq!(e.errors[0].code, "tag_invalid");
    let e = evaluate(&json!({"$type": "Connection", "name": "acct"}), &data());
    assert_eq!(e.errors[0].code, "tag_invalid");
}

#[test]
fn fn_objects() {
    let d = data();
    let e = evaluate(
        &json!({"$fn.concat": ["a", "${1 + 1}", {"$type": "Parameter", "name": "env"}]}),
        &d,
    );
    assert_eq!(e.value, json!("a2production"));
    let e = evaluate(
        &json!({"$fn.merge": {"objects": [{"a": 1}, {"b": 2}], "mode": "shallow"}}),
        &d,
    );
    assert_eq!(e.value, json!({"a": 1, "b": 2}));
    let e = evaluate(&json!({"$fn.toString": 5}), &d);
    assert_eq!(e.value, json!("5"), "a scalar is one positional argument");
    let e = evaluate(
        &json!({"$fn.coalesce": [{"$type": "Output", "from": "x", "name": "y"}, 42]}),
        &d,
    );
    assert!(e.is_complete());
    assert_eq!(e.value, json!(42));
    let e = evaluate(
        &json!({"$fn.exists": [{"$type": "Output", "from": "x", "name": "y"}]}),
        &d,
    );
    assert_eq!(e.unresolved.outputs.len(), 1);
    let e = evaluate(
        &json!({"$fn.equals": [{"$type": "Answer", "askRef": "gate", "name": "approval"}, "approved"]}),
        &d,
    );
    assert_eq!(e.value, json!(true));
    let e = evaluate(
        &json!({"$fn.append": [[{"$type": "Parameter", "name": "env"}], "${parameters.count}"]}),
        &d,
    );
    assert_eq!(e.value, json!(["production", 3]));
    let e = evaluate(&json!({"spec": {"$fn.matchesRegex": ["a", "b"]}}), &d);
    assert_eq!(e.errors[0].code, "function_unknown");
    assert_eq!(e.errors[0].path, "spec");
    assert_eq!(e.value, json!({"spec": {"$fn.matchesRegex": ["a", "b"]}}));
    // An object with more keys than `$fn.x` is plain data.
    let e = evaluate(&json!({"$fn.concat": ["a"], "other": 1}), &d);
    assert_eq!(e.value, json!({"$fn.concat": ["a"], "other": 1}));
}

#[test]
fn base64_encoding() {
    let d = data();
    let e = evaluate(
        &json!({"$encoding": "base64", "data": "aGVsbG8gd29ybGQ="}),
        &d,
    );
    assert_eq!(e.value, json!("hello world"));
    let e = evaluate(&json!({"$encoding": "base64", "data": "aGVs\nbG8="}), &d);
    assert_eq!(e.value, json!("hello"));
    let e = evaluate(&json!({"$encoding": "base64", "data": "aGk"}), &d);
    assert_eq!(e.value, json!("hi"), "padding is optional");
    let e = evaluate(&json!({"$encoding": "base64", "data": "w6k="}), &d);
    assert_eq!(e.value, json!("é"));
    for bad in ["a", "a===", "ab=c", "*abc", "/w=="] {
        let e = evaluate(&json!({"$encoding": "base64", "data": bad}), &d);
        assert_eq!(e.errors[0].code, "encoding_invalid", "{bad}");
    }
    let e = evaluate(&json!({"$encoding": "base64", "data": "/w"}), &d);
    assert_eq!(e.errors[0].code, "encoding_invalid", "not UTF-8");
    let e = evaluate(&json!({"$encoding": "hex", "data": "00"}), &d);
    assert_eq!(e.errors[0].code, "encoding_unknown");
    let e = evaluate(&json!({"$encoding": "base64"}), &d);
    assert_eq!(e.errors[0].code, "encoding_invalid");
    assert_eq!(canonical::decode_base64(""), Some(Vec::new()));
    assert_eq!(canonical::decode_base64("TWFu"), Some(b"Man".to_vec()));
    assert_eq!(canonical::decode_base64("TWE="), Some(b"Ma".to_vec()));
    assert_eq!(canonical::decode_base64("TQ=="), Some(b"M".to_vec()));
}

#[test]
fn error_paths_point_into_the_value() {
    let canonical = json!({
        "spec": {"items": ["ok", "${1}", "${1 / 0}"], "weird key": "${nope()}"},
        "list": [{"$fn.concat": ["a", {"$fn.toString": [[1]]}]}],
    });
    let e = evaluate(&canonical, &data());
    let paths: Vec<(&str, &str)> = e.errors.iter().map(|e| (e.code, e.path.as_str())).collect();
    assert_eq!(
        paths,
        vec![
            ("division_by_zero", "spec.items[2]"),
            ("function_unknown", "spec['weird key']"),
            ("function_type", "list[0][1]"),
        ]
    );
    assert_eq!(e.value["spec"]["items"], json!(["ok", 1, "${1 / 0}"]));
}

#[test]
fn errors_never_contain_secret_values() {
    let d = data();
    let sources = [
        "${secrets.token + 1 - 1}",
        "${secrets.token * 2}",
        "${secrets.token < 1}",
        "${secrets.token && true}",
        "${-secrets.token}",
        "${parameters.cfg[secrets.token]}",
        "${jsonUnmarshal(secrets.token)}",
        "${toString([secrets.token])}",
        "${path({}, secrets.token)}",
        "${path({}, secrets.token + '..')}",
        "${secrets.token |> x}",
        "${merge(secrets.token)}",
        "${append(secrets.token, 1)}",
        "${convertMarkdown(secrets.token, 'x')}",
        "${concat([secrets.token])}",
        "${secrets.token.x}",
    ];
    for src in sources {
        let e = evaluate(&json!(src), &d);
        assert!(!e.errors.is_empty(), "{src} should fail");
        for error in &e.errors {
            assert!(
                !error.message.contains("s3cr3t"),
                "{src}: {}",
                error.message
            );
        }
    }
    let e = evaluate(
        &json!({"$type": "Data", "query": "${secrets.token}"}),
        &with_event(json!({})),
    );
    assert!(e.errors.iter().all(|e| !e.message.contains("s3cr3t")));
}

// ---------------------------------------------------------------- templates

#[test]
fn native_values_and_string_rendering() {
    assert_eq!(val("${2 + 2}"), json!(4));
    assert_eq!(val("${ 2 + 2 }"), json!(4), "whitespace inside the braces");
    assert_eq!(val("${parameters.cfg.a}"), json!({"b": 1}));
    assert_eq!(val(" ${2 + 2}"), json!(" 4"));
    assert_eq!(val("v${1}.${2}"), json!("v1.2"));
    assert_eq!(val("${1}${2}"), json!("12"));
    assert_eq!(
        val("cfg=${parameters.cfg.a} list=${[1, 'a']}"),
        json!(r#"cfg={"b":1} list=[1,"a"]"#)
    );
    assert_eq!(val("[${null}]"), json!("[]"));
    assert_eq!(val("${true} ${1.5}"), json!("true 1.5"));
    assert_eq!(val("$${1}"), json!("$1"), "no escape syntax");
    assert_eq!(val("${'}'}"), json!("}"));
    assert_eq!(val("${{'a': {'b': '}'}}.a.b}"), json!("}"));
    assert_eq!(val("plain $ {x} text"), json!("plain $ {x} text"));
    assert_eq!(
        unresolved("url: ${outputs.deploy.url}/path"),
        json!({"outputs": [{"from": "deploy", "name": "url"}]})
    );
}

#[test]
fn template_structure() {
    let t = parse_template("a ${x} b").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.segments.len(), 3);
    assert_eq!(t.segments[0], Segment::Text("a ".into()));
    match &t.segments[1] {
        Segment::Expr { expr, span } => {
            assert_eq!(span, &(2..6));
            assert_eq!(expr.kind, ExprKind::Ident("x".into()));
            assert_eq!(expr.span, 4..5);
        }
        other => panic!("{other:?}"),
    }
    assert!(!t.is_single_expr());
    assert!(parse_template("${x}")
        .map(|t| t.is_single_expr())
        .unwrap_or(false));
    assert_eq!(parse_template("").map(|t| t.segments.len()), Ok(0));
    assert!(has_template("a ${"));
    assert!(!has_template("a $ {"));
    let e = parse_expr("a.b + 1").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.span, 0..7);
    assert!(matches!(
        e.kind,
        ExprKind::Binary {
            op: BinaryOp::Add,
            ..
        }
    ));
}

#[test]
fn parse_error_spans() {
    assert_eq!(perr("abc ${1 + 2"), ("unterminated_template", 4..11));
    assert_eq!(perr("ok ${1} then ${'x"), ("unterminated_template", 13..17));
    assert_eq!(perr("${}"), ("empty_expression", 0..3));
    assert_eq!(perr("x ${  }"), ("empty_expression", 2..7));
    assert_eq!(perr("${1 +}"), ("unexpected_end", 5..5));
    assert_eq!(perr("${1 + * 2}"), ("unexpected_token", 6..7));
    assert_eq!(perr("${1 2}"), ("unexpected_token", 4..5));
    assert_eq!(perr("${a @ b}"), ("unexpected_char", 4..5));
    assert_eq!(
        perr("é ${a = b}"),
        ("unexpected_char", 7..8),
        "byte offsets, not chars"
    );
    assert_eq!(perr("${a & b}"), ("unexpected_char", 4..5));
    assert_eq!(perr("${a | b}"), ("unexpected_char", 4..5));
    assert_eq!(perr("${'abc\\q'}"), ("invalid_escape", 6..8));
    assert_eq!(perr("${a.}"), ("unexpected_end", 4..4));
    assert_eq!(perr("${a.+}"), ("unexpected_token", 4..5));
    assert_eq!(perr("${a[1}"), ("unexpected_end", 5..5));
    assert_eq!(perr("${(1}"), ("unexpected_end", 4..4));
    assert_eq!(perr("${f(x: 1, 2)}"), ("mixed_arguments", 10..11));
    assert_eq!(perr("${$foo}"), ("unexpected_token", 3..6));
    match parse_expr("'open") {
        Err(e) => assert_eq!((e.code, e.span), ("unterminated_string", 0..5)),
        Ok(e) => panic!("{e:?}"),
    }
    match parse_expr("") {
        Err(e) => assert_eq!(e.code, "empty_expression"),
        Ok(e) => panic!("{e:?}"),
    }
    let e = ev("${1 +}");
    assert_eq!(e.errors[0].code, "unexpected_end");
    assert_eq!(e.value, json!("${1 +}"));
}

#[test]
fn nesting_limit() {
    let ok = format!("${{{}1{}}}", "(".repeat(100), ")".repeat(100));
    assert_eq!(val(&ok), json!(1));
    let deep = format!("${{{}1{}}}", "(".repeat(200), ")".repeat(200));
    assert_eq!(perr(&deep).0, "too_deep");
    let long_chain = format!("${{1{}}}", " + 1".repeat(300));
    assert_eq!(perr(&long_chain).0, "too_deep");
    let ok_chain = format!("${{1{}}}", " + 1".repeat(200));
    assert_eq!(val(&ok_chain), json!(201));
    let index_chain = format!("${{parameters{}}}", ".x".repeat(300));
    assert_eq!(perr(&index_chain).0, "too_deep");
    let mut deep_value = json!("${1}");
    for _ in 0..200 {
        deep_value = json!([deep_value]);
    }
    let e = evaluate(&deep_value, &data());
    assert_eq!(e.errors[0].code, "too_deep");
}

/// The worst trees the parser accepts must evaluate on a small stack (1 MiB, half a default
/// thread stack).
#[test]
fn deepest_accepted_trees_fit_a_small_stack() {
    let exprs = vec![
        format!("${{{}1{}}}", "-(".repeat(60), ")".repeat(60)),
        format!("${{{}true}}", "!".repeat(127)),
        format!("${{{}1{}}}", "[".repeat(120), "]".repeat(120)),
        format!("${{1{}}}", " + 1".repeat(250)),
        format!("${{{}1{}}}", "concat(".repeat(120), ")".repeat(120)),
        format!("${{{}1{}}}", "{'a': ".repeat(120), "}".repeat(120)),
        format!("${{parameters.cfg{}}}", " |> $".repeat(250)),
        format!(
            "${{{}(1{}){}}}",
            "(".repeat(60),
            " + 1".repeat(60),
            ")".repeat(60)
        ),
    ];
    let handle = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let d = data();
            for src in &exprs {
                let t = parse_template(src);
                assert!(t.is_ok(), "{src}: {t:?}");
                let e = evaluate(&json!(src), &d);
                assert!(e.errors.iter().all(|e| e.code != "too_deep"), "{e:?}");
                if let Ok(t) = t {
                    let _ = references(&t);
                    let _ = function_calls(&t);
                }
            }
        });
    let joined = handle.map(|h| h.join().is_ok());
    assert_eq!(joined.ok(), Some(true));
}

// ---------------------------------------------------------------- analysis

fn refs(src: &str) -> Vec<(Vec<String>, std::ops::Range<usize>)> {
    let t = parse_template(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    references(&t)
        .into_iter()
        .map(|r| (r.segments, r.span))
        .collect()
}

fn segs(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

#[test]
fn references_static_prefixes() {
    assert_eq!(
        refs("${outputs.build['ver-sion'][0]}"),
        vec![(segs(&["outputs", "build", "ver-sion", "0"]), 2..30)]
    );
    assert_eq!(
        refs("${outputs.'make-output'.x.0}"),
        vec![(segs(&["outputs", "make-output", "x", "0"]), 2..27)]
    );
    assert_eq!(
        refs("${parameters.list[parameters.i].name}"),
        vec![
            (segs(&["parameters", "i"]), 18..30),
            (segs(&["parameters", "list"]), 2..17),
        ]
    );
    assert_eq!(
        refs("${parameters.list[1 + 1].x}"),
        vec![(segs(&["parameters", "list"]), 2..17)]
    );
    assert_eq!(
        refs("${parameters.m.(secrets.k)}"),
        vec![
            (segs(&["secrets", "k"]), 16..25),
            (segs(&["parameters", "m"]), 2..14),
        ]
    );
    assert_eq!(
        refs("${$.secrets.a}"),
        vec![(segs(&["secrets", "a"]), 2..13)]
    );
    assert_eq!(refs("${$}"), vec![(segs(&[]), 2..3)]);
    assert_eq!(
        refs("${(parameters.a).b}"),
        vec![(segs(&["parameters", "a", "b"]), 3..18)]
    );
    assert_eq!(refs("${1 + 2}"), vec![]);
    assert_eq!(refs("${jsonUnmarshal('{}').a}"), vec![]);
}

#[test]
fn references_across_segments_and_operators() {
    assert_eq!(
        refs("a ${steps.build.failed && !steps.test.succeeded} b ${event.x}"),
        vec![
            (segs(&["steps", "build", "failed"]), 4..22),
            (segs(&["steps", "test", "succeeded"]), 27..47),
            (segs(&["event", "x"]), 53..60),
        ]
    );
    assert_eq!(
        refs("${concat(secrets.a, [connections.aws.acct], {'k': outputs.s.n})}"),
        vec![
            (segs(&["secrets", "a"]), 9..18),
            (segs(&["connections", "aws", "acct"]), 21..41),
            (segs(&["outputs", "s", "n"]), 50..61),
        ]
    );
    assert_eq!(
        refs("${merge(objects: [parameters.a])}"),
        vec![(segs(&["parameters", "a"]), 18..30)]
    );
}

#[test]
fn references_skip_pipeline_right_sides() {
    assert_eq!(
        refs("${outputs.a.json |> parameters.x + secrets.y |> z}"),
        vec![(segs(&["outputs", "a", "json"]), 2..16)]
    );
    assert_eq!(
        refs("${parameters.a |> b}"),
        vec![(segs(&["parameters", "a"]), 2..14)]
    );
    let e = parse_expr("x |> y").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(expr_references(&e).len(), 1);
}

#[test]
fn function_calls_with_name_spans() {
    let t = parse_template("${coalesce(outputs.a.b, toString(1))} and ${now() |> path($, 'a')}")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        function_calls(&t),
        vec![
            ("coalesce".to_string(), 2..10),
            ("toString".to_string(), 24..32),
            ("now".to_string(), 44..47),
            ("path".to_string(), 53..57),
        ]
    );
    let e = parse_expr("unknownFn(1)").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        expr_function_calls(&e),
        vec![("unknownFn".to_string(), 0..9)]
    );
}

// ---------------------------------------------------------------- when

#[test]
fn when_semantics() {
    let d = data();
    let when = |v: Value| evaluate_when(&v, &d);
    assert_eq!(when(json!(null)), WhenOutcome::Satisfied);
    assert_eq!(when(json!(true)), WhenOutcome::Satisfied);
    assert_eq!(when(json!(false)), WhenOutcome::NotSatisfied);
    assert_eq!(when(json!([])), WhenOutcome::Satisfied);
    assert_eq!(
        when(json!("${parameters.env == 'production'}")),
        WhenOutcome::Satisfied
    );
    assert_eq!(
        when(json!("${steps.build.succeeded}")),
        WhenOutcome::Satisfied
    );
    assert_eq!(
        when(json!("${steps.test.succeeded}")),
        WhenOutcome::NotSatisfied
    );
    assert_eq!(when(json!("${steps.lint.skipped}")), WhenOutcome::Satisfied);
    assert_eq!(
        when(
            json!([true, "${steps.build.succeeded}", {"$fn.equals": [{"$type": "Answer", "askRef": "gate", "name": "approval"}, "approved"]}])
        ),
        WhenOutcome::Satisfied
    );
    // Any false decides, even with unresolved siblings.
    assert_eq!(
        when(json!(["${steps.deploy.succeeded}", false])),
        WhenOutcome::NotSatisfied
    );
    match when(
        json!(["${steps.deploy.succeeded}", true, {"$type": "Answer", "askRef": "g", "name": "approval"}]),
    ) {
        WhenOutcome::Unresolved(u) => {
            assert_eq!(
                serde_json::to_value(&u).unwrap_or_default(),
                json!({
                    "answers": [{"askRef": "g", "name": "approval"}],
                    "statuses": [{"action": "deploy", "property": "succeeded"}],
                })
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn when_is_type_strict() {
    let d = data();
    let when = |v: Value| evaluate_when(&v, &d);
    for bad in [
        json!("true"),
        json!("false"),
        json!(1),
        json!({}),
        json!("${parameters.flag}"),
        json!("${null}"),
    ] {
        match when(bad.clone()) {
            WhenOutcome::Error(errors) => assert_eq!(errors[0].code, "condition_type", "{bad}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    match when(json!([true, false, "yes"])) {
        WhenOutcome::Error(errors) => {
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].code, "condition_type");
            assert_eq!(errors[0].path, "[2]");
        }
        other => panic!("{other:?}"),
    }
    match when(json!(["${1 / 0}"])) {
        WhenOutcome::Error(errors) => {
            assert_eq!(errors[0].code, "division_by_zero");
            assert_eq!(errors[0].path, "[0]");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn when_over_events() {
    let d = with_event(json!({"environment": "production"}));
    assert_eq!(
        evaluate_when(&json!("${event.environment == 'production'}"), &d),
        WhenOutcome::Satisfied
    );
    assert!(matches!(
        evaluate_when(&json!("${event.environment == 'production'}"), &data()),
        WhenOutcome::Unresolved(_)
    ));
}

// ---------------------------------------------------------------- robustness

/// A small deterministic generator, so the test needs no dependency and is reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        let i = (self.next() % items.len() as u64) as usize;
        items[i]
    }
}

fn exercise(src: &str, d: &Data) {
    if let Ok(t) = parse_template(src) {
        let _ = references(&t);
        let _ = function_calls(&t);
    }
    let _ = parse_expr(src);
    let _ = evaluate(&json!(src), d);
    let _ = evaluate_when(&json!(src), d);
    let _ = evaluate(&json!({"$type": "Data", "query": src}), d);
    let _ = evaluate(&json!({"$fn.path": [{"a": [1]}, src]}), d);
}

#[test]
fn never_panics_on_adversarial_input() {
    let d = with_event(json!({"a": [1, {"b": null}]}));
    let n = 10_000;
    let fixed = vec![
        format!("${{{}", "(".repeat(n)),
        format!("${{{}}}", "(".repeat(n)),
        format!("${{{}}}", "[".repeat(n)),
        format!("${{{}}}", "{".repeat(n)),
        format!("${{{}1}}", "!".repeat(n)),
        format!("${{{}1}}", "-".repeat(n)),
        format!("${{a{}}}", ".b".repeat(n)),
        format!("${{a{}}}", "[0]".repeat(n)),
        format!("${{1{}}}", "+1".repeat(n)),
        format!("${{1{}}}", "**1".repeat(n)),
        format!("${{1{}}}", " |> $".repeat(n)),
        format!("${{{}}}", "f(".repeat(n)),
        format!("${{f({})}}", "1,".repeat(n)),
        "${".repeat(n),
        "}".repeat(n),
        "${'".to_string(),
        "${\"abc".to_string(),
        "${'\\".to_string(),
        "${'\\u12'}".to_string(),
        "${'\\U0011FFFF'}".to_string(),
        "${'\\ud800\\u0041'}".to_string(),
        "${é}".to_string(),
        "${日本語.ключ}".to_string(),
        "${'🎉' + 1}".to_string(),
        "${\u{0}}".to_string(),
        "${1e}".to_string(),
        "${1.}".to_string(),
        "${.5}".to_string(),
        "${99999999999999999999999 * 99999999999999999999}".to_string(),
        "${10 ** 10 ** 10}".to_string(),
        "${parameters.cfg.list[18446744073709551616]}".to_string(),
        "${parameters.cfg.list[1e300]}".to_string(),
        format!("${{convertMarkdown('html', '{}')}}", "*_`[".repeat(n)),
        format!("${{convertMarkdown('jira', '{}')}}", "**a".repeat(n)),
        format!("${{convertMarkdown('html', '{}')}}", "[a](".repeat(n)),
        format!("${{jsonUnmarshal('{}')}}", "[".repeat(n)),
    ];
    for src in &fixed {
        exercise(src, &d);
    }
    let pieces = [
        "${",
        "}",
        "{",
        "(",
        ")",
        "[",
        "]",
        "'",
        "\"",
        "\\",
        ".",
        ",",
        ":",
        "$",
        "|>",
        "||",
        "&&",
        "!",
        "-",
        "+",
        "*",
        "**",
        "/",
        "%",
        "<",
        "<=",
        "==",
        "!=",
        "=",
        "&",
        "|",
        " ",
        "1",
        "0.5",
        "1e5",
        "a",
        "b-c",
        "parameters",
        "secrets",
        "outputs",
        "steps",
        "event",
        "connections",
        "true",
        "null",
        "é",
        "日本",
        "🎉",
        "\n",
        "concat",
        "path",
        "merge",
        "exists",
        "coalesce",
        "toString",
        "now",
        "append",
        "equals",
        "jsonUnmarshal",
        "convertMarkdown",
        "'html'",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = 1 + (rng.next() % 24) as usize;
        let mut src = String::from("${");
        for _ in 0..len {
            src.push_str(rng.pick(&pieces));
        }
        if rng.next().is_multiple_of(2) {
            src.push('}');
        }
        exercise(&src, &d);
    }
}
