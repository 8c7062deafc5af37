//! Data documents with spans: YAML or JSON text read as plain JSON values that remember where
//! each of their nodes came from.
//!
//! Definition files (catalog blueprints, entities, scorecards, ...) hold many documents
//! separated by `---` and are checked by code that only sees JSON; [`DataDoc::span_of`] turns
//! the JSON path of a problem back into a byte span of the file, so every message can carry
//! `file:line:col`. Tags are refused: a data file is data only.
//!
//! No I/O; plain functions over text, safe to call from any thread.

use serde_json::Value;

use crate::diagnostic::{Code, Diagnostic, Span};
use crate::yaml::{self, Node, NodeKind};

/// One document of a data file: its value and the span of every node of it.
#[derive(Debug, Clone, PartialEq)]
pub struct DataDoc {
    pub value: Value,
    spans: Spans,
}

/// The spans of a value, shaped like it.
#[derive(Debug, Clone, PartialEq)]
struct Spans {
    span: Span,
    children: Children,
}

#[derive(Debug, Clone, PartialEq)]
enum Children {
    Scalar,
    Seq(Vec<Spans>),
    /// Key text, the key's span, the value's spans; in the order of the value's object.
    Map(Vec<(String, Span, Spans)>),
}

/// One step of a path into a value: a mapping key or a list index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSegment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Where a path lookup ended: the node reached, the span of the key that led to it, and
/// whether the whole path was found.
struct Found<'a> {
    node: &'a Spans,
    key: Option<Span>,
    complete: bool,
}

impl DataDoc {
    /// The span of the document's content in the whole text.
    pub fn span(&self) -> Span {
        self.spans.span
    }

    /// The byte span of the node at a path like `schema.properties.port.type` or
    /// `relations.deps[2]` (a bare `deps.2` is read as an index too). When the full path does
    /// not exist, the span of its deepest existing prefix. Keys that themselves hold dots are
    /// matched against the document's real keys, the longest first.
    pub fn span_of(&self, path: &str) -> Span {
        self.find_str(path).node.span
    }

    /// Like [`DataDoc::span_of`], but for a path that ends at a mapping key, the span of the
    /// key rather than of its value (where an unknown or duplicate key should be shown).
    pub fn key_span_of(&self, path: &str) -> Span {
        let found = self.find_str(path);
        match found.key {
            Some(key) if found.complete => key,
            _ => found.node.span,
        }
    }

    /// [`DataDoc::span_of`] for a path given as segments (no ambiguity about dots in keys).
    pub fn span_at(&self, path: &[PathSegment<'_>]) -> Span {
        self.find(path).node.span
    }

    /// [`DataDoc::key_span_of`] for a path given as segments.
    pub fn key_span_at(&self, path: &[PathSegment<'_>]) -> Span {
        let found = self.find(path);
        match found.key {
            Some(key) if found.complete => key,
            _ => found.node.span,
        }
    }

    fn find(&self, path: &[PathSegment<'_>]) -> Found<'_> {
        let mut found = Found {
            node: &self.spans,
            key: None,
            complete: true,
        };
        for segment in path {
            let next = match (segment, &found.node.children) {
                (PathSegment::Key(k), Children::Map(entries)) => entries
                    .iter()
                    .find(|(name, _, _)| name == k)
                    .map(|(_, key, node)| (node, Some(*key))),
                (PathSegment::Index(i), Children::Seq(items)) => items.get(*i).map(|n| (n, None)),
                _ => None,
            };
            let Some((node, key)) = next else {
                found.complete = false;
                return found;
            };
            found = Found {
                node,
                key,
                complete: true,
            };
        }
        found
    }

    fn find_str(&self, path: &str) -> Found<'_> {
        let mut found = Found {
            node: &self.spans,
            key: None,
            complete: true,
        };
        let mut rest = path;
        loop {
            rest = rest.strip_prefix('.').unwrap_or(rest);
            if rest.is_empty() {
                return found;
            }
            let next = match &found.node.children {
                Children::Map(entries) => entries
                    .iter()
                    .filter(|(name, _, _)| {
                        rest.strip_prefix(name.as_str())
                            .is_some_and(|after| after.is_empty() || after.starts_with(['.', '[']))
                    })
                    .max_by_key(|(name, _, _)| name.len())
                    .map(|(name, key, node)| (node, Some(*key), &rest[name.len()..])),
                Children::Seq(items) => index_prefix(rest)
                    .and_then(|(i, after)| items.get(i).map(|node| (node, None, after))),
                Children::Scalar => None,
            };
            let Some((node, key, after)) = next else {
                found.complete = false;
                return found;
            };
            found = Found {
                node,
                key,
                complete: true,
            };
            rest = after;
        }
    }
}

/// `[3]rest` or `3rest` (where rest is empty or starts a new segment) → (3, rest).
fn index_prefix(s: &str) -> Option<(usize, &str)> {
    let (digits, after) = match s.strip_prefix('[') {
        Some(inner) => {
            let (digits, after) = inner.split_once(']')?;
            (digits, after)
        }
        None => {
            let end = s.find(['.', '[']).unwrap_or(s.len());
            (&s[..end], &s[end..])
        }
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, after))
}

/// Every document of a YAML (or JSON) text. Empty documents are skipped; tags, syntax
/// errors, duplicate keys and the size limits are errors.
pub fn parse_data_documents(src: &str) -> Result<Vec<DataDoc>, Vec<Diagnostic>> {
    let (docs, diagnostics) = read_data_documents(src);
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    Ok(docs)
}

/// Every document of a YAML (or JSON) text that could be read, and every problem found.
///
/// A document with a recoverable problem (a duplicate key keeps its first value, a tag is
/// dropped) is still returned, so a caller can check it further and report all problems at
/// once. A syntax error ends the stream: the documents before it are returned.
pub fn read_data_documents(src: &str) -> (Vec<DataDoc>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut docs = Vec::new();
    let mut stream = yaml::Stream::new(src);
    while let Some(doc) = stream.next_document(&mut diagnostics) {
        let Some(root) = doc.root else { continue };
        if is_empty(&root, src) {
            continue;
        }
        let (value, spans) = spanned(root, src, &mut diagnostics);
        docs.push(DataDoc { value, spans });
    }
    (docs, diagnostics)
}

/// An empty scalar (a document with no content, `key:` with no value): the parser gives it
/// the span of the token after it, which is not a null literal.
fn is_empty(node: &Node, src: &str) -> bool {
    node.tag.is_none()
        && node.kind == NodeKind::Null
        && !matches!(
            src.get(node.span.range()),
            Some("~" | "null" | "Null" | "NULL")
        )
}

/// The span without the blank space a block collection's end takes up after its last node.
fn trimmed(span: Span, src: &str) -> Span {
    let text = src.get(span.range()).unwrap_or_default();
    let blank = text.len() - text.trim_end().len();
    Span::new(span.start, span.end - blank as u32)
}

/// A node as plain JSON and its spans: tags are reported, mapping keys become strings.
fn spanned(node: Node, src: &str, diags: &mut Vec<Diagnostic>) -> (Value, Spans) {
    if let Some(tag) = &node.tag {
        diags.push(Diagnostic::error(
            Code::UnknownTag,
            format!("tags such as `{}` are not allowed in a data file", tag.name),
            node.span,
        ));
    }
    let span = trimmed(node.span, src);
    let leaf = |value| {
        (
            value,
            Spans {
                span,
                children: Children::Scalar,
            },
        )
    };
    match node.kind {
        NodeKind::Null => leaf(Value::Null),
        NodeKind::Bool(b) => leaf(Value::Bool(b)),
        NodeKind::Int(i) => leaf(Value::from(i)),
        NodeKind::Float(f) => {
            leaf(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
        }
        NodeKind::Str(s) => leaf(Value::String(s)),
        NodeKind::Seq(items) => {
            let (values, spans): (Vec<Value>, Vec<Spans>) =
                items.into_iter().map(|i| spanned(i, src, diags)).unzip();
            (
                Value::Array(values),
                Spans {
                    span,
                    children: Children::Seq(spans),
                },
            )
        }
        NodeKind::Map(entries) => {
            let mut object = serde_json::Map::with_capacity(entries.len());
            let mut spans = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                let key_span = k.span;
                let name = k.into_key_text();
                // `key:` with nothing after it: show the empty value right after its key.
                let empty = is_empty(&v, src).then(|| Span::new(key_span.end, key_span.end));
                let (value, mut value_spans) = spanned(v, src, diags);
                if let Some(at) = empty {
                    value_spans.span = at;
                }
                object.insert(name.clone(), value);
                spans.push((name, key_span, value_spans));
            }
            (
                Value::Object(object),
                Spans {
                    span,
                    children: Children::Map(spans),
                },
            )
        }
    }
}
