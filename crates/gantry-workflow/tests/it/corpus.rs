//! The corpora: realistic workflows that must be valid, and broken files whose exact
//! diagnostics (code and line:column) are pinned by snapshots.

use std::fmt::Write as _;

use gantry_workflow::{parse, LineIndex, Parsed};

use crate::corpus_files;

/// Diagnostics as `line:col severity code: message` lines, with help and related notes.
fn render(src: &str, parsed: &Parsed) -> String {
    let lines = LineIndex::new(src);
    let mut out = format!("valid: {}\n", parsed.is_valid());
    for d in &parsed.diagnostics {
        let at = lines.line_col(d.span.start);
        let _ = writeln!(
            out,
            "{}:{} {} {}: {}",
            at.line,
            at.column,
            d.severity.as_str(),
            d.code,
            d.message
        );
        for (span, label) in &d.related {
            let at = lines.line_col(span.start);
            let _ = writeln!(out, "    {}:{} note: {label}", at.line, at.column);
        }
        if let Some(h) = &d.help {
            let _ = writeln!(out, "    help: {h}");
        }
    }
    out
}

#[test]
fn valid_corpus_has_no_diagnostics() {
    let files = corpus_files("valid");
    assert!(files.len() >= 25, "only {} valid workflows", files.len());
    let mut failures = String::new();
    for path in &files {
        let src = std::fs::read_to_string(path).unwrap();
        let parsed = parse(&src);
        if !parsed.diagnostics.is_empty() {
            let _ = write!(failures, "{}:\n{}", path.display(), render(&src, &parsed));
        }
        if parsed.plan.is_none() {
            let _ = writeln!(failures, "{}: no plan", path.display());
        }
        assert!(!parsed.workflow.steps.is_empty(), "{}", path.display());
    }
    assert!(failures.is_empty(), "{failures}");
}

#[test]
fn invalid_corpus_snapshots() {
    let files = corpus_files("invalid");
    assert!(files.len() >= 20, "only {} broken workflows", files.len());
    for path in &files {
        let src = std::fs::read_to_string(path).unwrap();
        let parsed = parse(&src);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(name, render(&src, &parsed));
    }
}

#[test]
fn every_invalid_file_but_the_warning_one_is_invalid() {
    for path in corpus_files("invalid") {
        let src = std::fs::read_to_string(&path).unwrap();
        let parsed = parse(&src);
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            parsed.is_valid(),
            name == "unknown-keys",
            "{name}: {:?}",
            parsed.diagnostics
        );
        assert!(!parsed.diagnostics.is_empty(), "{name} has no diagnostics");
    }
}
