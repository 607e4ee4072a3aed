//! Where a key is written in a YAML file, and which key is written at a position.
//!
//! Errors found after parsing (a grid value that makes an invalid job, a zip of
//! unequal lengths) no longer carry positions, so the sweep reader finds the key's
//! line by scanning the text. This understands block mappings, block lists and keys
//! inside one-line flow mappings (`model: { preset: nano }`), which is how sweeps
//! are written; anything else falls back to the nearest enclosing key it can find.

/// One step of a path into the document.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// A non-blank, non-comment line: where its list markers and its content start.
#[derive(Debug)]
struct Line<'a> {
    /// Line number, from 1.
    number: usize,
    raw: &'a str,
    /// Column (from 0) of the first `- ` marker, or of the content when there is none.
    marker: usize,
    is_item: bool,
    /// Column (from 0) where the content starts, after any `- ` markers.
    indent: usize,
}

impl Line<'_> {
    fn content(&self) -> &str {
        &self.raw[self.indent..]
    }

    /// The block key this line starts with, if any (`key: ...`).
    fn key(&self) -> Option<&str> {
        let content = self.content();
        let colon = content.find(':')?;
        let after = &content[colon + 1..];
        let key = content[..colon].trim().trim_matches(['"', '\'']);
        let valid = !key.is_empty() && !key.contains(['{', '[', ' ', ',']);
        (valid && (after.is_empty() || after.starts_with([' ', '\t']))).then_some(key)
    }
}

fn lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let marker = raw.len() - trimmed.len();
        let mut indent = marker;
        let mut is_item = false;
        while raw[indent..].starts_with("- ") || &raw[indent..] == "-" {
            is_item = true;
            indent += 1;
            indent += raw[indent..].len() - raw[indent..].trim_start().len();
        }
        out.push(Line {
            number: index + 1,
            raw,
            marker,
            is_item,
            indent,
        });
    }
    out
}

/// Line and column (from 1) where `path` is written, or where its longest prefix that
/// could be found is; (1, 1) when not even the first key is found.
pub(crate) fn find(text: &str, path: &[Segment]) -> (usize, usize) {
    let lines = lines(text);
    let mut best = (1, 1);
    let mut range = 0..lines.len();
    // Inside a one-line flow mapping: the line and the byte offset to search from.
    let mut flow: Option<(usize, usize)> = None;
    for segment in path {
        if let Some((index, offset)) = flow {
            let line = &lines[index];
            let Segment::Key(key) = segment else { break };
            let Some(at) = flow_key(&line.raw[offset..], key) else {
                break;
            };
            best = (line.number, offset + at + 1);
            flow = Some((index, offset + at + key.len() + 1));
            continue;
        }
        let Some(first) = lines.get(range.start).filter(|_| !range.is_empty()) else {
            break;
        };
        let found = match segment {
            Segment::Key(key) => {
                let indent = first.indent;
                range
                    .clone()
                    .find(|&i| lines[i].indent == indent && lines[i].key() == Some(key))
            }
            Segment::Index(n) => {
                let marker = first.marker;
                range
                    .clone()
                    .filter(|&i| lines[i].is_item && lines[i].marker == marker)
                    .nth(*n)
            }
        };
        let Some(index) = found else { break };
        let line = &lines[index];
        best = (line.number, line.indent + 1);
        range = match segment {
            Segment::Key(_) => {
                let rest = line.content().split_once(':').map_or("", |(_, rest)| rest);
                if !strip_comment(rest).trim().is_empty() {
                    flow = Some((index, line.raw.len() - rest.len()));
                }
                index + 1..block_end(&lines, index, line.indent, false)
            }
            Segment::Index(_) => index..block_end(&lines, index, line.marker, true),
        };
    }
    best
}

/// First line after `start` that no longer belongs to the block opened there.
fn block_end(lines: &[Line], start: usize, indent: usize, item: bool) -> usize {
    (start + 1..lines.len())
        .find(|&i| {
            let line = &lines[i];
            if item {
                line.marker < indent || (line.marker == indent && line.is_item)
            } else {
                line.marker < indent || (line.marker == indent && !line.is_item)
            }
        })
        .unwrap_or(lines.len())
}

fn strip_comment(text: &str) -> &str {
    text.find(" #").map_or(text, |at| &text[..at])
}

/// Byte offset of `key:` inside flow text, as a whole key (after `{`, `,` or a space).
fn flow_key(text: &str, key: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(key) {
        let start = from + at;
        let before = text[..start].chars().next_back();
        let after = &text[start + key.len()..];
        if matches!(before, None | Some('{' | ',' | ' ')) && after.starts_with(':') {
            return Some(start);
        }
        from = start + key.len();
    }
    None
}

/// The dotted key written at `line` (from 1): its block ancestors, its own key, and
/// the last flow key before `column` when the position is inside a flow mapping.
pub(crate) fn key_at(text: &str, line: usize, column: usize) -> String {
    let lines = lines(text);
    let Some(index) = lines.iter().rposition(|l| l.number <= line) else {
        return String::new();
    };
    let mut path: Vec<String> = Vec::new();
    let here = &lines[index];
    if here.number == line
        && let Some(key) = here.key()
    {
        let start = here.indent + key.len() + 1;
        let inline = flow_key_before(
            &here.raw[start..],
            column.saturating_sub(1).saturating_sub(start),
        );
        path.extend(inline.map(str::to_owned));
    }
    if let Some(key) = here.key() {
        path.push(key.to_owned());
    }
    let mut indent = here.indent;
    for line in lines[..index].iter().rev() {
        if line.indent < indent
            && let Some(key) = line.key()
        {
            path.push(key.to_owned());
            indent = line.indent;
        }
        if line.indent < indent {
            indent = line.indent;
        }
    }
    path.reverse();
    path.join(".")
}

/// The last `key:` in flow text that starts at or before byte `position`.
fn flow_key_before(text: &str, position: usize) -> Option<&str> {
    let mut found = None;
    for (colon, _) in text.match_indices(':') {
        let start = text[..colon].rfind(['{', ',', ' ']).map_or(0, |at| at + 1);
        let key = text[start..colon].trim();
        if start > position {
            break;
        }
        if !key.is_empty() && !key.contains(['[', '}', ']']) {
            found = Some(key);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use Segment::{Index, Key};

    const TEXT: &str = "\
name: t  # a comment
base:
  model: { preset: nano, d_model: 64 }
  data:
    corpus: c
    seq_len: 16
grid:
  data.seq_len: [16, 32]
include:
  - objective: ar
    seed: 1
  - objective: dlm
    train.lr: 1e-3
";

    #[test]
    fn finds_keys_in_blocks_flows_and_lists() {
        let cases: [(&[Segment], (usize, usize)); 9] = [
            (&[Key("name")], (1, 1)),
            (&[Key("base"), Key("data"), Key("seq_len")], (6, 5)),
            (&[Key("base"), Key("model"), Key("d_model")], (3, 26)),
            (&[Key("base"), Key("model")], (3, 3)),
            (&[Key("grid"), Key("data.seq_len")], (8, 3)),
            (&[Key("include"), Index(1), Key("train.lr")], (13, 5)),
            (&[Key("include"), Index(0), Key("seed")], (11, 5)),
            (&[Key("base"), Key("train"), Key("lr")], (2, 1)),
            (&[Key("nothing")], (1, 1)),
        ];
        for (path, expected) in cases {
            assert_eq!(find(TEXT, path), expected, "{path:?}");
        }
    }

    #[test]
    fn names_the_key_at_a_position() {
        let cases = [
            (6, 14, "base.data.seq_len"),
            (3, 26, "base.model.d_model"),
            (8, 18, "grid.data.seq_len"),
            (13, 15, "include.train.lr"),
            (1, 7, "name"),
        ];
        for (line, column, expected) in cases {
            assert_eq!(key_at(TEXT, line, column), expected, "{line}:{column}");
        }
    }
}
