//! Fuzz the transform: bytes → decode → parse → rewrite → position map.
//!
//! For any input: no panic, and (with libFuzzer's `-timeout`) no blow-up in time.
//! For an input the grammar accepts (the oracle is the same ruff parser the transform uses,
//! targeting the same version; `tests/slow/fuzz_compile.py` checks the corpus against
//! CPython's own `compile()`), the rewritten text must parse too, with every statement of the
//! original at the same line and, through the [`PositionMap`], the same start and end column.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recompyle_parser::{decode_source, parse_module, Decoded};
use recompyle_transform::{transform, Options, TransformError, WRITE_REPORTER};
use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{Expr, Stmt};
use ruff_text_size::{Ranged, TextSize};

/// Line (1-based) and column (0-based UTF-8 byte) of every statement, in source order.
#[derive(Default)]
struct Statements {
    found: Vec<(u32, u32, u32, u32)>,
    line_starts: Vec<usize>,
}

impl Statements {
    fn of(source: &str, body: &[Stmt]) -> Vec<(u32, u32, u32, u32)> {
        let mut line_starts = vec![0usize];
        let bytes = source.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                line_starts.push(i + 1);
            }
        }
        let mut me = Statements {
            line_starts,
            ..Default::default()
        };
        me.visit_body(body);
        me.found
    }

    fn line_col(&self, at: TextSize) -> (u32, u32) {
        let offset = at.to_usize();
        let line = self.line_starts.partition_point(|&s| s <= offset);
        (line as u32, (offset - self.line_starts[line - 1]) as u32)
    }
}

impl<'a> Visitor<'a> for Statements {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        // The reports a tracked module adds after a global store are not in the original.
        let added = matches!(stmt, Stmt::Expr(e) if matches!(&*e.value,
            Expr::Call(c) if matches!(&*c.func, Expr::Name(n) if n.id.as_str() == WRITE_REPORTER)));
        if !added {
            let (line, col) = self.line_col(stmt.range().start());
            let (end_line, end_col) = self.line_col(stmt.range().end());
            self.found.push((line, col, end_line, end_col));
        }
        visitor::walk_stmt(self, stmt);
    }
}

fn check(source: &str, version: (u8, u8), track_globals: bool) {
    let options = Options {
        version,
        module_key: 7,
        track_globals,
    };
    let out = match transform(source, &options) {
        Ok(out) => out,
        Err(TransformError::Parse(_)) => return,
        Err(TransformError::Internal(_)) => return, // a refusal: the loader runs the original
    };
    let original = parse_module(source, version).expect("transform parsed it");
    let rewritten = match parse_module(&out.source, version) {
        Ok(parsed) => parsed,
        Err(e) => panic!("rewritten text does not parse for {version:?}: {e}\n{}", out.source),
    };
    let want = Statements::of(source, &original.syntax().body);
    let got: Vec<_> = Statements::of(&out.source, &rewritten.syntax().body)
        .into_iter()
        .map(|(line, col, end_line, end_col)| {
            (
                line,
                out.positions.original_col(line as i32, col as i32) as u32,
                end_line,
                out.positions.original_col(end_line as i32, end_col as i32) as u32,
            )
        })
        .collect();
    assert_eq!(want, got, "statement positions moved for {version:?}\n{}", out.source);
}

fuzz_target!(|data: &[u8]| {
    let text = match decode_source(data) {
        Decoded::Text(text) => text,
        _ => return,
    };
    check(&text, (3, 11), false);
    check(&text, (3, 13), true);
});
