//! Diagnostics: every problem found in a workflow, with a stable code and a byte span.
//!
//! Codes are part of Gantry's contract (the CLI's JSON and the API show them); a code is never
//! renamed, only added. Line and column are computed from spans on demand by [`LineIndex`].

use std::fmt;
use std::ops::Range;

/// A byte range in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: u32, end: u32) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }

    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// A sub-range of this span, given as offsets relative to its start, clamped to it.
    pub fn slice(self, r: Range<usize>) -> Span {
        let start = (self.start as usize + r.start).min(self.end as usize) as u32;
        let end = (self.start as usize + r.end).min(self.end as usize) as u32;
        Span::new(start, end)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

macro_rules! codes {
    ($($variant:ident => $text:literal,)*) => {
        /// Stable diagnostic codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code { $($variant,)* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text,)* }
            }
        }
    };
}

codes! {
    YamlSyntax => "yaml_syntax",
    YamlDuplicateKey => "yaml_duplicate_key",
    YamlAliasLimit => "yaml_alias_limit",
    YamlDepthLimit => "yaml_depth_limit",
    YamlExtraDocument => "yaml_extra_document",
    UnknownKey => "unknown_key",
    MissingField => "missing_field",
    InvalidType => "invalid_type",
    InvalidValue => "invalid_value",
    UnsupportedApiVersion => "unsupported_api_version",
    UnknownStepType => "unknown_step_type",
    UnknownTriggerSource => "unknown_trigger_source",
    DuplicateStep => "duplicate_step",
    DuplicateTrigger => "duplicate_trigger",
    DuplicateDependency => "duplicate_dependency",
    UnknownStep => "unknown_step",
    SelfDependency => "self_dependency",
    DependencyCycle => "dependency_cycle",
    UndeclaredParameter => "undeclared_parameter",
    ParameterDefaultType => "parameter_default_type",
    UnknownTag => "unknown_tag",
    TagArgument => "tag_argument",
    ExpressionSyntax => "expression_syntax",
    UnknownFunction => "unknown_function",
    FunctionArity => "function_arity",
    UnknownRoot => "unknown_root",
    RootNotAvailable => "root_not_available",
    InvalidStatusProperty => "invalid_status_property",
    InvalidCron => "invalid_cron",
    InputConflict => "input_conflict",
    InputOverridesCommand => "input_overrides_command",
    ApprovalIgnoredField => "approval_ignored_field",
    NoSteps => "no_steps",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in a workflow file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: Code,
    pub message: String,
    pub span: Span,
    /// A hint, such as "did you mean `deploy`?".
    pub help: Option<String>,
    /// Other places that explain this one ("first defined here").
    pub related: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(code: Code, message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(code: Code, message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message, span)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCol {
    pub line: u32,
    pub column: u32,
}

/// Line starts of a source text, for turning byte offsets into line and column.
pub struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<u32>,
}

impl<'a> LineIndex<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            src.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i as u32 + 1),
        );
        LineIndex { src, starts }
    }

    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(self.src.len() as u32);
        let line = self.starts.partition_point(|&s| s <= offset).max(1) - 1;
        let start = self.starts.get(line).copied().unwrap_or(0);
        let column = self
            .src
            .get(start as usize..offset as usize)
            .map_or(offset - start, |s| s.chars().count() as u32);
        LineCol {
            line: line as u32 + 1,
            column: column + 1,
        }
    }
}

/// "did you mean" over a list of known names.
pub fn suggest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for k in known {
        let score = strsim::jaro_winkler(&name.to_lowercase(), &k.to_lowercase());
        if score >= 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, k));
        }
    }
    best.map(|(_, k)| format!("did you mean `{k}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        let idx = LineIndex::new("ab\nçd\n");
        assert_eq!(idx.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(idx.line_col(3), LineCol { line: 2, column: 1 });
        assert_eq!(idx.line_col(5), LineCol { line: 2, column: 2 });
        assert_eq!(idx.line_col(99), LineCol { line: 3, column: 1 });
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("deplyo", ["build", "deploy"]).as_deref(),
            Some("did you mean `deploy`?")
        );
        assert_eq!(suggest("zzz", ["build", "deploy"]), None);
    }
}
