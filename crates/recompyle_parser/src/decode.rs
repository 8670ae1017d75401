//! Source decoding as CPython's tokenizer does it (PEP 263, PEP 3120).

use std::borrow::Cow;

/// The result of decoding a module's bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Decoded text, BOM removed. Offsets into it are what CPython reports.
    Text(Cow<'a, str>),
    /// A cookie names an encoding other than UTF-8, Latin-1 or ASCII: the caller decodes with
    /// Python's codecs.
    Codec { encoding: String },
    /// CPython would refuse these bytes; compile the original to get its exact error.
    Invalid,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decode module bytes, or say why CPython would have to be asked.
pub fn decode_source(bytes: &[u8]) -> Decoded<'_> {
    let (has_bom, body) = match bytes.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, bytes),
    };
    let encoding = find_cookie(body);
    match (has_bom, encoding.as_deref()) {
        (_, None) | (_, Some("utf-8")) => match std::str::from_utf8(body) {
            Ok(text) => Decoded::Text(Cow::Borrowed(text)),
            Err(_) => match invalid_only_in_comments(body) {
                Some(text) => Decoded::Text(Cow::Owned(text)),
                None => Decoded::Invalid,
            },
        },
        // CPython: "encoding problem: X with BOM".
        (true, Some(_)) => Decoded::Invalid,
        (false, Some("iso-8859-1")) => {
            Decoded::Text(Cow::Owned(body.iter().map(|&b| b as char).collect()))
        }
        (false, Some("ascii")) | (false, Some("us-ascii")) => {
            if body.is_ascii() {
                // ASCII is a subset of UTF-8, so this cannot fail.
                match std::str::from_utf8(body) {
                    Ok(text) => Decoded::Text(Cow::Borrowed(text)),
                    Err(_) => Decoded::Invalid,
                }
            } else {
                Decoded::Invalid
            }
        }
        (false, Some(other)) => Decoded::Codec {
            encoding: other.to_string(),
        },
    }
}

/// `body` with each byte that is not UTF-8 replaced by `?`, if every such byte is inside a
/// comment; else `None`.
///
/// What `compile()` (and so every import, on 3.9 to 3.13 alike) does with UTF-8 source:
/// its tokenizer decodes what it reads as tokens (identifiers, strings) and skips comments
/// unread, so a stray byte in a comment is accepted, and anywhere else is a `SyntaxError`.
/// One byte for one keeps every offset, so columns stay CPython's; a comment's text never
/// reaches the code. (`python file.py` reads through the file tokenizer, which checks every
/// line, and refuses these files: recompyle's script runner compiles the bytes as imports
/// do.) Which bytes are in comments is what ruff's lexer says of the patched text.
fn invalid_only_in_comments(body: &[u8]) -> Option<String> {
    use ruff_python_ast::token::TokenKind;
    use ruff_python_parser::{parse_unchecked, Mode, ParseOptions};
    use ruff_text_size::Ranged;

    let mut text = String::with_capacity(body.len());
    let mut replaced = Vec::new();
    for chunk in body.utf8_chunks() {
        text.push_str(chunk.valid());
        for _ in chunk.invalid() {
            replaced.push(u32::try_from(text.len()).ok()?);
            text.push('?');
        }
    }
    let parsed = parse_unchecked(&text, ParseOptions::from(Mode::Module));
    let comments: Vec<(u32, u32)> = parsed
        .tokens()
        .iter()
        .filter(|t| t.kind() == TokenKind::Comment)
        .map(|t| (t.range().start().to_u32(), t.range().end().to_u32()))
        .collect();
    let in_comment = |offset: u32| {
        let i = comments.partition_point(|&(start, _)| start <= offset);
        i > 0 && offset < comments[i - 1].1
    };
    replaced.iter().all(|&o| in_comment(o)).then_some(text)
}

/// The coding cookie of the first two lines, normalised as `tokenizer.c:get_normal_name`.
fn find_cookie(bytes: &[u8]) -> Option<String> {
    let mut lines = bytes.split_inclusive(|&b| b == b'\n');
    let first = lines.next()?;
    if let Some(name) = cookie_in_line(first) {
        return Some(name);
    }
    // The second line is only consulted when the first is blank or a comment.
    if !is_blank_or_comment(first) {
        return None;
    }
    lines.next().and_then(cookie_in_line)
}

fn is_blank_or_comment(line: &[u8]) -> bool {
    for &b in line {
        match b {
            b' ' | b'\t' | b'\x0c' => continue,
            b'#' | b'\r' | b'\n' => return true,
            _ => return false,
        }
    }
    true
}

/// `^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)`
fn cookie_in_line(line: &[u8]) -> Option<String> {
    let start = line
        .iter()
        .position(|&b| !matches!(b, b' ' | b'\t' | b'\x0c'))?;
    if line[start] != b'#' {
        return None;
    }
    let comment = &line[start..];
    let mut search = 0;
    while let Some(pos) = find(&comment[search..], b"coding") {
        let after = search + pos + 6;
        if after < comment.len() && (comment[after] == b':' || comment[after] == b'=') {
            let mut i = after + 1;
            while i < comment.len() && (comment[i] == b' ' || comment[i] == b'\t') {
                i += 1;
            }
            let name_start = i;
            while i < comment.len()
                && (comment[i].is_ascii_alphanumeric() || matches!(comment[i], b'-' | b'_' | b'.'))
            {
                i += 1;
            }
            if i > name_start {
                let name = String::from_utf8_lossy(&comment[name_start..i]).into_owned();
                return Some(normal_name(&name));
            }
        }
        search = after;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn normal_name(name: &str) -> String {
    let lowered: String = name
        .chars()
        .take(12)
        .map(|c| {
            if c == '_' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    if lowered == "utf-8" || lowered.starts_with("utf-8-") {
        return "utf-8".to_string();
    }
    for latin in ["latin-1", "iso-8859-1", "iso-latin-1"] {
        if lowered == latin || lowered.starts_with(&format!("{latin}-")) {
            return "iso-8859-1".to_string();
        }
    }
    // Other names go to Python's codec registry unchanged, as CPython does.
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(decoded: Decoded<'_>) -> String {
        match decoded {
            Decoded::Text(t) => t.into_owned(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    #[test]
    fn plain_utf8() {
        assert_eq!(text(decode_source("x = 'é'\n".as_bytes())), "x = 'é'\n");
    }

    #[test]
    fn bom_is_stripped() {
        assert_eq!(text(decode_source(b"\xEF\xBB\xBFx = 1\n")), "x = 1\n");
    }

    #[test]
    fn bom_with_foreign_cookie_is_invalid() {
        assert_eq!(
            decode_source(b"\xEF\xBB\xBF# -*- coding: latin-1 -*-\nx = 1\n"),
            Decoded::Invalid
        );
    }

    #[test]
    fn latin1_cookie() {
        let src = b"# -*- coding: latin-1 -*-\nx = '\xe9'\n";
        assert_eq!(
            text(decode_source(src)),
            "# -*- coding: latin-1 -*-\nx = 'é'\n"
        );
    }

    #[test]
    fn cookie_on_second_line_after_shebang() {
        let src = b"#!/usr/bin/env python\n# vim: set fileencoding=iso-8859-1 :\nx = '\xe9'\n";
        assert!(text(decode_source(src)).ends_with("'é'\n"));
    }

    #[test]
    fn cookie_ignored_on_second_line_after_code() {
        let src = b"x = 1\n# coding: latin-1\n";
        assert_eq!(text(decode_source(src)), "x = 1\n# coding: latin-1\n");
    }

    #[test]
    fn other_codecs_are_delegated() {
        assert_eq!(
            decode_source(b"# coding: cp1252\nx = 1\n"),
            Decoded::Codec {
                encoding: "cp1252".into()
            }
        );
    }

    #[test]
    fn invalid_utf8_is_invalid() {
        assert_eq!(decode_source(b"x = '\xff'\n"), Decoded::Invalid);
        assert_eq!(decode_source(b"x\xe9 = 1\n"), Decoded::Invalid);
        assert_eq!(decode_source(b"'''\n# \xe9\n'''\n"), Decoded::Invalid);
    }

    #[test]
    fn invalid_utf8_in_comments_is_accepted_as_compile_does() {
        // Offsets kept: one `?` per byte.
        assert_eq!(
            text(decode_source(b"x = 1  # caf\xe9\nprint(x)\n")),
            "x = 1  # caf?\nprint(x)\n"
        );
        assert_eq!(
            text(decode_source(
                b"# \xff\xfe\nx = 'ok' # \xc3\n# \xed\xa0\x80"
            )),
            "# ??\nx = 'ok' # ?\n# ???"
        );
        assert_eq!(
            text(decode_source(b"# coding: utf-8\n# \xe9\n")),
            "# coding: utf-8\n# ?\n"
        );
    }
}
