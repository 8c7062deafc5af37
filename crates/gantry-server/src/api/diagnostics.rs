//! Workflow diagnostics as JSON: the shape of `gantry workflow validate --format json` and of a
//! 422 from the API. Lines and columns are 1-based; columns count characters.

use gantry_workflow::{Diagnostic, LineIndex};
use serde_json::{json, Value};

pub fn diagnostic_json(d: &Diagnostic, lines: &LineIndex<'_>) -> Value {
    let start = lines.line_col(d.span.start);
    let end = lines.line_col(d.span.end);
    let mut v = json!({
        "severity": d.severity.as_str(),
        "code": d.code.as_str(),
        "message": d.message,
        "line": start.line,
        "column": start.column,
        "endLine": end.line,
        "endColumn": end.column,
    });
    if let Some(h) = &d.help {
        v["help"] = json!(h);
    }
    v
}

/// Every diagnostic of one source.
pub fn diagnostics_json(src: &str, diags: &[Diagnostic]) -> Value {
    let lines = LineIndex::new(src);
    diags.iter().map(|d| diagnostic_json(d, &lines)).collect()
}
