//! The one adapter over the YAML event parser (`saphyr-parser`, pre-1.0 and pinned).
//!
//! Turns a YAML text (its first document, or each document of a stream) into a [`Node`] tree
//! with byte spans, tags kept, anchors and aliases expanded under a budget, `<<` merge keys
//! applied and duplicate keys reported.
//! Scalars are resolved with the YAML 1.2 core schema, as Relay's Go parser did.
//! It knows nothing of workflows; an upgrade of the parser crate touches this file only.
//! The tree is built with an explicit stack, so deep nesting cannot overflow the call stack.

use std::borrow::Cow;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, StrInput};

use crate::diagnostic::{Code, Diagnostic, Span};

/// Most nodes a document may expand to, aliases included (the billion-laughs guard).
const MAX_NODES: usize = 2_000_000;
/// Deepest nesting of sequences and mappings.
const MAX_DEPTH: usize = 256;

/// A YAML node with the byte span of its source text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) span: Span,
    /// A local tag such as `!Parameter` or `!Fn.concat`, or `!!binary`; core-schema tags that
    /// only force a type (`!!str`, `!!int`, ...) are applied and dropped.
    pub(crate) tag: Option<Tag>,
    pub(crate) kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tag {
    /// `!Parameter`, `!Fn.concat`, `!!binary`, or the full form of an unknown tag.
    pub(crate) name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The text of a scalar key (`true`, `1` and `x` all have one); `None` for collections.
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Null => Some(String::new()),
            NodeKind::Bool(b) => Some(b.to_string()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Seq(_) | NodeKind::Map(_) => None,
        }
    }

    /// The text of a mapping key, moved out when it is a string.
    pub(crate) fn into_key_text(self) -> String {
        match self.kind {
            NodeKind::Str(s) => s,
            _ => self.scalar_text().unwrap_or_default(),
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) | NodeKind::Float(_) => "a number",
            NodeKind::Str(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    fn size(&self) -> usize {
        match &self.kind {
            NodeKind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            NodeKind::Map(entries) => {
                1 + entries
                    .iter()
                    .map(|(k, v)| k.size() + v.size())
                    .sum::<usize>()
            }
            _ => 1,
        }
    }
}

/// Maps the parser's character offsets to byte offsets.
struct Offsets<'a> {
    src: &'a str,
    /// Byte offset of every char; empty when the source is ASCII (offsets are then equal).
    table: Vec<u32>,
}

impl<'a> Offsets<'a> {
    fn new(src: &'a str) -> Self {
        let table = if src.is_ascii() {
            Vec::new()
        } else {
            let mut t: Vec<u32> = src.char_indices().map(|(i, _)| i as u32).collect();
            t.push(src.len() as u32);
            t
        };
        Offsets { src, table }
    }

    fn byte(&self, char_index: usize) -> u32 {
        if self.table.is_empty() {
            char_index.min(self.src.len()) as u32
        } else {
            self.table
                .get(char_index)
                .copied()
                .unwrap_or(self.src.len() as u32)
        }
    }

    fn span(&self, s: &saphyr_parser::Span) -> Span {
        Span::new(self.byte(s.start.index()), self.byte(s.end.index()))
    }
}

/// An open sequence or mapping. Its children wait on one shared stack from `first` on, so each
/// collection is allocated once, at its exact size, when it closes.
struct Frame {
    is_map: bool,
    start: Span,
    tag: Option<Tag>,
    anchor: usize,
    first: usize,
}

/// Loads the first document of `src`. Problems go to `diags`; `None` when nothing usable was read.
/// A second document is reported as a warning and not read.
pub(crate) fn load(src: &str, diags: &mut Vec<Diagnostic>) -> Option<Node> {
    let mut stream = Stream::new(src);
    let root = stream.next_document(diags)?.root;
    match stream.next_start(diags) {
        Next::Start(span) => diags.push(
            Diagnostic::warning(
                Code::YamlExtraDocument,
                "only the first YAML document is read; this one is ignored",
                span,
            )
            .with_help("put each workflow in its own file"),
        ),
        Next::End => {}
        Next::Stopped => return None,
    }
    root
}

/// One document of a stream; `root` is `None` when its content could not be read.
pub(crate) struct Document {
    pub(crate) root: Option<Node>,
}

enum Next {
    Start(Span),
    End,
    Stopped,
}

/// A YAML stream read one document at a time.
/// The node budget covers the whole stream; anchors belong to their document, as YAML says.
pub(crate) struct Stream<'a> {
    offsets: Offsets<'a>,
    parser: Parser<'a, StrInput<'a>>,
    nodes: usize,
    /// Set after a problem the parser cannot go on from (it was reported).
    stopped: bool,
    /// A document start already read by [`Stream::next_start`].
    started: bool,
}

impl<'a> Stream<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Stream {
            offsets: Offsets::new(src),
            parser: Parser::new_from_str(src),
            nodes: 0,
            stopped: false,
            started: false,
        }
    }

    /// Reads up to the next document start. A syntax error stops the stream.
    fn next_start(&mut self, diags: &mut Vec<Diagnostic>) -> Next {
        if self.stopped {
            return Next::Stopped;
        }
        if self.started {
            return Next::End;
        }
        loop {
            match self.parser.next_event() {
                None | Some(Ok((Event::StreamEnd, _))) => return Next::End,
                Some(Ok((Event::DocumentStart(_), raw_span))) => {
                    self.started = true;
                    return Next::Start(self.offsets.span(&raw_span));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    diags.push(scan_error(&self.offsets, &e));
                    self.stopped = true;
                    return Next::Stopped;
                }
            }
        }
    }

    /// The next document; `None` at the end of the stream or once a problem stopped it
    /// (the problem is in `diags`).
    pub(crate) fn next_document(&mut self, diags: &mut Vec<Diagnostic>) -> Option<Document> {
        if !self.started {
            match self.next_start(diags) {
                Next::Start(_) => {}
                Next::End | Next::Stopped => return None,
            }
        }
        self.started = false;
        let root = self.document(diags);
        if root.is_none() && self.stopped {
            return None;
        }
        Some(Document { root })
    }

    /// The content of the document whose start was just read, through its end.
    fn document(&mut self, diags: &mut Vec<Diagnostic>) -> Option<Node> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut children: Vec<Node> = Vec::new();
        let mut anchors: Vec<Option<Node>> = Vec::new();
        let mut root: Option<Node> = None;
        let offsets = &self.offsets;
        loop {
            let (event, raw_span) = match self.parser.next_event() {
                None => break,
                Some(Ok(ev)) => ev,
                Some(Err(e)) => {
                    diags.push(scan_error(offsets, &e));
                    self.stopped = true;
                    return None;
                }
            };
            let span = offsets.span(&raw_span);
            let finished: Option<(Node, usize)> = match event {
                Event::StreamStart | Event::Nothing | Event::DocumentStart(_) => None,
                Event::DocumentEnd | Event::StreamEnd => break,
                Event::Alias(id) => {
                    let Some(Some(node)) = anchors.get(id) else {
                        diags.push(Diagnostic::error(
                            Code::YamlSyntax,
                            "alias refers to an anchor that is not defined before it",
                            span,
                        ));
                        self.stopped = true;
                        return None;
                    };
                    self.nodes += node.size();
                    if self.nodes > MAX_NODES {
                        diags.push(
                            Diagnostic::error(
                                Code::YamlAliasLimit,
                                format!("aliases expand to more than {MAX_NODES} nodes"),
                                span,
                            )
                            .with_help("this looks like an alias bomb; expand fewer aliases"),
                        );
                        self.stopped = true;
                        return None;
                    }
                    Some((node.clone(), 0))
                }
                Event::Scalar(value, style, anchor, tag) => {
                    self.nodes += 1;
                    let (node, problem) = scalar(value, style, tag.as_deref(), span);
                    diags.extend(problem);
                    Some((node, anchor))
                }
                Event::SequenceStart(anchor, tag) => {
                    self.nodes += 1;
                    if stack.len() >= MAX_DEPTH {
                        diags.push(depth_error(span));
                        self.stopped = true;
                        return None;
                    }
                    stack.push(Frame {
                        is_map: false,
                        start: span,
                        tag: collection_tag(tag.as_deref(), "seq", span, diags),
                        anchor,
                        first: children.len(),
                    });
                    None
                }
                Event::MappingStart(anchor, tag) => {
                    self.nodes += 1;
                    if stack.len() >= MAX_DEPTH {
                        diags.push(depth_error(span));
                        self.stopped = true;
                        return None;
                    }
                    stack.push(Frame {
                        is_map: true,
                        start: span,
                        tag: collection_tag(tag.as_deref(), "map", span, diags),
                        anchor,
                        first: children.len(),
                    });
                    None
                }
                Event::SequenceEnd => match stack.pop() {
                    Some(Frame {
                        is_map: false,
                        start,
                        tag,
                        anchor,
                        first,
                    }) => {
                        let items: Vec<Node> = children.drain(first..).collect();
                        let end = items
                            .last()
                            .map_or(start.end, |n| n.span.end.max(start.end));
                        Some((
                            Node {
                                span: Span::new(start.start, end.max(span.end)),
                                tag,
                                kind: NodeKind::Seq(items),
                            },
                            anchor,
                        ))
                    }
                    _ => {
                        diags.push(Diagnostic::error(
                            Code::YamlSyntax,
                            "unbalanced sequence",
                            span,
                        ));
                        self.stopped = true;
                        return None;
                    }
                },
                Event::MappingEnd => match stack.pop() {
                    Some(Frame {
                        is_map: true,
                        start,
                        tag,
                        anchor,
                        first,
                    }) => {
                        let mut entries = Vec::with_capacity((children.len() - first) / 2);
                        let mut drained = children.drain(first..);
                        while let (Some(k), Some(v)) = (drained.next(), drained.next()) {
                            entries.push((k, v));
                        }
                        drop(drained);
                        let end = entries
                            .last()
                            .map_or(start.end, |(_, v)| v.span.end.max(start.end));
                        let entries = merge_and_dedup(entries, diags);
                        Some((
                            Node {
                                span: Span::new(start.start, end.max(span.end)),
                                tag,
                                kind: NodeKind::Map(entries),
                            },
                            anchor,
                        ))
                    }
                    _ => {
                        diags.push(Diagnostic::error(
                            Code::YamlSyntax,
                            "unbalanced mapping",
                            span,
                        ));
                        self.stopped = true;
                        return None;
                    }
                },
            };
            let Some((node, anchor)) = finished else {
                continue;
            };
            if self.nodes > MAX_NODES {
                diags.push(Diagnostic::error(
                    Code::YamlAliasLimit,
                    format!("the document has more than {MAX_NODES} nodes"),
                    node.span,
                ));
                self.stopped = true;
                return None;
            }
            if anchor > 0 {
                if anchors.len() <= anchor {
                    anchors.resize(anchor + 1, None);
                }
                anchors[anchor] = Some(node.clone());
            }
            if stack.is_empty() {
                root = Some(node);
            } else {
                children.push(node);
            }
        }
        root
    }
}

/// A tree as plain JSON data: tags are reported, mapping keys become strings.
pub(crate) fn to_json(node: Node, diags: &mut Vec<Diagnostic>) -> serde_json::Value {
    use serde_json::Value;
    if let Some(tag) = &node.tag {
        diags.push(Diagnostic::error(
            Code::UnknownTag,
            format!("tags such as `{}` are not allowed in a data file", tag.name),
            node.span,
        ));
    }
    match node.kind {
        NodeKind::Null => Value::Null,
        NodeKind::Bool(b) => Value::Bool(b),
        NodeKind::Int(i) => Value::from(i),
        NodeKind::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        NodeKind::Str(s) => Value::String(s),
        NodeKind::Seq(items) => items.into_iter().map(|i| to_json(i, diags)).collect(),
        NodeKind::Map(entries) => Value::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k.into_key_text(), to_json(v, diags)))
                .collect(),
        ),
    }
}

fn depth_error(span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::YamlDepthLimit,
        format!("nesting is deeper than {MAX_DEPTH} levels"),
        span,
    )
}

fn scan_error(offsets: &Offsets<'_>, e: &ScanError) -> Diagnostic {
    let at = offsets.byte(e.marker().index());
    let end = offsets
        .src
        .get(at as usize..)
        .and_then(|rest| rest.chars().next())
        .map_or(at, |c| at + c.len_utf8() as u32);
    Diagnostic::error(
        Code::YamlSyntax,
        format!("invalid YAML: {}", e.info()),
        Span::new(at, end),
    )
}

fn tag_name(tag: &saphyr_parser::Tag) -> String {
    if tag.handle == "tag:yaml.org,2002:" {
        format!("!!{}", tag.suffix)
    } else if tag.handle == "!" {
        format!("!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

fn collection_tag(
    tag: Option<&saphyr_parser::Tag>,
    core: &str,
    span: Span,
    diags: &mut Vec<Diagnostic>,
) -> Option<Tag> {
    let tag = tag?;
    let name = tag_name(tag);
    if tag.handle == "tag:yaml.org,2002:" {
        if tag.suffix != core {
            diags.push(Diagnostic::error(
                Code::UnknownTag,
                format!("the tag `{name}` cannot be used on a {core}"),
                span,
            ));
        }
        return None;
    }
    Some(Tag { name })
}

fn scalar(
    value: Cow<'_, str>,
    style: ScalarStyle,
    tag: Option<&saphyr_parser::Tag>,
    span: Span,
) -> (Node, Option<Diagnostic>) {
    let node = |kind| Node {
        span,
        tag: None,
        kind,
    };
    let Some(tag) = tag else {
        let kind = match style {
            ScalarStyle::Plain => plain(&value),
            _ => None,
        };
        return (
            node(kind.unwrap_or_else(|| NodeKind::Str(value.into_owned()))),
            None,
        );
    };
    let name = tag_name(tag);
    if tag.handle != "tag:yaml.org,2002:" {
        // Local tags (`!Parameter p`) keep their scalar as a string argument.
        return (
            Node {
                span,
                tag: Some(Tag { name }),
                kind: NodeKind::Str(value.into_owned()),
            },
            None,
        );
    }
    let resolved = plain(&value);
    let kind = match (tag.suffix.as_str(), resolved) {
        ("str", _) => return (node(NodeKind::Str(value.into_owned())), None),
        ("binary", _) => {
            return (
                Node {
                    span,
                    tag: Some(Tag { name }),
                    kind: NodeKind::Str(value.split_whitespace().collect()),
                },
                None,
            )
        }
        ("null", Some(NodeKind::Null)) => Ok(NodeKind::Null),
        ("bool", Some(NodeKind::Bool(b))) => Ok(NodeKind::Bool(b)),
        ("int", Some(NodeKind::Int(i))) => Ok(NodeKind::Int(i)),
        ("float", Some(NodeKind::Int(i))) => Ok(NodeKind::Float(i as f64)),
        ("float", Some(NodeKind::Float(f))) => Ok(NodeKind::Float(f)),
        ("null" | "bool" | "int" | "float", _) => {
            let what = match tag.suffix.as_str() {
                "null" => "null",
                "bool" => "a boolean",
                "int" => "an integer",
                _ => "a number",
            };
            Err(Diagnostic::error(
                Code::InvalidType,
                format!("`{value}` is not {what} (tag `{name}`)"),
                span,
            ))
        }
        _ => Err(Diagnostic::error(
            Code::UnknownTag,
            format!("the tag `{name}` cannot be used on a scalar"),
            span,
        )),
    };
    match kind {
        Ok(kind) => (node(kind), None),
        Err(d) => (node(NodeKind::Str(value.into_owned())), Some(d)),
    }
}

/// YAML 1.2 core schema resolution of an untagged plain scalar; `None` for a string.
fn plain(v: &str) -> Option<NodeKind> {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return Some(NodeKind::Null),
        "true" | "True" | "TRUE" => return Some(NodeKind::Bool(true)),
        "false" | "False" | "FALSE" => return Some(NodeKind::Bool(false)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Some(NodeKind::Float(f64::INFINITY))
        }
        "-.inf" | "-.Inf" | "-.INF" => return Some(NodeKind::Float(f64::NEG_INFINITY)),
        ".nan" | ".NaN" | ".NAN" => return Some(NodeKind::Float(f64::NAN)),
        _ => {}
    }
    let first = *v.as_bytes().first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    if let Some(hex) = v.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Some(NodeKind::Int(i));
        }
    }
    if let Some(oct) = v.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Some(NodeKind::Int(i));
        }
    }
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = v.parse::<i64>() {
            return Some(NodeKind::Int(i));
        }
    }
    if is_float(digits) {
        if let Ok(f) = v.parse::<f64>() {
            return Some(NodeKind::Float(f));
        }
    }
    None
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !(int.is_empty() && frac.is_empty())
        }
        None => !mantissa.is_empty() && mantissa.bytes().all(|b| b.is_ascii_digit()),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

fn is_merge_key(key: &Node) -> bool {
    key.tag.is_none() && matches!(&key.kind, NodeKind::Str(s) if s == "<<")
}

/// Applies `<<` merge keys (explicit keys win, earlier merged maps win over later ones) and
/// reports duplicate keys.
/// True when every key is a distinct scalar and none is `<<`: the common case, checked without
/// allocating for small mappings.
fn plain_and_distinct(entries: &[(Node, Node)]) -> bool {
    fn key(n: &Node) -> Option<Cow<'_, str>> {
        match &n.kind {
            NodeKind::Str(s) if n.tag.is_none() && s == "<<" => None,
            NodeKind::Str(s) => Some(Cow::Borrowed(s.as_str())),
            NodeKind::Seq(_) | NodeKind::Map(_) => None,
            _ => n.scalar_text().map(Cow::Owned),
        }
    }
    if entries.len() <= 16 {
        for (i, (k, _)) in entries.iter().enumerate() {
            let Some(k) = key(k) else { return false };
            if entries[..i]
                .iter()
                .any(|(other, _)| key(other).as_ref() == Some(&k))
            {
                return false;
            }
        }
        return true;
    }
    let mut seen = std::collections::HashSet::with_capacity(entries.len());
    entries
        .iter()
        .all(|(k, _)| key(k).is_some_and(|k| seen.insert(k)))
}

fn merge_and_dedup(entries: Vec<(Node, Node)>, diags: &mut Vec<Diagnostic>) -> Vec<(Node, Node)> {
    if plain_and_distinct(&entries) {
        return entries;
    }
    let has_merge = entries.iter().any(|(k, _)| is_merge_key(k));
    let mut out: Vec<(Node, Node)> = Vec::with_capacity(entries.len());
    let mut merged: Vec<(Node, Node)> = Vec::new();
    let mut seen: std::collections::HashMap<String, Span> =
        std::collections::HashMap::with_capacity(entries.len());
    for (key, value) in entries {
        if has_merge && is_merge_key(&key) {
            let sources: Vec<Node> = match value.kind {
                NodeKind::Map(_) => vec![value],
                NodeKind::Seq(items) => items,
                _ => {
                    diags.push(Diagnostic::error(
                        Code::InvalidType,
                        "a `<<` merge key takes a mapping or a list of mappings",
                        value.span,
                    ));
                    continue;
                }
            };
            for source in sources {
                match source.kind {
                    NodeKind::Map(inner) => merged.extend(inner),
                    _ => diags.push(Diagnostic::error(
                        Code::InvalidType,
                        "a `<<` merge key takes a mapping or a list of mappings",
                        source.span,
                    )),
                }
            }
            continue;
        }
        let Some(text) = key.scalar_text() else {
            diags.push(Diagnostic::error(
                Code::InvalidType,
                "mapping keys must be scalars",
                key.span,
            ));
            continue;
        };
        if let Some(first) = seen.get(&text) {
            diags.push(
                Diagnostic::error(
                    Code::YamlDuplicateKey,
                    format!("duplicate key `{text}`"),
                    key.span,
                )
                .with_related(*first, "first defined here"),
            );
            continue;
        }
        seen.insert(text, key.span);
        out.push((key, value));
    }
    for (key, value) in merged {
        if let Some(text) = key.scalar_text() {
            if seen.contains_key(&text) {
                continue;
            }
            seen.insert(text, key.span);
            out.push((key, value));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_ok(src: &str) -> Node {
        let mut d = Vec::new();
        let n = load(src, &mut d);
        assert!(d.is_empty(), "{d:?}");
        n.unwrap_or_else(|| panic!("no node for {src}"))
    }

    #[test]
    fn core_schema_scalars() {
        assert_eq!(plain("12"), Some(NodeKind::Int(12)));
        assert_eq!(plain("-3"), Some(NodeKind::Int(-3)));
        assert_eq!(plain("1.5"), Some(NodeKind::Float(1.5)));
        assert_eq!(plain("1e3"), Some(NodeKind::Float(1000.0)));
        assert_eq!(plain("~"), Some(NodeKind::Null));
        assert_eq!(plain("yes"), None);
        assert_eq!(plain("1.2.3"), None);
        assert_eq!(plain("0x1f"), Some(NodeKind::Int(31)));
        assert_eq!(plain("-"), None);
        assert_eq!(plain("."), None);
    }

    #[test]
    fn spans_are_bytes_even_after_unicode() {
        let src = "a: \"héllo\"\nb: x\n";
        let n = load_ok(src);
        let NodeKind::Map(entries) = n.kind else {
            panic!("not a map")
        };
        let (k, v) = &entries[1];
        assert_eq!(&src[k.span.range()], "b");
        assert_eq!(&src[v.span.range()], "x");
    }

    #[test]
    fn tags_are_kept() {
        let n = load_ok("a: !Parameter p\nb: !Fn.concat [x, y]\nc: !!binary aGk=\n");
        let NodeKind::Map(entries) = n.kind else {
            panic!("not a map")
        };
        let tags: Vec<_> = entries
            .iter()
            .map(|(_, v)| v.tag.as_ref().map(|t| t.name.clone()))
            .collect();
        assert_eq!(
            tags,
            vec![
                Some("!Parameter".into()),
                Some("!Fn.concat".into()),
                Some("!!binary".into())
            ]
        );
    }

    #[test]
    fn merge_keys_and_duplicates() {
        let mut d = Vec::new();
        let n = load(
            "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\nm2: 1\nm2: 2\n",
            &mut d,
        )
        .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, Code::YamlDuplicateKey);
        let NodeKind::Map(entries) = n.kind else {
            panic!("not a map")
        };
        let NodeKind::Map(m) = &entries[1].1.kind else {
            panic!("not a map")
        };
        let pairs: Vec<_> = m
            .iter()
            .map(|(k, v)| (k.scalar_text().unwrap(), v.scalar_text().unwrap()))
            .collect();
        assert_eq!(
            pairs,
            vec![("y".into(), "3".into()), ("x".into(), "1".into())]
        );
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let mut d = Vec::new();
        assert!(load(&src, &mut d).is_none());
        assert_eq!(d[0].code, Code::YamlAliasLimit);
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let src = "[".repeat(10_000);
        let mut d = Vec::new();
        assert!(load(&src, &mut d).is_none());
        assert!(!d.is_empty());
    }
}
