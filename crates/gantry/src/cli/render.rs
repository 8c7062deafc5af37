//! Output for people: diagnostics (miette, with the source line; JSON for programs) and plain
//! tables of server lists.

use gantry_workflow::{Diagnostic, LineIndex, Severity};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};

pub(crate) use gantry_server::api::diagnostics::diagnostic_json;

/// Renders diagnostics of one file, miette-style, with the source line under each.
pub(crate) fn diagnostics_text(file: &str, src: &str, diags: &[Diagnostic], color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(usize::MAX / 2)
        .with_context_lines(1);
    let lines = LineIndex::new(src);
    let mut out = String::new();
    for d in diags {
        let at = lines.line_col(d.span.start);
        let mut md = MietteDiagnostic::new(format!(
            "{file}:{}:{}: {} [{}]",
            at.line, at.column, d.message, d.code
        ))
        .with_severity(match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
        .with_label(LabeledSpan::new_primary_with_span(
            None,
            (d.span.start as usize, (d.span.end - d.span.start) as usize),
        ));
        for (span, label) in &d.related {
            md = md.and_label(LabeledSpan::new_with_span(
                Some(label.clone()),
                (span.start as usize, (span.end - span.start) as usize),
            ));
        }
        if let Some(h) = &d.help {
            md = md.with_help(h.clone());
        }
        let report =
            miette::Report::new(md).with_source_code(NamedSource::new(file, src.to_owned()));
        if handler.render_report(&mut out, report.as_ref()).is_err() {
            out.push_str(&format!(
                "{file}:{}:{}: {}\n",
                at.line, at.column, d.message
            ));
        }
        out.push('\n');
    }
    out
}

/// A plain-text table: a header row, then one row per item, columns padded to their widest cell
/// (counted in characters) and separated by two spaces; no trailing spaces.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_pads_columns_by_characters() {
        let rows = vec![
            vec!["é".to_owned(), "x".to_owned(), String::new()],
            vec!["longer".to_owned(), "y".to_owned(), "z".to_owned()],
        ];
        assert_eq!(
            super::table(&["A", "B", "C"], &rows),
            "A       B  C\né       x\nlonger  y  z\n"
        );
    }
}
