//! Data documents: every document of a stream, JSON values with the span of each node.

use gantry_workflow::{
    parse_data, parse_data_documents, read_data_documents, Code, DataDoc, LineIndex, PathSegment,
    Span,
};
use serde_json::json;

fn docs(src: &str) -> Vec<DataDoc> {
    parse_data_documents(src).unwrap_or_else(|d| panic!("{src}: {d:#?}"))
}

fn text(src: &str, span: Span) -> &str {
    &src[span.range()]
}

/// `line:col` of a span's start.
fn at(src: &str, span: Span) -> String {
    let lc = LineIndex::new(src).line_col(span.start);
    format!("{}:{}", lc.line, lc.column)
}

#[test]
fn every_document_is_read_and_empty_ones_are_skipped() {
    let src = "a: 1\n---\nb: [x, y]\n---\n---\n# a comment only\n---\nnull\n";
    let d = docs(src);
    let values: Vec<_> = d.iter().map(|d| d.value.clone()).collect();
    assert_eq!(
        values,
        vec![json!({"a": 1}), json!({"b": ["x", "y"]}), json!(null)]
    );
    assert_eq!(text(src, d[0].span()), "a: 1");
    assert_eq!(text(src, d[1].span()), "b: [x, y]");
    assert_eq!(at(src, d[1].span()), "3:1");
    assert_eq!(text(src, d[2].span()), "null");
}

#[test]
fn an_empty_text_has_no_documents() {
    assert!(docs("").is_empty());
    assert!(docs("# nothing\n").is_empty());
    assert!(docs("---\n...\n").is_empty());
}

#[test]
fn spans_of_paths_are_relative_to_the_whole_text() {
    let src = "\
kind: Blueprint
identifier: a
---
kind: Blueprint
identifier: service
schema:
  properties:
    port:
      type: integer
relations:
  deps: [api, db, cache]
";
    let d = docs(src);
    let doc = &d[1];
    assert_eq!(text(src, doc.span_of("identifier")), "service");
    assert_eq!(at(src, doc.span_of("identifier")), "5:13");
    assert_eq!(
        text(src, doc.span_of("schema.properties.port.type")),
        "integer"
    );
    assert_eq!(at(src, doc.span_of("schema.properties.port.type")), "9:13");
    assert_eq!(text(src, doc.span_of("relations.deps[2]")), "cache");
    assert_eq!(text(src, doc.span_of("relations.deps.1")), "db");
    assert_eq!(text(src, doc.key_span_of("schema.properties.port")), "port");
    assert_eq!(at(src, doc.key_span_of("schema.properties.port")), "8:5");
    // A key span is only for a path that ends at a key.
    assert_eq!(text(src, doc.key_span_of("relations.deps[0]")), "api");
    // The structured form names the same nodes.
    let path = [
        PathSegment::Key("relations"),
        PathSegment::Key("deps"),
        PathSegment::Index(1),
    ];
    assert_eq!(text(src, doc.span_at(&path)), "db");
    assert_eq!(
        text(src, doc.key_span_at(&[PathSegment::Key("identifier")])),
        "identifier"
    );
}

#[test]
fn a_missing_path_gives_its_deepest_existing_prefix() {
    let src = "a:\n  b:\n    c: 1\n  list: [x]\n";
    let doc = &docs(src)[0];
    assert_eq!(text(src, doc.span_of("a.b.nope.deeper")), "c: 1");
    assert_eq!(text(src, doc.key_span_of("a.b.nope")), "c: 1");
    assert_eq!(text(src, doc.span_of("a.list[7]")), "[x]");
    assert_eq!(text(src, doc.span_of("a.list.x")), "[x]");
    assert_eq!(doc.span_of(""), doc.span());
    assert_eq!(doc.span_of("zzz"), doc.span());
    assert_eq!(
        doc.span_at(&[PathSegment::Key("a"), PathSegment::Index(0)]),
        doc.span_of("a")
    );
}

#[test]
fn keys_holding_dots_match_the_real_keys() {
    let src = r#"{"labels": {"example.com/team": "x", "example": {"com/team": "y"}}}"#;
    let doc = &docs(src)[0];
    assert_eq!(text(src, doc.span_of("labels.example.com/team")), r#""x""#);
    assert_eq!(
        text(
            src,
            doc.span_at(&[
                PathSegment::Key("labels"),
                PathSegment::Key("example"),
                PathSegment::Key("com/team")
            ])
        ),
        r#""y""#
    );
}

#[test]
fn json_is_read_as_yaml() {
    let src = "[\n  {\"identifier\": \"a\"},\n  {\"identifier\": \"b\", \"n\": 1.5}\n]\n";
    let d = docs(src);
    assert_eq!(d.len(), 1);
    assert_eq!(
        d[0].value,
        json!([{"identifier": "a"}, {"identifier": "b", "n": 1.5}])
    );
    assert_eq!(text(src, d[0].span_of("[1].n")), "1.5");
    assert_eq!(at(src, d[0].span_of("[1].identifier")), "3:18");
}

#[test]
fn spans_are_bytes_and_columns_are_characters() {
    let src = "title: \"Zahlungsdienst für Ümlaute\"\nowner: team-a\n";
    let doc = &docs(src)[0];
    assert_eq!(text(src, doc.span_of("owner")), "team-a");
    assert_eq!(at(src, doc.span_of("owner")), "2:8");
}

#[test]
fn tags_are_refused() {
    let d = parse_data_documents("a: 1\n---\nb: !Secret x\n").unwrap_err();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, Code::UnknownTag);
    assert_eq!(
        d[0].message,
        "tags such as `!Secret` are not allowed in a data file"
    );
}

#[test]
fn problems_of_several_documents_are_all_reported() {
    let src = "a: 1\na: 2\n---\nb: !T x\n";
    let (d, diags) = read_data_documents(src);
    // Both documents are still there to be checked further; the first value of a key wins.
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].value, json!({"a": 1}));
    let found: Vec<_> = diags.iter().map(|d| (d.code, at(src, d.span))).collect();
    assert_eq!(
        found,
        vec![
            (Code::YamlDuplicateKey, "2:1".into()),
            (Code::UnknownTag, "4:4".into())
        ]
    );
}

#[test]
fn a_syntax_error_keeps_the_documents_before_it() {
    let src = "a: 1\n---\nb: 2\n---\nc: [1, 2\n---\nd: 4\n";
    let (d, diags) = read_data_documents(src);
    assert_eq!(
        d.iter().map(|d| d.value.clone()).collect::<Vec<_>>(),
        vec![json!({"a": 1}), json!({"b": 2})]
    );
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, Code::YamlSyntax);
    assert!(parse_data_documents(src).is_err());
}

#[test]
fn anchors_belong_to_their_document() {
    let (d, diags) = read_data_documents("a: &x 1\nb: *x\n---\nc: *x\n");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].value, json!({"a": 1, "b": 1}));
    assert_eq!(diags.len(), 1);
    assert_eq!(
        diags[0].message,
        "alias refers to an anchor that is not defined before it"
    );
}

#[test]
fn merge_keys_apply_and_their_spans_point_into_the_anchor() {
    let src = "base: &b {x: 1}\nm:\n  <<: *b\n  y: 2\n";
    let doc = &docs(src)[0];
    assert_eq!(doc.value, json!({"base": {"x": 1}, "m": {"y": 2, "x": 1}}));
    assert_eq!(at(src, doc.span_of("m.x")), "1:14");
}

#[test]
fn an_empty_value_is_shown_right_after_its_key() {
    let src = "identifier:
title: x
";
    let doc = &docs(src)[0];
    assert_eq!(doc.value, json!({"identifier": null, "title": "x"}));
    assert_eq!(at(src, doc.span_of("identifier")), "1:11");
    assert_eq!(doc.span_of("identifier").range(), 10..10);
}

#[test]
fn the_node_budget_covers_the_whole_stream() {
    // Each document expands to about 1.1 million nodes: under the budget alone, over it twice.
    let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..6 {
        let p = i - 1;
        doc.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    assert_eq!(docs(&doc).len(), 1);
    let stream = format!("{doc}---\n{doc}");
    let (d, diags) = read_data_documents(&stream);
    assert_eq!(d.len(), 1);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, Code::YamlAliasLimit);
}

#[test]
fn parse_data_still_reads_the_first_document_only() {
    assert_eq!(parse_data("a: 1\n---\nb: 2\n").unwrap(), json!({"a": 1}));
}
