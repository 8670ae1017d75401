//! Text edits, line/column arithmetic, and the map from rewritten columns to original ones.
//!
//! Every walker that rewrites text records [`Edit`]s at byte offsets of the original and hands
//! them to [`apply_edits`], which makes the rewritten text and its [`PositionMap`] in one place.

use std::ops::Range;

use ruff_text_size::{TextRange, TextSize};

use crate::TransformError;

/// Replace `start..end` of the original text with `text` (an insertion when empty).
#[derive(Debug, Clone)]
pub(crate) struct Edit {
    pub start: u32,
    pub end: u32,
    pub text: String,
    /// `text` begins with a copy of the original bytes at `from..from + len`, on the edit's
    /// own line: those columns map to the copied ones, one for one (a second copy of a
    /// callee evaluates at the callee's own position), end column included.
    pub copied: Option<Copied>,
    /// Goes before the edits made earlier at its offset (see [`Edit::leading`]).
    pub leads: bool,
}

/// The original bytes an [`Edit`]'s text begins with a copy of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Copied {
    pub from: u32,
    pub len: u32,
}

impl Edit {
    pub fn insert(at: TextSize, text: String) -> Self {
        Edit {
            start: at.to_u32(),
            end: at.to_u32(),
            text,
            copied: None,
            leads: false,
        }
    }

    pub fn replace(range: TextRange, text: String) -> Self {
        Edit {
            start: range.start().to_u32(),
            end: range.end().to_u32(),
            text,
            copied: None,
            leads: false,
        }
    }

    /// Insert at `at` a copy of `range` of the original followed by `rest`; the copy keeps
    /// the columns of `range`, which must lie on the line of `at`
    /// ([`PositionMap::new`] checks it), and the rest maps to `at`.
    pub fn insert_copy(at: TextSize, source: &str, range: TextRange, rest: &str) -> Self {
        let copy = &source[range.to_std_range()];
        Edit {
            start: at.to_u32(),
            end: at.to_u32(),
            text: format!("{copy}{rest}"),
            copied: Some(Copied {
                from: range.start().to_u32(),
                len: range.len().to_u32(),
            }),
            leads: false,
        }
    }

    /// This edit, placed before the edits made earlier at its offset (the rest keep the order
    /// they were made in): the end of a call's own text, where a rewrite enclosing the call,
    /// made first, put its closing text (`obj.m(a)(b)`: its selector's `)`).
    pub fn leading(self) -> Self {
        Edit {
            leads: true,
            ..self
        }
    }
}

/// Byte offsets of line starts; `\n`, `\r\n` and a lone `\r` end a line, as in CPython.
pub(crate) struct LineIndex {
    starts: Vec<u32>,
}

impl LineIndex {
    pub fn new(source: &str) -> Self {
        let bytes = source.as_bytes();
        let mut starts = Vec::with_capacity(bytes.len() / 32 + 1);
        starts.push(0u32);
        // memchr rather than a byte loop: this ran over every byte of every module, a
        // twentieth of the transform's instructions.
        for i in memchr::memchr2_iter(b'\n', b'\r', bytes) {
            if bytes[i] == b'\n' || bytes.get(i + 1) != Some(&b'\n') {
                starts.push(i as u32 + 1);
            }
        }
        LineIndex { starts }
    }

    /// 1-based line and 0-based byte column of `offset`.
    pub fn line_col(&self, offset: u32) -> (u32, u32) {
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        (line as u32 + 1, offset - self.starts[line])
    }
}

/// Where a node of the original text is: 1-based lines, 0-based UTF-8 byte columns, as
/// CPython's `ast` and `co_positions()` report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub line: u32,
    pub col: u32,
    pub end_line: u32,
    pub end_col: u32,
}

impl LineIndex {
    /// The lines and columns of `range`.
    pub fn span(&self, range: TextRange) -> Span {
        let (line, col) = self.line_col(range.start().to_u32());
        let (end_line, end_col) = self.line_col(range.end().to_u32());
        Span {
            line,
            col,
            end_line,
            end_col,
        }
    }
}

/// Text with its edits applied, and where its columns were in the original.
pub(crate) struct Applied {
    pub text: String,
    pub positions: PositionMap,
}

/// Apply `edits` to `source[window]` and map every edited line's columns back to the
/// original's. Edits at one offset keep the order they were made in (an outer call's prefix
/// before an inner call's that starts at the same byte, `f(x)(y)`), the [`Edit::leading`]
/// ones first; edits that overlap, or reach outside the window, are an internal error.
pub(crate) fn apply_edits(
    source: &str,
    lines: &LineIndex,
    mut edits: Vec<Edit>,
    window: Range<usize>,
) -> Result<Applied, TransformError> {
    // Stable, so edits at one offset stay in creation order (the leading ones first).
    edits.sort_by_key(|e| (e.start, !e.leads));
    let mut text = String::with_capacity(window.len() + edits.len() * 24);
    let mut cursor = window.start;
    for edit in &edits {
        let (start, end) = (edit.start as usize, edit.end as usize);
        if start < window.start || end > window.end {
            return Err(TransformError::Internal(format!(
                "an edit at bytes {start}..{end} outside {window:?}"
            )));
        }
        if start < cursor {
            return Err(TransformError::Internal(format!(
                "overlapping edits at byte {start}"
            )));
        }
        text.push_str(&source[cursor..start]);
        text.push_str(&edit.text);
        cursor = end;
    }
    text.push_str(&source[cursor..window.end]);
    Ok(Applied {
        text,
        positions: PositionMap::new(lines, &edits)?,
    })
}

/// One edit seen from its line: rewritten columns `t_start..t_end` stand where the original
/// had `o_start..o_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Segment {
    t_start: u32,
    t_end: u32,
    o_start: u32,
    o_end: u32,
    /// The segment's text begins with a copy of original columns `copy_from..` of this
    /// line, `copy_len` of them (0: no copy).
    copy_from: u32,
    copy_len: u32,
}

/// Maps a (line, column) of the rewritten text to the original's. Lines never change.
#[derive(Debug, Clone, Default)]
pub struct PositionMap {
    /// Per 1-based line (index 0 unused), that line's edits in column order.
    lines: Vec<Vec<Segment>>,
}

impl PositionMap {
    pub(crate) fn new(index: &LineIndex, edits: &[Edit]) -> Result<Self, TransformError> {
        let mut lines: Vec<Vec<Segment>> = Vec::new();
        // Running (line, shift) so successive edits on one line accumulate.
        let mut current_line = 0u32;
        let mut shift: i64 = 0;
        for edit in edits {
            let (line, o_start) = index.line_col(edit.start);
            if line != current_line {
                current_line = line;
                shift = 0;
            }
            let o_end = o_start + (edit.end - edit.start);
            let t_start = (i64::from(o_start) + shift) as u32;
            let t_end = t_start + edit.text.len() as u32;
            shift += edit.text.len() as i64 - i64::from(edit.end - edit.start);
            let (copy_from, copy_len) = match edit.copied {
                None => (0, 0),
                Some(copied) => {
                    let (copy_line, copy_from) = index.line_col(copied.from);
                    let (end_line, _) = index.line_col(copied.from + copied.len);
                    // The copy must precede other text in the edit: its end column is its own.
                    if copy_line != line || end_line != line || copied.len >= edit.text.len() as u32
                    {
                        return Err(TransformError::Internal(format!(
                            "a copy of bytes at {} that is not on the line of its insertion",
                            copied.from
                        )));
                    }
                    (copy_from, copied.len)
                }
            };
            let slot = line as usize;
            if lines.len() <= slot {
                lines.resize_with(slot + 1, Vec::new);
            }
            lines[slot].push(Segment {
                t_start,
                t_end,
                o_start,
                o_end,
                copy_from,
                copy_len,
            });
        }
        Ok(PositionMap { lines })
    }

    /// True when no column moved.
    pub fn is_identity(&self) -> bool {
        self.lines.iter().all(Vec::is_empty)
    }

    /// The original column of rewritten column `col` on `line`. A column inside inserted
    /// text maps to the point of insertion. Negative columns (no information) pass through.
    pub fn original_col(&self, line: i32, col: i32) -> i32 {
        if col < 0 || line < 0 {
            return col;
        }
        let Some(segments) = self.lines.get(line as usize) else {
            return col;
        };
        let col = col as u32;
        // Segments are in column order and do not overlap, so the last one starting at or
        // before `col` decides: binary search keeps a line of n sites O(log n) per lookup
        // (a linear scan made one-line files of many calls quadratic to remap).
        let before = segments.partition_point(|seg| seg.t_start <= col);
        let Some(seg) = before.checked_sub(1).map(|i| segments[i]) else {
            return col as i32;
        };
        let into = col - seg.t_start;
        if into <= seg.copy_len && seg.copy_len > 0 {
            // Inside a copy (its end column too: text follows it in the same segment).
            return (seg.copy_from + into) as i32;
        }
        if col < seg.t_end {
            // Inside replacement text: same-length replacements map column to column.
            let width = seg.o_end - seg.o_start;
            return (seg.o_start + into.min(width)) as i32;
        }
        let delta = i64::from(seg.o_end) - i64::from(seg.t_end);
        (i64::from(col) + delta) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_handles_all_newlines() {
        let src = "a\nb\r\nc\rd";
        let idx = LineIndex::new(src);
        assert_eq!(idx.line_col(0), (1, 0));
        assert_eq!(idx.line_col(2), (2, 0));
        assert_eq!(idx.line_col(5), (3, 0));
        assert_eq!(idx.line_col(7), (4, 0));
    }

    #[test]
    fn maps_columns_around_insertions() {
        // "x = f(1)" -> "x = T(9, f,1)"
        let src = "x = f(1)\n";
        let idx = LineIndex::new(src);
        let edits = vec![
            Edit::insert(TextSize::from(4), "T(9, ".into()),
            Edit::replace(TextRange::new(5.into(), 6.into()), ",".into()),
        ];
        let map = PositionMap::new(&idx, &edits).expect("one line");
        assert_eq!(map.original_col(1, 0), 0);
        assert_eq!(map.original_col(1, 4), 4); // start of inserted text -> call start
        assert_eq!(map.original_col(1, 7), 4); // inside inserted text
        assert_eq!(map.original_col(1, 9), 4); // callee `f`
        assert_eq!(map.original_col(1, 10), 5); // the `,` that was `(`
        assert_eq!(map.original_col(1, 11), 6); // `1`
        assert_eq!(map.original_col(1, 13), 8); // end of line
        assert_eq!(map.original_col(2, 3), 3);
        assert_eq!(map.original_col(1, -1), -1);
    }

    #[test]
    fn a_copy_keeps_the_columns_it_copies() {
        // "y = a.b(1)" -> "y = (S(9, a.b) if F else a.b)(1)"
        let src = "y = a.b(1)\n";
        let idx = LineIndex::new(src);
        let callee = TextRange::new(4.into(), 7.into());
        let edits = vec![
            Edit::insert(TextSize::from(4), "(S(9, ".into()),
            Edit::insert_copy(TextSize::from(4), src, callee, ") if F else "),
            Edit::insert(TextSize::from(7), ")".into()),
        ];
        let applied = apply_edits(src, &idx, edits, 0..src.len()).expect("applies");
        assert_eq!(applied.text, "y = (S(9, a.b) if F else a.b)(1)\n");
        let map = applied.positions;
        assert_eq!(map.original_col(1, 4), 4); // the inserted `(`
        assert_eq!(map.original_col(1, 10), 4); // the copy's `a`
        assert_eq!(map.original_col(1, 11), 5); // its `.`
        assert_eq!(map.original_col(1, 13), 7); // its end column is the callee's
        assert_eq!(map.original_col(1, 14), 4); // inserted text after it: the insertion point
        assert_eq!(map.original_col(1, 25), 4); // the original `a`
        assert_eq!(map.original_col(1, 28), 7); // the original's end
        assert_eq!(map.original_col(1, 29), 7); // the `(` of the arguments
        assert_eq!(map.original_col(1, 30), 8); // `1`
    }

    #[test]
    fn a_copy_from_another_line_is_refused() {
        let src = "f(\n  a)\n";
        let idx = LineIndex::new(src);
        let edits = vec![Edit::insert_copy(
            TextSize::from(0),
            src,
            TextRange::new(5.into(), 6.into()),
            " ",
        )];
        assert!(apply_edits(src, &idx, edits, 0..src.len()).is_err());
    }

    /// The answer of a scan over every segment, as the map once worked (quadratic on a line
    /// of many sites): the binary search must agree with it everywhere.
    fn scanned(map: &PositionMap, line: usize, col: u32) -> i32 {
        let mut delta: i64 = 0;
        for seg in &map.lines[line] {
            if col < seg.t_start {
                break;
            }
            if col < seg.t_end {
                let width = seg.o_end - seg.o_start;
                return (seg.o_start + (col - seg.t_start).min(width)) as i32;
            }
            delta = i64::from(seg.o_end) - i64::from(seg.t_end);
        }
        (i64::from(col) + delta) as i32
    }

    #[test]
    fn binary_search_agrees_with_a_scan_on_a_long_line() {
        // `f(0)(1), f(2), ...`: two insertions per call, some at one offset, some replacing.
        let mut src = String::from("x = [");
        let mut edits = Vec::new();
        for i in 0..500u32 {
            let at = src.len() as u32;
            src.push_str(&format!("f({i})"));
            edits.push(Edit::insert(TextSize::from(at), "T(1, ".into()));
            if i % 3 == 0 {
                edits.push(Edit::insert(TextSize::from(at), "T(2, ".into()));
                edits.push(Edit::insert(TextSize::from(at + 1), ")".into()));
            }
            edits.push(Edit::replace(
                TextRange::new((at + 1).into(), (at + 2).into()),
                if i % 2 == 0 { ")(" } else { "" }.into(),
            ));
            src.push_str(", ");
        }
        src.push_str("]\n");
        let map = PositionMap::new(&LineIndex::new(&src), &edits).expect("one line");
        let width = src.len() as u32 + edits.len() as u32 * 6;
        for col in 0..width {
            assert_eq!(
                map.original_col(1, col as i32),
                scanned(&map, 1, col),
                "col {col}"
            );
        }
    }
}
