//! A small Markdown converter for `convertMarkdown`: headings, paragraphs, bullet and numbered
//! lists, fenced code blocks, and inline bold, italics, code and links.
//!
//! Every scan moves forward and remembers delimiters it failed to find, so run time stays
//! linear-ish on adversarial input.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Markup {
    Jira,
    Html,
}

/// Inline formatting inside formatting (`**bold _italic_**`) nests at most this deep.
const MAX_INLINE_DEPTH: u8 = 4;

enum Block {
    Heading(usize, String),
    Paragraph(Vec<String>),
    List { ordered: bool, items: Vec<String> },
    Code { lang: String, body: Vec<String> },
}

pub(crate) fn convert(to: Markup, src: &str) -> String {
    let mut blocks: Vec<Block> = Vec::new();
    let mut lines = src.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(lang) = trimmed.strip_prefix("```") {
            let mut body = Vec::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                body.push(l.to_string());
            }
            blocks.push(Block::Code {
                lang: lang.trim().to_string(),
                body,
            });
        } else if trimmed.is_empty() {
            // A blank line ends a paragraph or list; the next line starts a new block.
            blocks.push(Block::Paragraph(Vec::new()));
        } else if let Some((level, text)) = heading(trimmed) {
            blocks.push(Block::Heading(level, text.to_string()));
        } else if let Some((ordered, item)) = list_item(trimmed) {
            match blocks.last_mut() {
                Some(Block::List { ordered: o, items }) if *o == ordered => {
                    items.push(item.to_string());
                }
                _ => blocks.push(Block::List {
                    ordered,
                    items: vec![item.to_string()],
                }),
            }
        } else {
            match blocks.last_mut() {
                Some(Block::Paragraph(lines)) => lines.push(trimmed.to_string()),
                _ => blocks.push(Block::Paragraph(vec![trimmed.to_string()])),
            }
        }
    }
    let rendered: Vec<String> = blocks
        .iter()
        .filter(|b| !matches!(b, Block::Paragraph(l) if l.is_empty()))
        .map(|b| render_block(to, b))
        .collect();
    match to {
        Markup::Html => rendered.join("\n"),
        Markup::Jira => rendered.join("\n\n"),
    }
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = line.get(level..)?;
    if rest.is_empty() {
        return Some((level, ""));
    }
    rest.strip_prefix(' ')
        .map(|text| (level, text.trim().trim_end_matches('#').trim_end()))
}

fn list_item(line: &str) -> Option<(bool, &str)> {
    for bullet in ["- ", "* ", "+ "] {
        if let Some(item) = line.strip_prefix(bullet) {
            return Some((false, item.trim()));
        }
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits < 10 {
        let rest = line.get(digits..)?;
        if let Some(item) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return Some((true, item.trim()));
        }
    }
    None
}

fn render_block(to: Markup, block: &Block) -> String {
    match (to, block) {
        (Markup::Html, Block::Heading(level, text)) => {
            format!("<h{level}>{}</h{level}>", inline(to, text))
        }
        (Markup::Jira, Block::Heading(level, text)) => format!("h{level}. {}", inline(to, text)),
        (_, Block::Paragraph(lines)) => {
            let body: Vec<String> = lines.iter().map(|l| inline(to, l)).collect();
            match to {
                Markup::Html => format!("<p>{}</p>", body.join("\n")),
                Markup::Jira => body.join("\n"),
            }
        }
        (Markup::Html, Block::List { ordered, items }) => {
            let tag = if *ordered { "ol" } else { "ul" };
            let items: String = items
                .iter()
                .map(|i| format!("<li>{}</li>", inline(to, i)))
                .collect();
            format!("<{tag}>{items}</{tag}>")
        }
        (Markup::Jira, Block::List { ordered, items }) => {
            let marker = if *ordered { "#" } else { "*" };
            items
                .iter()
                .map(|i| format!("{marker} {}", inline(to, i)))
                .collect::<Vec<_>>()
                .join("\n")
        }
        (Markup::Html, Block::Code { lang, body }) => {
            let class = if lang.is_empty() {
                String::new()
            } else {
                format!(" class=\"language-{}\"", escape_html(lang))
            };
            format!(
                "<pre><code{class}>{}</code></pre>",
                escape_html(&body.join("\n"))
            )
        }
        (Markup::Jira, Block::Code { lang, body }) => {
            let open = if lang.is_empty() {
                "{code}".to_string()
            } else {
                format!("{{code:{lang}}}")
            };
            format!("{open}\n{}\n{{code}}", body.join("\n"))
        }
    }
}

pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn inline(to: Markup, text: &str) -> String {
    let mut out = String::new();
    inline_into(to, text, 0, &mut out);
    out
}

fn tail(s: &str, n: usize) -> &str {
    s.get(n..).unwrap_or("")
}

/// Delimiters searched for, by index into [`Finder`]'s memo.
const DELIMS: [&str; 7] = ["`", "**", "__", "*", "_", "](", ")"];

/// Finds the next occurrence of each delimiter, remembering results so that many openers
/// without a closer cost one scan, not one scan each.
struct Finder<'a> {
    text: &'a str,
    next: [Option<usize>; DELIMS.len()],
    exhausted: [bool; DELIMS.len()],
}

impl Finder<'_> {
    /// Absolute position of the first `DELIMS[which]` at or after `from`.
    fn find(&mut self, from: usize, which: usize) -> Option<usize> {
        if self.exhausted.get(which).copied().unwrap_or(true) {
            return None;
        }
        if let Some(Some(p)) = self.next.get(which) {
            if *p >= from {
                return Some(*p);
            }
        }
        let delim = DELIMS.get(which)?;
        let found = self.text.get(from..)?.find(delim).map(|r| from + r);
        match found {
            Some(p) => {
                if let Some(slot) = self.next.get_mut(which) {
                    *slot = Some(p);
                }
            }
            None => {
                if let Some(slot) = self.exhausted.get_mut(which) {
                    *slot = true;
                }
            }
        }
        found
    }
}

fn inline_into(to: Markup, text: &str, depth: u8, out: &mut String) {
    let mut finder = Finder {
        text,
        next: [None; DELIMS.len()],
        exhausted: [false; DELIMS.len()],
    };
    let slice = |a: usize, b: usize| text.get(a..b).unwrap_or("");
    let mut pos = 0;
    let mut prev: Option<char> = None;
    while let Some(c) = tail(text, pos).chars().next() {
        let rest = tail(text, pos);
        // Inline code: no formatting inside.
        if c == '`' {
            if let Some(end) = finder.find(pos + 1, 0) {
                let code = slice(pos + 1, end);
                match to {
                    Markup::Html => {
                        out.push_str("<code>");
                        out.push_str(&escape_html(code));
                        out.push_str("</code>");
                    }
                    Markup::Jira => {
                        out.push_str("{{");
                        out.push_str(code);
                        out.push_str("}}");
                    }
                }
                pos = end + 1;
                prev = Some('`');
                continue;
            }
        }
        // Link: [text](url)
        if c == '[' {
            if let Some(mid) = finder.find(pos + 1, 5) {
                if let Some(close) = finder.find(mid + 2, 6) {
                    let label = slice(pos + 1, mid);
                    let url = slice(mid + 2, close).trim();
                    match to {
                        Markup::Html => {
                            out.push_str("<a href=\"");
                            out.push_str(&escape_html(url));
                            out.push_str("\">");
                            out.push_str(&escape_html(label));
                            out.push_str("</a>");
                        }
                        Markup::Jira => {
                            out.push('[');
                            out.push_str(label);
                            out.push('|');
                            out.push_str(url);
                            out.push(']');
                        }
                    }
                    pos = close + 1;
                    prev = Some(')');
                    continue;
                }
            }
        }
        // Bold (`**x**`, `__x__`) and italics (`*x*`, `_x_`); `_` only at a word start, so
        // snake_case names stay intact.
        let word_start = !prev.is_some_and(char::is_alphanumeric);
        let emphasis = if rest.starts_with("**") {
            Some((1, 2, true))
        } else if rest.starts_with("__") && word_start {
            Some((2, 2, true))
        } else if c == '*' {
            Some((3, 1, false))
        } else if c == '_' && word_start {
            Some((4, 1, false))
        } else {
            None
        };
        if let Some((which, len, bold)) = emphasis {
            if depth < MAX_INLINE_DEPTH {
                if let Some(end) = finder.find(pos + len, which).filter(|e| *e > pos + len) {
                    let (open, close) = match (to, bold) {
                        (Markup::Html, true) => ("<strong>", "</strong>"),
                        (Markup::Html, false) => ("<em>", "</em>"),
                        (Markup::Jira, true) => ("*", "*"),
                        (Markup::Jira, false) => ("_", "_"),
                    };
                    out.push_str(open);
                    inline_into(to, slice(pos + len, end), depth + 1, out);
                    out.push_str(close);
                    pos = end + len;
                    prev = Some('*');
                    continue;
                }
            }
        }
        match to {
            Markup::Html => out.push_str(&escape_html(c.encode_utf8(&mut [0; 4]))),
            Markup::Jira => out.push(c),
        }
        pos += c.len_utf8();
        prev = Some(c);
    }
}
