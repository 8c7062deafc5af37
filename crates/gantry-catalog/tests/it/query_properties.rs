//! Property tests of the query language: arbitrary text and JSON never panic, errors point
//! inside the text, and every query reads back from both of its written forms.

use gantry_catalog::query::{Query, Sort, TextSearch};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::fixture::catalog;

/// Text built from the tokens queries are made of, so the generator reaches deep into the
/// parser instead of failing on the first character.
fn queryish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("x ".to_owned()),
        Just("owner.team ".to_owned()),
        Just("= ".to_owned()),
        Just("!= ".to_owned()),
        Just("<= ".to_owned()),
        Just("in ".to_owned()),
        Just("between ".to_owned()),
        Just("isEmpty ".to_owned()),
        Just("relatedTo ".to_owned()),
        Just("team/payments ".to_owned()),
        Just("upstream ".to_owned()),
        Just("depth ".to_owned()),
        Just("and ".to_owned()),
        Just("or ".to_owned()),
        Just("not ".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(", ".to_owned()),
        Just("{\"a\": 1}".to_owned()),
        Just("{".to_owned()),
        Just("\"".to_owned()),
        Just("\\".to_owned()),
        Just("3.5 ".to_owned()),
        Just("-1e3 ".to_owned()),
        Just("null ".to_owned()),
        Just("\n".to_owned()),
        "[a-z0-9 ]{0,6}",
        "\\PC{0,3}",
    ];
    proptest::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
        prop_oneof![
            Just("and"),
            Just("OR"),
            Just("not"),
            Just("true"),
            Just("12"),
            Just("upstream"),
            Just("depth"),
            Just("a b"),
            Just("\"q\""),
            Just("x\\y"),
            Just(""),
            Just("{}")
        ]
        .prop_map(Value::from),
    ]
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("language".to_owned()),
        Just("owner.team".to_owned()),
        Just("$blueprint".to_owned()),
        Just("properties.a b".to_owned()),
        Just("relatedTo".to_owned()),
        Just("and".to_owned()),
        Just("not".to_owned()),
        "[a-zA-Z_$][a-zA-Z0-9_]{0,6}",
        "[^.\"]{1,6}",
    ]
}

/// A rule in the JSON form; most are valid, some are not.
fn rule() -> impl Strategy<Value = Value> {
    prop_oneof![
        (field(), prop_oneof![Just("="), Just("!=")], scalar())
            .prop_map(|(f, op, v)| json!({"property": f, "operator": op, "value": v})),
        (field(), Just("="), proptest::collection::vec(scalar(), 0..4).prop_map(Value::Array))
            .prop_map(|(f, op, v)| json!({"property": f, "operator": op, "value": v})),
        (field(), prop_oneof![Just("<"), Just(">="), Just("beginsWith"), Just("contains")], "\\PC{0,6}")
            .prop_map(|(f, op, v)| json!({"property": f, "operator": op, "value": v})),
        (field(), prop_oneof![Just("<="), Just(">")], any::<i32>())
            .prop_map(|(f, op, v)| json!({"property": f, "operator": op, "value": v})),
        (field(), prop_oneof![Just("in"), Just("notIn"), Just("containsAny")], proptest::collection::vec(scalar(), 0..4))
            .prop_map(|(f, op, v)| json!({"property": f, "operator": op, "value": v})),
        (field(), prop_oneof![Just("isEmpty"), Just("isNotEmpty")])
            .prop_map(|(f, op)| json!({"property": f, "operator": op})),
        (field(), any::<i16>(), any::<i16>()).prop_map(|(f, a, b)| {
            json!({"property": f, "operator": "between", "value": [a.min(b), a.max(b)]})
        }),
        (
            proptest::option::of("[a-zA-Z]{1,6}"),
            "[a-z]{1,5}/[^\"]{1,8}",
            prop_oneof![Just("upstream"), Just("downstream"), Just("any")],
            1u32..=10,
        )
            .prop_map(|(rel, target, dir, depth)| {
                let mut r = json!({"operator": "relatedTo", "value": target, "direction": dir, "depth": depth});
                if let Some(rel) = rel {
                    r["property"] = json!(rel);
                }
                r
            }),
    ]
}

fn group() -> impl Strategy<Value = Value> {
    rule().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            (
                prop_oneof![Just("and"), Just("or")],
                proptest::collection::vec(inner.clone(), 0..5)
            )
                .prop_map(|(c, rules)| json!({"combinator": c, "rules": rules})),
            inner.prop_map(|r| json!({"combinator": "not", "rules": [r]})),
        ]
    })
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        scalar(),
        Just(json!("combinator")),
        Just(json!("rules")),
        Just(json!("relatedTo")),
    ];
    leaf.prop_recursive(5, 60, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("combinator".to_owned()),
                    Just("rules".to_owned()),
                    Just("property".to_owned()),
                    Just("operator".to_owned()),
                    Just("value".to_owned()),
                    Just("depth".to_owned()),
                    Just("direction".to_owned()),
                    "[a-z]{1,4}",
                ],
                inner,
                0..5,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(src in queryish()) {
        match Query::parse(&src) {
            Ok(q) => {
                // What parses writes back as text that parses to the same query.
                let shown = q.to_string();
                prop_assert_eq!(Query::parse(&shown), Ok(q.clone()), "`{}`", shown);
                prop_assert_eq!(Query::from_json(&q.to_json()), Ok(q.clone()));
                let c = catalog();
                let prepared = q.prepare(&c);
                for e in &c.entities {
                    let _ = prepared.matches(e, &c);
                }
            }
            Err(e) => {
                let (start, end) = e.span().unwrap_or((usize::MAX, 0));
                prop_assert!(start <= end && end <= src.len(), "{e:?} in {src:?}");
                prop_assert!(src.is_char_boundary(start) && src.is_char_boundary(end), "{e:?}");
            }
        }
        let _ = Sort::parse_list(&src);
        let search = TextSearch::new(&src);
        for e in &catalog().entities {
            let _ = search.matches(e);
        }
    }

    #[test]
    fn arbitrary_json_never_panics(v in arbitrary_json()) {
        if let Ok(q) = Query::from_json(&v) {
            prop_assert_eq!(Query::from_json(&q.to_json()), Ok(q.clone()));
            prop_assert_eq!(Query::parse(&q.to_string()), Ok(q.clone()), "`{}`", q);
        }
    }

    #[test]
    fn queries_read_back_from_both_forms(v in group()) {
        let Ok(q) = Query::from_json(&v) else { return Ok(()) };
        let json = q.to_json();
        prop_assert_eq!(Query::from_json(&json), Ok(q.clone()), "{}", json);
        // The canonical form is a fixed point.
        prop_assert_eq!(Query::from_json(&json).map(|q| q.to_json()), Ok(json.clone()));
        let shown = q.to_string();
        prop_assert_eq!(Query::parse(&shown), Ok(q.clone()), "`{}` from {}", shown, v);
        let c = catalog();
        let prepared = q.prepare(&c);
        let again = Query::parse(&shown).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let prepared_again = again.prepare(&c);
        for e in &c.entities {
            prop_assert_eq!(prepared.matches(e, &c), prepared_again.matches(e, &c));
        }
    }
}
